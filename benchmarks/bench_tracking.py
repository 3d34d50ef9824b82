"""Sustained metric write rate of a real MLflow tracking server: SQLite against PostgreSQL.

    python benchmarks/bench_tracking.py [--rows-single N] [--rows-batch N] [--writers 1 8]
                                        [--backends sqlite postgres] [--server-workers N] [--pg-host H]

Starts `mlflow server` on loopback for each backend (artifacts proxied to a temp folder;
PostgreSQL in a fresh database that is dropped afterwards), then W writer threads, each
logging to its own run through ``MlflowClient(http://...)``, send a fixed number of metric
rows in total: (a) one ``log_metric`` call per row, (b) ``log_batch`` of 1000 rows per call.
Measuring starts once the server's process tree is idle (its job runner starts after
/health answers). Every run's stored history is read back afterwards: rows lost fail the
benchmark. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import mlflow
import sqlalchemy
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from nmt.pipeline.services.server import wait_until_up

BATCH = 1000  # MLflow's limit of metrics per log_batch call
KEY = "bench/m"


def cpu_line(pg_version: str | None) -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    pg = f", PostgreSQL {pg_version}" if pg_version else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores (load average at start {load}), Python {sys.version.split()[0]}, "
            f"mlflow {mlflow.__version__}, SQLAlchemy {sqlalchemy.__version__}{pg}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_database(host: str, port: int, user: str):
    """A fresh database (created and dropped with autocommit); yields (SQLAlchemy URI, version)."""
    import psycopg2

    name = f"nmt_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            version = cur.fetchone()[0].split()[0]
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3: name the installed driver
            yield f"postgresql+psycopg2://{user}@{host}:{port}/{name}", version
        finally:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


@contextmanager
def mlflow_server(backend_uri: str, tmp: Path, workers: int, timeout_s: float = 120):
    """`mlflow server` on a free loopback port; yields its URL once /health answers, and
    stops the whole process group (uvicorn workers included) on the way out."""
    exe = Path(sys.executable).parent / "mlflow"
    port = free_port()
    log = open(tmp / f"server-{port}.log", "w")
    cmd = [str(exe), "server", "--backend-store-uri", backend_uri, "--artifacts-destination", str(tmp / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    url, started, huey_dir = f"http://127.0.0.1:{port}", time.perf_counter(), None
    try:
        outcome = wait_until_up(proc, url, timeout_s, poll_s=0.3)
        if outcome != "up":
            raise RuntimeError(f"mlflow server {outcome} before {url}/health answered:\n"
                               + (tmp / f"server-{port}.log").read_text()[-3000:])
        up = time.perf_counter() - started
        huey_dir = job_storage(proc.pid)
        quiet = settle(proc.pid)
        print(f"  {backend_uri.split(':')[0]} server up in {up:.1f} s, idle {quiet:.1f} s later",
              file=sys.stderr, flush=True)
        yield url
    finally:
        stop_group(proc)
        log.close()
        if huey_dir:  # the server makes it (in /dev/shm) and leaves it behind
            shutil.rmtree(huey_dir, ignore_errors=True)


def stop_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM to the server's process group (its own session), SIGKILL to what outlives it."""
    def signal_group(sig: int) -> bool:
        try:
            os.killpg(proc.pid, sig)
            return True
        except ProcessLookupError:  # the group is empty
            return False

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (proc.poll() is None or signal_group(0)):  # poll reaps
        time.sleep(0.2)
    signal_group(signal.SIGKILL)
    proc.wait()


def job_storage(pid: int) -> str | None:
    """The job runner's temp folder that ``mlflow server`` hands its children."""
    import psutil

    for child in psutil.Process(pid).children(recursive=True):
        try:
            if path := child.environ().get("_MLFLOW_HUEY_STORAGE_PATH"):
                return path
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return None


def settle(pid: int, cores: float = 0.1, window_s: float = 2.0, timeout_s: float = 90) -> float:
    """Wait until the server's process tree uses less than ``cores`` CPUs over ``window_s``:
    /health answers while its job-runner processes (huey consumers) are still starting, and
    on a small machine they would otherwise compete with the first measurements."""
    import psutil

    def cpu() -> float:
        total = 0.0
        for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        before = cpu()
        time.sleep(window_s)
        if cpu() - before < cores * window_s:
            break
    return time.perf_counter() - t0


