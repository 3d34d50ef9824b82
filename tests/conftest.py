"""Shared fixtures: the real Multi30k files, a throw-away project home with its own SQLite
MLflow store, and one shrunken config that tests copy and extend."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# Nothing here reaches the hub: datasets and huggingface_hub read these when first imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
VENV_BIN = Path(sys.executable).parent

# A run small enough for CI: 200 training pairs, tiny GRU, one epoch.
TINY = [
    "data.train_limit=200", "data.val_limit=40", "data.test_limit=30", "data.vocab_size=300",
    "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "model.dropout=0.0",
    "trainer.max_epochs=1", "trainer.max_minutes=null", "trainer.batch_tokens=1024",
    "trainer.val_bleu_limit=40", "trainer.log_every_n_steps=1", "evaluate.beam_size=2",
    "evaluate.num_samples=5", "demo_sentences=2",
]

# One training step: enough for a registry whose champion answers (serve, translate).
TINY_RUN = [
    "data.train_limit=200", "data.val_limit=20", "data.test_limit=10", "data.vocab_size=300",
    "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "model.dropout=0.0",
    "trainer.max_epochs=1", "trainer.max_steps=1", "trainer.max_minutes=null", "trainer.num_threads=1",
    "trainer.precision=32", "evaluate.beam_size=1", "evaluate.num_samples=2", "evaluate.attention_samples=0",
    "demo_sentences=0",
]

# A tiny Transformer champion (serving and input tests): a few epochs, so its translations
# differ between sentences; max_positions 128, so a long line really passes it.
TINY_TRANSFORMER_RUN = [o for o in TINY_RUN if not o.startswith(("model", "trainer.max_steps", "trainer.max_epochs"))] + [
    "model=transformer_tiny", "model.d_model=16", "model.num_encoder_layers=1", "model.num_decoder_layers=1",
    "model.num_heads=2", "model.ff_dim=32", "model.dropout=0.0", "model.max_positions=128",
    "trainer.max_epochs=3", "trainer.batch_tokens=512", "optim.lr=0.005",
]


# ---------------------------------------------------------------- tiny networks (model tests)
B, S, T, SRC_V, TGT_V = 3, 7, 5, 23, 29
PAD, BOS, EOS = 0, 1, 2
TINY_NETS = {  # distinct small sizes so a transposed dim cannot pass silently
    "gru": {"arch": "seq2seq", "cell": "gru", "emb_dim": 10, "hidden_dim": 12, "num_layers": 2},
    "lstm": {"arch": "seq2seq", "cell": "lstm", "emb_dim": 10, "hidden_dim": 12, "num_layers": 2},
    "bahdanau": {"arch": "attention", "score": "bahdanau", "emb_dim": 10, "enc_hidden_dim": 6,
                 "dec_hidden_dim": 12, "attn_dim": 14},
    "dot": {"arch": "attention", "score": "dot", "emb_dim": 10, "enc_hidden_dim": 6,
            "dec_hidden_dim": 12},
    "general": {"arch": "attention", "score": "general", "emb_dim": 10, "enc_hidden_dim": 6,
                "dec_hidden_dim": 16},
    "transformer": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 2,
                    "num_decoder_layers": 2, "num_heads": 3, "ff_dim": 20, "dropout": 0.1,
                    "share_embeddings": False},
    "transformer_post": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 1,
                         "num_decoder_layers": 2, "num_heads": 2, "ff_dim": 20,
                         "norm": "post", "positional": "learned", "share_embeddings": True},
}
ATTENTION_KINDS = ["bahdanau", "dot", "general"]


def tiny_net(mapping: dict, src_v: int, tgt_v: int, shared: bool = False, pad: int = PAD, bos: int = BOS,
             eos: int = EOS):
    """A network built the way the pipeline builds one: a parsed config and a vocabulary."""
    from nmt.components.models.base import Vocabulary
    from nmt.components.models.factory import ModelSpec, build, parse_model
    return build(ModelSpec(parse_model(mapping), Vocabulary(src_v, tgt_v, pad, bos, eos, shared)))


def make(name: str, shared_vocab: bool = False, **override):
    """One of TINY_NETS, seeded, in eval mode."""
    torch.manual_seed(0)
    tgt_v = SRC_V if shared_vocab else TGT_V
    return tiny_net({**TINY_NETS[name], **override}, SRC_V, tgt_v, shared=shared_vocab).eval()


def batch(vocab: int = TGT_V):
    """Source with lengths 7, 4, 2 (right-padded) and a target starting with BOS."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, SRC_V, (B, S), generator=g)
    mask = torch.arange(S)[None, :] < torch.tensor([S, 4, 2])[:, None]  # (B, S)
    src = src.masked_fill(~mask, PAD)
    tgt_in = torch.randint(3, vocab, (B, T), generator=g)
    tgt_in[:, 0] = BOS
    return src, mask, tgt_in


