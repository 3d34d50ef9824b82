"""Errors the command line turns into one line, defined where importing them costs nothing:
``nmt --help`` or ``nmt translate`` must not wait for Lightning or MLflow to import."""

from __future__ import annotations


class TrackingUnavailable(RuntimeError):
    """The tracking store did not answer within the configured deadline."""
