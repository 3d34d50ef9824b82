"""``nmt cluster up|down|status``: a multi-node Ray cluster on one machine.

A head node and ``cluster.workers`` worker nodes, each a separate ``ray start`` with its
own raylet, ports, CPU count and a custom resource naming it (``nmt_head``,
``nmt_worker_1``, ...). Trials see the node's name through that resource, and runs are
tagged with it. ``down`` stops exactly this cluster's processes, not every Ray on the host:
those ``up`` recorded (pid, start time, whole argv) and still match that record, with their children.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from nmt.components.system.errors import ConfigError, ServiceError
from nmt.components.system.paths import local_path, private_dir, private_log, write_private
from nmt.components.system.procs import ProcessId
from nmt.components.tracking.uri import project_home
from nmt.pipeline.services.daemons import daemon_env, stop_all
from nmt.pipeline.services.settings import ClusterConfig

NODE_PREFIX = "nmt_"  # custom resource naming a node: nmt_head, nmt_worker_<i>
# Loopback only, one machine: Ray's token auth stays off on every node alike (Ray turns it on
# for a head that finds ~/.ray/auth_token, which workers joining by address do not read).
# A real cluster turns it on everywhere (see deploy/).
# A lost node is declared dead after ~5 s (Ray's default: ~30 s), so its trials move soon.
NODE_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "5"}
# what trials read from their node's environment besides the driver's runtime_env
NODE_ENV_NAMES = ("NMT_HOME", "MULTI30K_DIR", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "HF_HOME", "HF_DATASETS_CACHE", "TORCH_HOME")


@dataclass(frozen=True)
class Node:
    name: str
    raylet_pid: int


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def state_dir(cfg: ClusterConfig) -> Path:
    return local_path(cfg.state_dir or project_home() / ".nmt" / "cluster")


def _free_ports(n: int, host: str) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(cfg: ClusterConfig, name: str, cpus: float, gpus: float, head: bool) -> None:
    nm, om, agent, agent_grpc, rt, metrics = _free_ports(6, cfg.host)
    cmd = [_ray_bin(), "start", f"--node-ip-address={cfg.host}", f"--num-cpus={cpus:g}", f"--num-gpus={gpus:g}",
           f"--resources={json.dumps({NODE_PREFIX + name: 1})}", f"--node-manager-port={nm}",
           f"--object-manager-port={om}", f"--dashboard-agent-listen-port={agent}",
           f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={rt}",
           f"--metrics-export-port={metrics}", f"--object-store-memory={cfg.object_store_mb * 2**20}",
           "--disable-usage-stats"]
    cmd += (["--head", f"--port={cfg.port}", "--include-dashboard=false"] if head
            else [f"--address={cfg.address}"])
    log = state_dir(cfg) / f"{name}.log"
    with private_log(log) as f:
        try:  # the node's daemons outlive this shell: an allowlisted environment, not the caller's keys
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=120,
                                  env=daemon_env(NODE_ENV_NAMES, ("RAY_",), **NODE_ENV))
        except subprocess.TimeoutExpired:
            raise ServiceError(f"`ray start` for node {name} did not finish in 120 s; see {log}") from None
    if done.returncode != 0:
        raise ServiceError(f"`ray start` for node {name} failed (code {done.returncode}); see {log}")


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def up(cfg: ClusterConfig) -> list[Node]:
    """Start the head and the workers; wait until every raylet is up."""
    if nodes(cfg):
        raise ServiceError(f"a cluster already runs at {cfg.address}; `nmt cluster down` first")
    if _port_taken(cfg.host, cfg.port):
        raise ConfigError(f"port {cfg.port} is taken; choose cluster.port=<free port>")
    private_dir(state_dir(cfg))
    try:
        _start(cfg, "head", cfg.head_cpus, 0, head=True)
        for i in range(1, cfg.workers + 1):
            _start(cfg, f"worker_{i}", cfg.worker_cpus, cfg.worker_gpus, head=False)
        end = time.monotonic() + 60
        while len(_raylets(_started(cfg))) < cfg.workers + 1 and time.monotonic() < end:
            time.sleep(0.5)
        _record(cfg)
    except BaseException:
        _record(cfg)  # what did start, so that down stops it
        down(cfg)
        raise
    found = nodes(cfg)
    if len(found) < cfg.workers + 1:
        down(cfg)
        raise ServiceError(f"only {len(found)} of {cfg.workers + 1} Ray nodes started; see {state_dir(cfg)}")
    return found


def _names_our_gcs(args: list[str], cfg: ClusterConfig) -> bool:
    """Whether a command line names this cluster's GCS, item by item: its address whole, or
    (the GCS server itself) its port *and* its address; a port alone is another cluster's too."""
    items = {f"--gcs-address={cfg.address}", f"--gcs_address={cfg.address}", f"--address={cfg.address}"}
    pairs = {("--gcs-address", cfg.address), ("--gcs_address", cfg.address), ("--address", cfg.address)}
    gcs = {f"--gcs_server_port={cfg.port}", f"--node-ip-address={cfg.host}"}
    return (any(a in items for a in args) or any(p in pairs for p in zip(args, args[1:]))
            or gcs <= set(args))


def _record_file(cfg: ClusterConfig) -> Path:
    return state_dir(cfg) / "processes.json"


