"""Stages, orchestration and the ``nmt`` command line."""