def step_through(model, src, mask, tgt_in):
    """Teacher tokens fed one by one through decode_step -> logits (B, T, V), attentions."""
    state = model.init_state(model.encode(src, mask), mask)
    logits, attn = [], []
    for t in range(tgt_in.shape[1]):
        lg, state, a = model.decode_step(tgt_in[:, t], state)
        logits.append(lg)
        attn.append(a)
    return torch.stack(logits, 1), torch.stack(attn, -2)


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    raw = os.environ.get("MULTI30K_DIR") or str(ROOT.parent / "shared" / "data" / "multi30k")
    path = Path(raw)
    if not (path / "train.de.gz").is_file():
        pytest.fail(f"Multi30k not found at {path}: set MULTI30K_DIR to the raw task-1 files")
    return path


def _use_home(mp: pytest.MonkeyPatch, home: Path, multi30k_dir: Path, uri: str | None = None) -> str:
    """Point the project (env and MLflow's in-process URI) at ``home`` and its own SQLite store,
    or at the tracking server ``uri``; returns the store URI."""
    home.mkdir(parents=True, exist_ok=True)
    uri = uri or f"sqlite:///{home / 'mlflow.db'}"
    for var, value in {"NMT_HOME": str(home), "MULTI30K_DIR": str(multi30k_dir), "MLFLOW_TRACKING_URI": uri,
                       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
        mp.setenv(var, value)
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "SACREBLEU_SEED"):
        mp.delenv(var, raising=False)
    mlflow.set_tracking_uri(uri)  # MLflow keeps the last URI set in-process: never a stale store
    return uri


def _end_active_runs() -> None:
    while mlflow.active_run():
        mlflow.end_run("FAILED")


@pytest.fixture
def nmt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multi30k_dir: Path) -> Path:
    """A fresh project home: store, artifacts and caches under tmp_path."""
    before = mlflow.get_tracking_uri()
    _use_home(monkeypatch, tmp_path / "home", multi30k_dir)
    yield tmp_path / "home"
    _end_active_runs()
    mlflow.set_tracking_uri(before)  # MLflow's in-process URI back to the module's (nmt sets none)


@contextlib.contextmanager
def module_home(tmp_path_factory: pytest.TempPathFactory, multi30k_dir: Path, name: str,
                uri: str | None = None) -> Iterator[tuple[Path, str]]:
    """A project home shared by one test module (build a store once, test it many times);
    the environment and torch's thread count are restored on exit."""
    home = tmp_path_factory.mktemp(name) / "home"
    threads = torch.get_num_threads()
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        uri = _use_home(mp, home, multi30k_dir, uri)
        try:
            yield home, uri
        finally:
            _end_active_runs()
            mlflow.set_tracking_uri(before)
    torch.set_num_threads(threads)  # fit() may have set fewer threads for the whole process


@pytest.fixture(scope="session")
def transformer_store(tmp_path_factory, multi30k_dir) -> str:
    """A store whose nmt-de-en@champion is a tiny Transformer (built once per session)."""
    from nmt.pipeline.cli import main
    with module_home(tmp_path_factory, multi30k_dir, "transformer-champion") as (_, uri):
        assert main(["run", *TINY_TRANSFORMER_RUN]) == 0
    return uri