def _started(cfg: ClusterConfig) -> list[psutil.Process]:
    """The daemons ``up`` just started (``ray start`` detaches them, so they are found by
    this cluster's address on their command line, of this user), not yet their children."""
    found = []
    for p in psutil.process_iter(["cmdline", "uids"]):
        uids = p.info["uids"]
        if uids is not None and uids.real == os.getuid() and _names_our_gcs(p.info["cmdline"] or [], cfg):
            found.append(p)
    return found


def _record(cfg: ClusterConfig) -> None:
    """What ``down`` and ``status`` will trust: each daemon's pid, start time and whole argv."""
    ids = []
    for p in _started(cfg):
        try:
            ids.append(asdict(ProcessId.of(p.pid)))
        except psutil.Error:
            continue
    write_private(_record_file(cfg), json.dumps(ids))


def _processes(cfg: ClusterConfig) -> list[psutil.Process]:
    """This cluster's processes: those ``up`` recorded that still match their record whole
    (pid, start time, argv), and their children (workers rename themselves ray::...).
    Nothing recorded, nothing ours: a matching port or address is no proof."""
    try:
        raw = json.loads(_record_file(cfg).read_text())
        recorded = [ProcessId(int(r["pid"]), float(r["start"]), tuple(r["argv"])) for r in raw]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    found = []
    for rid in recorded:
        p = rid.process()
        if p is None:
            continue
        found.append(p)
        try:
            found += p.children(recursive=True)
        except psutil.Error:
            pass
    return list({p.pid: p for p in found}.values())


def _raylets(procs: list[psutil.Process]) -> list[Node]:
    out = []
    for p in procs:
        try:
            args = p.cmdline()
        except psutil.Error:
            continue
        if not args or not args[0].endswith("raylet"):
            continue
        opts = dict(a[2:].split("=", 1) for a in args[1:] if a.startswith("--") and "=" in a)
        resources = opts.get("static_resource_list", "").split(",")[::2]  # name,amount,name,amount...
        name = next((r[len(NODE_PREFIX):] for r in resources if r.startswith(NODE_PREFIX)), "?")
        out.append(Node(name, p.pid))
    return sorted(out, key=lambda n: n.name)


def nodes(cfg: ClusterConfig) -> list[Node]:
    """The raylets of this cluster (as ``up`` recorded it), named by their ``nmt_*`` resource."""
    return _raylets(_processes(cfg))


def kill_node(cfg: ClusterConfig, name: str) -> int:
    """``kill -9`` one node's raylet (the fault tests' failure); returns its pid."""
    node = next((n for n in nodes(cfg) if n.name == name), None)
    if node is None:
        raise ConfigError(f"no node {name!r} in the cluster at {cfg.address}")
    psutil.Process(node.raylet_pid).send_signal(signal.SIGKILL)
    return node.raylet_pid


def down(cfg: ClusterConfig) -> int:
    """Stop this cluster's processes (TERM, then KILL); returns how many there were."""
    n = stop_all(_processes(cfg), timeout=10)
    _record_file(cfg).unlink(missing_ok=True)
    # `ray start` leaves the address for later `ray.init()` calls to find: not ours any more
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.exists() and current.read_text().strip() == cfg.address:
        current.unlink()
    return n


def loopback_cluster(address: str | None) -> bool:
    """An `nmt cluster` on this machine: a 127.x address other than 127.0.0.1."""
    host = (address or "").removeprefix("ray://").rpartition(":")[0]
    return host.startswith("127.") and host != "127.0.0.1"


# The shell's own choice, read before any ray.init() of this process writes its mode there
SHELL_AUTH_MODE = os.environ.get("RAY_AUTH_MODE")


def auth_env_for(address: str | None) -> None:
    """Before a sweep's ray.init(): a driver joining an `nmt cluster` (loopback, Ray's token auth
    off) must not be in token mode, which Ray turns on for its own local instances and which
    a shell may carry; else the cluster's calls to it are refused and its trials cancelled.
    Any other sweep gets the shell's choice back. Ray caches the mode per process (its first
    local ray.init() writes token into os.environ and its config), so a process that ran one
    kind of sweep and then the other (a notebook, the tests) had its next cluster started in
    one mode while the driver spoke the other, and every trial failed: refresh that cache."""
    mode = "disabled" if loopback_cluster(address) else SHELL_AUTH_MODE
    if mode is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = mode
    if "ray._raylet" in sys.modules:  # Ray already ran here: make it read the mode again
        from ray._raylet import AuthenticationTokenLoader, Config
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def cmd_cluster(args, cfg, _pinned: bool) -> int:
    """``nmt cluster up|down|status``."""
    cfg, action = cfg.cluster, args.action
    if action == "up":
        started = up(cfg)
        print(f"Ray cluster at {cfg.address}: " + ", ".join(n.name for n in started)
              + f"\n  nmt sweep sweep.ray_address={cfg.address} sweep.storage_path=<a folder every node sees>")
        return 0
    if action == "down":
        n = down(cfg)
        print(f"stopped {n} processes" if n else "no cluster was running")
        return 0
    found = nodes(cfg)
    print(f"{len(found)} nodes at {cfg.address}" + "".join(f"\n  {n.name} (raylet pid {n.raylet_pid})" for n in found))
    return 0 if found else 3