def write(client: MlflowClient, run_id: str, rows: int, mode: str) -> None:
    t0 = int(time.time() * 1000)
    if mode == "log_metric":
        for i in range(rows):
            client.log_metric(run_id, KEY, float(i), timestamp=t0 + i, step=i)
    else:
        for start in range(0, rows, BATCH):
            client.log_batch(run_id, metrics=[Metric(KEY, float(i), t0 + i, i)
                                              for i in range(start, min(rows, start + BATCH))])


def measure(url: str, experiment_id: str, mode: str, writers: int, rows: int) -> tuple[float, int, int]:
    """W threads, each logging rows/W metric rows to its own run; returns (seconds, sent, stored)."""
    client = MlflowClient(url)
    per = rows // writers
    runs = [client.create_run(experiment_id, run_name=f"{mode}-w{writers}-{i}").info.run_id for i in range(writers)]
    errors: list[BaseException] = []
    start = threading.Barrier(writers + 1)

    def worker(run_id: str) -> None:
        c = MlflowClient(url)
        start.wait()
        try:
            write(c, run_id, per, mode)
        except BaseException as err:  # reported after the join
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed; first: {errors[0]!r}")
    stored = 0
    for r in runs:
        stored += len(client.get_metric_history(r, KEY))
        client.set_terminated(r)
    return seconds, per * writers, stored


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows-single", type=int, default=160, help="rows in total, one log_metric call each")
    ap.add_argument("--rows-batch", type=int, default=16_000, help=f"rows in total, log_batch of {BATCH}")
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 8], help="concurrent writer threads")
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    ap.add_argument("--server-workers", type=int, default=4, help="mlflow server --workers (its default: 4)")
    ap.add_argument("--pg-host", default="127.0.0.1")
    ap.add_argument("--pg-port", type=int, default=5432)
    ap.add_argument("--pg-user", default="postgres", help="a role that may CREATE/DROP DATABASE")
    args = ap.parse_args()
    if min(args.writers) < 1 or args.rows_single < max(args.writers) or args.rows_batch < max(args.writers):
        ap.error("--writers must be >= 1 and no more than the rows of each mode")
    return args


def main() -> None:
    args = _args()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # "View run ..." per run

    results, lost = [], 0
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nmt-bench-tracking-")))
        uris, pg_version = {}, None
        if "sqlite" in args.backends:
            uris["sqlite"] = f"sqlite:///{tmp / 'mlflow.db'}"
        if "postgres" in args.backends:
            uris["postgres"], pg_version = stack.enter_context(
                postgres_database(args.pg_host, args.pg_port, args.pg_user))
        print(f"# MLflow tracking server write rate, metric rows/s over HTTP on loopback; server --workers "
              f"{args.server_workers}, {BATCH} rows per log_batch\n# {cpu_line(pg_version)}\n", flush=True)
        for backend in args.backends:
            with mlflow_server(uris[backend], tmp, args.server_workers) as url:
                exp = MlflowClient(url).create_experiment(f"bench-{backend}")
                for mode, rows in (("log_metric", args.rows_single), ("log_batch", args.rows_batch)):
                    for w in args.writers:
                        seconds, sent, stored = measure(url, exp, mode, w, rows)
                        lost += sent - stored
                        results.append((backend, mode, w, sent, seconds, sent / seconds))
                        print(f"  {backend} {mode} writers={w}: {sent} rows in {seconds:.2f} s, "
                              f"stored {stored}", file=sys.stderr, flush=True)
        shutil.rmtree(tmp / "artifacts", ignore_errors=True)

    head = f"{'backend':9s} {'mode':11s} {'writers':>7s} {'rows':>7s} {'seconds':>8s} {'rows/s':>9s}"
    print(head)
    for backend, mode, w, sent, seconds, rate in results:
        print(f"{backend:9s} {mode:11s} {w:7d} {sent:7d} {seconds:8.2f} {rate:9.0f}")
    print(f"\nlost rows: {lost}")
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
