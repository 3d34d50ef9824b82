"""Multi30k loading, subword tokenization and the bucketed Lightning data module."""
