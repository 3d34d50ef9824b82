"""The registry's operations: promote, rollback, candidates, compare-and-swap aliases, loading a version."""
