"""The tracking credentials of a sweep's trials, kept out of Ray's ``runtime_env`` (Ray
records runtime envs in its logs and job table, which other accounts may read).

The driver writes them to a 0600 file in the sweep's own folder (on one machine, or the
NFS mount every node sees) and hands trials only its path; a trial loads them into its
own environment. With ``s3://`` storage no file is written: the nodes' own environment
must hold them (a Kubernetes Secret, see deploy/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nmt.components.system.paths import private_dir, write_private

SECRET_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
CREDENTIALS_FILE = ".tracking_credentials.json"


def write_for_trials(sweep_dir: str) -> str | None:
    """The credentials of this process, in a 0600 file under ``sweep_dir``; its path, or None
    when there are none to pass or the folder is not a local path."""
    found = {k: os.environ[k] for k in SECRET_VARS if os.environ.get(k)}
    if not found or "://" in sweep_dir:
        return None
    return str(write_private(private_dir(Path(sweep_dir)) / CREDENTIALS_FILE, json.dumps(found)))


def load_in_trial(path: str | None) -> None:
    """In a trial: the driver's credentials into this worker's environment (MLflow reads them there)."""
    if path and Path(path).is_file():
        os.environ.update({k: v for k, v in json.loads(Path(path).read_text()).items() if k in SECRET_VARS})


def remove(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)
