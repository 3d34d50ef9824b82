"""The errors the command line turns into one line (``nmt: error: ...``, exit code 2), all
under :class:`NmtError`. Defined where importing them costs nothing: ``nmt --help`` or
``nmt translate`` must not wait for Lightning or MLflow to import."""

from __future__ import annotations


class NmtError(Exception):
    """The base: a failure the user can act on, its message one line that says what to do."""


class ConfigError(NmtError, ValueError):
    """A config value or key that cannot be accepted; the message names the key."""


class ServiceError(NmtError, RuntimeError):
    """A service the command needs (the tracking server, PostgreSQL, Ray) is down, refused
    us or failed to start; the message names it and how to start or reach it."""


class TrackingUnavailable(ServiceError):
    """The tracking store did not answer within the configured deadline."""


class SweepError(NmtError, RuntimeError):
    """A sweep that cannot hand on a winner: no trial reported the metric it is ranked by
    (each trial's run says why it failed)."""