@pytest.fixture(scope="session")
def alignment_gold() -> Path:
    """The RWTH German-English gold alignments (research use: read in place, never copied
    into the project); skipped where they are not on this machine."""
    path = Path(os.environ.get("NMT_ALIGNMENT_GOLD") or ROOT.parent / "shared" / "data" / "alignment-deen")
    if not (path / "alignmentDeEn.talp").is_file():
        pytest.skip(f"the RWTH alignment gold set is not at {path} (set NMT_ALIGNMENT_GOLD)")
    return path


@pytest.fixture
def conf_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``conf/`` that this process reads from now on: a test that adds a config
    file (a model, a stage's section) edits it, never the checkout's, which tests running
    beside it (pytest-xdist) read."""
    import shutil

    from nmt.components.system.paths import CONF_DIR
    from nmt.pipeline import cli, compose, config_errors
    from nmt.pipeline.studies import journey
    copy = tmp_path / "conf"
    shutil.copytree(CONF_DIR, copy)
    for reader in (cli, compose, config_errors, journey):
        monkeypatch.setattr(reader, "CONF_DIR", copy)
    return copy


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run where CUDA is visible and are skipped elsewhere. The modules of
    the services groups come first: they are the longest chains, so the workers start them at
    once and share out the rest while they run."""
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)
    groups = services_groups()
    items.sort(key=lambda item: str(item.path.relative_to(ROOT)) not in groups)  # stable: order within kept


SERVICES_MARK = re.compile(r"pytest\.mark\.services\b")
POSTGRES_USE = re.compile(r"\bpostgres\b")  # the fixture: a module that needs the machine's PostgreSQL


