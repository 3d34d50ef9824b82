"""Typed configs of ``nmt server`` and ``nmt cluster`` (the ``server`` and ``cluster``
sections of the composed config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from nmt.components.system.typed_config import require


@dataclass(frozen=True)
class ServerConfig:
    """``nmt server``: an MLflow tracking server on PostgreSQL with proxied artifacts."""
    # '' means something here: every interface (refused without auth), PostgreSQL's local socket
    MAY_BE_EMPTY: ClassVar[tuple[str, ...]] = ("host", "pg_host")
    host: str                         # loopback by default; any other address needs auth=true
    port: int
    workers: int                      # >1: uvicorn workers answer ~40 ms slower (Nagle; BENCHMARKS.md)
    pg_host: str
    pg_port: int
    pg_superuser: str                 # creates the role and database (trust or $PGPASSWORD)
    database: str
    role: str                         # password: $NMT_SERVER_DB_PASSWORD when set
    artifacts_destination: str | None  # None: <state_dir>/artifacts; or s3://bucket/prefix
    auth: bool                        # basic auth; admin password from $NMT_SERVER_ADMIN_PASSWORD
    admin_user: str
    # what a new user may do on every experiment (NO_PERMISSIONS: nothing until granted)
    default_permission: Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
    allowed_hosts: str | None         # --allowed-hosts (Host headers answered); None: loopback + server.host
    auth_cache_s: int                 # a checked password is trusted this long (MLflow: PBKDF2 per request)
    state_dir: str | None             # pid, log, auth settings; None: <home>/.nmt/server
    start_timeout_s: float

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("workers", self.workers >= 1, ">= 1"), ("auth_cache_s", self.auth_cache_s >= 0, ">= 0"),
                ("start_timeout_s", self.start_timeout_s > 0, "> 0"))

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class ClusterConfig:
    """``nmt cluster``: a Ray head and worker nodes on this machine, each its own raylet."""
    # Ray replaces 127.0.0.1 (and localhost) by the host's outward address; any other
    # loopback address it keeps, so the nodes and their traffic stay on this machine.
    host: str
    port: int                         # the head's GCS port: sweep.ray_address=<host>:<port>
    head_cpus: int                    # 0: trials run on the workers only
    workers: int                      # worker nodes, each its own raylet with worker_cpus CPUs
    worker_cpus: float
    worker_gpus: float
    object_store_mb: int              # per node
    state_dir: str | None             # None: <home>/.nmt/cluster

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("head_cpus", self.head_cpus >= 0, ">= 0"), ("workers", self.workers >= 0, ">= 0"),
                ("worker_cpus", self.worker_cpus >= 0, ">= 0"), ("worker_gpus", self.worker_gpus >= 0, ">= 0"),
                ("object_store_mb", self.object_store_mb >= 75, ">= 75 (Ray's smallest object store)"))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