@functools.cache
def services_groups() -> dict[str, str]:
    """Each module with a test marked ``services`` -> its group: ``services-postgres`` for those
    that use the machine's PostgreSQL (the fault tests restart it), ``services-ray`` for the
    others (their own local Rays and clusters, on SQLite stores)."""
    out = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        if SERVICES_MARK.search(text):
            out[str(path.relative_to(ROOT))] = "services-postgres" if POSTGRES_USE.search(text) else "services-ray"
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist (``make test``: two workers) a test module runs on one worker (its
    module fixtures are built once), and the modules of each services group
    (:func:`services_groups`) run on one worker, one after another: those on PostgreSQL share
    what is the machine's (the fault tests restart it under the others), so they never run
    beside each other; the Ray-only ones start their own Rays (ports chosen free, sessions
    apart) and run beside the PostgreSQL group. (xdist's own ``loadgroup`` cannot group here:
    it renames a test's node id, which pytest 9.2 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    groups = services_groups()

    class ServicesApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return groups.get(module, module)

    return ServicesApart(config, log)


# Where a run's time went, printed at its end: each worker's seconds of tests by services group
# (the rest as "other"), and when it ran out of work. The longer worker is the run's critical
# path, so this says whether a group or the shared-out rest decides the suite's wall time.
_WORKER_SECONDS: dict[str, dict[str, float]] = {}
_WORKER_DONE: dict[str, float] = {}
_SESSION_START = time.monotonic()  # this conftest is read as the session starts


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    gateway = getattr(getattr(report, "node", None), "gateway", None)  # set on xdist's controller only
    if gateway is not None:
        group = services_groups().get(report.nodeid.split("::", 1)[0], "other")
        seconds = _WORKER_SECONDS.setdefault(gateway.id, {})
        seconds[group] = seconds.get(group, 0.0) + report.duration


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    _WORKER_DONE[node.gateway.id] = time.monotonic() - _SESSION_START


def pytest_terminal_summary(terminalreporter: object) -> None:
    for worker, seconds in sorted(_WORKER_SECONDS.items()):
        groups = ", ".join(f"{group} {s:.0f} s" for group, s in sorted(seconds.items()))
        done = _WORKER_DONE.get(worker)
        terminalreporter.write_line(f"worker {worker}: {groups}" + (f"; done {done:.0f} s into the run" if done else ""))


# -- services: PostgreSQL, an MLflow tracking server, a multi-node Ray ----------------

def require(service: str, reason: str) -> None:
    """Skip with the reason where a service is missing; fail under NMT_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("NMT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} is required here (NMT_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"needs {service}: {reason}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> None:
    import psycopg2
    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3).close()
    except psycopg2.OperationalError as err:
        require("PostgreSQL on 127.0.0.1:5432", f"it does not answer ({str(err).strip().splitlines()[0]}); start it: "
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def server_overrides(state_dir: Path, *extra: str) -> list[str]:
    """A throw-away tracking server: free port, its own database, state under ``state_dir``."""
    return [f"server.port={free_port()}", f"server.database=nmt_test_{uuid.uuid4().hex[:8]}",
            "server.role=nmt_test", f"server.state_dir={state_dir}", *extra]


@contextlib.contextmanager
def tracking_server(state_dir: Path, *extra: str) -> Iterator[tuple[object, str]]:
    """``nmt server up`` on PostgreSQL, yielding (ServerConfig, URL); down and dropped after."""
    from nmt.pipeline.cli import main
    from nmt.pipeline.config import load_config
    from nmt.pipeline.services import database, server

    overrides = server_overrides(state_dir, *extra)
    cfg = load_config(overrides).server
    assert main(["server", "up", *overrides]) == 0, (state_dir / "server.log").read_text()[-3000:]
    try:
        yield cfg, cfg.url
    finally:
        server.down(cfg)
        database.drop_databases(cfg)


@contextlib.contextmanager
def ray_cluster(state_dir: Path, *extra: str) -> Iterator[object]:
    """``nmt cluster up``: a head without CPUs and two 1-CPU workers; always stopped."""
    from nmt.components.system.errors import ConfigError, ServiceError
    from nmt.pipeline.config import load_config
    from nmt.pipeline.services import cluster

    cfg = load_config([f"cluster.port={free_port('127.0.0.2')}", f"cluster.state_dir={state_dir}", *extra]).cluster
    try:
        cluster.up(cfg)
    except (ConfigError, ServiceError) as err:  # a taken port; Ray that would not start
        require("a multi-node Ray on 127.0.0.2", str(err))
    try:
        yield cfg
    finally:
        cluster.down(cfg)


def post_json(url: str, body: bytes, auth: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        text = err.read() or b"{}"
        try:
            return err.code, json.loads(text)
        except ValueError:  # e.g. basic auth's plain-text 401
            return err.code, {"text": text.decode(errors="replace")}


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process we started and every descendant it has (a sweep driver's own Ray
    head, raylet and workers): never `ray stop`, which kills every Ray on the machine."""
    import psutil
    try:
        family = [psutil.Process(proc.pid)]
        family += family[0].children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.wait()
    psutil.wait_procs(family, timeout=10)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a process group (mlflow + uvicorn), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def serving(store_uri: str, log_path: Path, model: str = "models:/nmt-de-en@champion",
            timeout: float = 120) -> Iterator[str]:
    """``mlflow models serve`` of ``model`` from ``store_uri``; yields its base URL."""
    port = free_port()
    # the server copies the model into a temp folder it never removes: the test's own, not /tmp
    tmp = log_path.parent / f"{log_path.stem}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "TMPDIR": str(tmp)}
    cmd = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        from nmt.pipeline.services.server import wait_until_up
        outcome = wait_until_up(proc, base, timeout, path="/ping")
        if outcome != "up":
            pytest.fail(f"server {outcome} (code {proc.poll()}) before {base}/ping answered:\n"
                        f"{log_path.read_text()[-3000:]}")
        yield base
    finally:
        stop_group(proc)


# ---------------------------------------------------------------- fault tests: nothing lost
def metric_steps(run_id: str, key: str) -> list[int]:
    return [m.step for m in MlflowClient().get_metric_history(run_id, key)]


def assert_nothing_lost(run, epochs: int | None = None) -> None:
    """One row per step (contiguous from 0) and per epoch; the run ended."""
    steps, per_epoch = metric_steps(run.info.run_id, "train/loss_step"), metric_steps(run.info.run_id, "val/bleu")
    assert run.info.status == "FINISHED"
    assert len(steps) == len(set(steps)) and sorted(steps) == list(range(len(steps))), "a step row lost or doubled"
    assert len(per_epoch) == len(set(per_epoch)) == (epochs or len(per_epoch))
    if "steps" in run.data.metrics:  # a train run says how many steps it ran
        assert len(steps) == int(run.data.metrics["steps"])


def assert_no_run_running() -> None:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
