"""The REST endpoint under the worst request its bounds allow: peak RSS of the server
(``mlflow models serve`` and its uvicorn worker, summed) and latency at the maximum beam.

    python -m benchmarks.bench_serving [--tracking-uri URI] [--model models:/nmt-de-en@champion]
                                       [--sentences N] [--timeout S]

Without ``--tracking-uri`` it registers, in a throw-away store, a Transformer of the demo's
size (``model=transformer_tiny``, joint vocabulary 8,000) after one training step: an
untrained model decodes every sentence to its full length budget, so its cost is the
upper bound. The server runs on 127.0.0.1 only, and the loop is bounded (a few requests).

The worst request: beam_size 16, max_len_ratio 4, sentences of 2,000 characters that
tokenize past max_positions (truncated to 511 tokens, decoding to 512 steps). Decoding
batches run one after another, so the peak is that of one full batch: ``--sentences``
defaults to two full batches of the memory estimate, or fewer where the work bound
(``NMT_SERVE_MAX_WORK``, 3/4 of the request timeout ``--timeout``, MLflow's 60 s by default)
allows fewer; one sentence more than the work bound allows must then be refused at once.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from benchmarks.common import machine

LONG = ("EIN MANN IN EINEM BLAUEN HEMD STEHT AUF EINER LEITER UND PUTZT EIN FENSTER. " * 30)[:2000]
TYPICAL = ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball auf einer Wiese.",
           "Eine Frau in einem roten Mantel liest ein Buch.", "Kinder spielen im Schnee vor einem Haus.",
           "Ein Mann fährt mit dem Fahrrad eine Straße entlang."] * 2
WORST = {"beam_size": 16, "max_len_ratio": 4.0, "length_penalty": 0.6}


def build_store(home: Path) -> str:
    """A throw-away store whose nmt-de-en@champion is a demo-sized Transformer, one step."""
    from nmt.pipeline.cli import main
    uri = f"sqlite:///{home / 'mlflow.db'}"
    os.environ.update({"NMT_HOME": str(home), "MLFLOW_TRACKING_URI": uri})
    overrides = ["model=transformer_tiny", "trainer.max_steps=1", "trainer.max_epochs=1", "data.val_limit=20",
                 "data.test_limit=10", "evaluate.beam_size=1", "evaluate.splits=[test_2016_flickr]",
                 "evaluate.num_samples=2", "evaluate.attention_samples=0", "demo_sentences=0",
                 "trainer.val_bleu_limit=20", "trainer.precision=32"]
    assert main(["run", *overrides]) == 0
    return uri


class PeakRSS(threading.Thread):
    """Polls the summed RSS of a process and its children every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def current(self) -> int:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.05)


def post(base: str, body: dict, timeout: float = 3600) -> tuple[int, dict, float]:
    req = urllib.request.Request(f"{base}/invocations", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), time.perf_counter() - t
    except urllib.error.HTTPError as err:  # MLflow's 504 is plain text
        text = err.read() or b"{}"
        try:
            return err.code, json.loads(text), time.perf_counter() - t
        except ValueError:
            return err.code, {"message": text.decode(errors="replace")}, time.perf_counter() - t


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit("server did not come up")


def measure(uri: str, model: str, sentences: int | None, log: Path, timeout: float) -> dict:
    with socket.socket() as s:  # a free port on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": f"{timeout:g}"}
    cmd = ["mlflow", "models", "serve", "-m", model, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
           "--workers", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base, proc)
        rss = PeakRSS(proc.pid)
        idle = rss.current()
        rss.start()
        typical = [post(base, {"inputs": TYPICAL, "params": WORST})[2] for _ in range(3)]
        batch, allowed, everyday = batch_of_worst(uri, model, timeout)
        n = sentences or min(2 * batch, allowed)
        status, answer, worst_s = post(base, {"inputs": [LONG] * n, "params": WORST})
        over, over_answer, over_s = post(base, {"inputs": [LONG] * (allowed + 1), "params": WORST})
        full = (TYPICAL * (everyday // len(TYPICAL) + 1))[:everyday]  # everyday sentences up to the bound, beam 5
        full_status, _, full_s = post(base, {"inputs": full, "params": {"beam_size": 5}})
        refused, _, _ = post(base, {"inputs": TYPICAL, "params": {**WORST, "beam_size": 100000}})
        rss.stop.set()
        rss.join()
        return {"idle_mb": idle / 2**20, "peak_mb": rss.peak / 2**20, "worst_status": status, "worst_n": n,
                "worst_s": worst_s, "typical_s": statistics.median(typical), "beam100000_status": refused,
                "everyday": everyday, "full_status": full_status, "full_s": full_s,
                "allowed": allowed, "over_status": over, "over_s": over_s, "over_message": over_answer.get("message"),
                "alive_after": post(base, {"inputs": ["Hallo."], "params": {"beam_size": 1}})[0]}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def batch_of_worst(uri: str, model: str, timeout: float) -> tuple[int, int, int]:
    """Sentences per decoding batch the memory estimate allows for the worst request,
    sentences of it one request may hold by the work bound at this request timeout, and
    everyday sentences (TYPICAL, cycled) at beam 5 it may hold."""
    import mlflow
    from nmt.components.serving.bounds import Shape, batch_size_for, decode_work
    from nmt.components.serving.requests import WORK_RATE
    from nmt.components.decoding.search import step_budget
    from nmt.components.decoding import LEN_EXTRA
    from nmt.components.serving.inference import BATCH_SIZE
    from nmt.components.serving.requests import WORK_ENV, WORK_SHARE
    mlflow.set_tracking_uri(uri)
    m = mlflow.pyfunc.load_model(model).unwrap_python_model()
    shape, top = Shape.of(m.model.cfg, m.codec.tgt.get_vocab_size()), m.model.max_positions
    limit = float(os.environ.get(WORK_ENV) or WORK_RATE * WORK_SHARE * timeout)
    allowed = int(limit // decode_work(WORST["beam_size"], [top], [top]))
    lengths = [len(ids) + 1 for ids in m.codec.encode_src(TYPICAL)]
    steps = [step_budget(m.model, int(1.5 * n) + LEN_EXTRA) for n in lengths]
    everyday = int(limit // (decode_work(5, lengths, steps) / len(TYPICAL)))
    return batch_size_for(shape, WORST["beam_size"], top, top, BATCH_SIZE), allowed, everyday


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracking-uri", help="a store with the model (default: build a throw-away one)")
    ap.add_argument("--model", default="models:/nmt-de-en@champion")
    ap.add_argument("--sentences", type=int, help="sentences in the worst request (default: 2 full batches, "
                    "or what the work bound allows)")
    ap.add_argument("--timeout", type=float, default=60, help="MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT (s)")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nmt-bench-serving-"))
    uri = args.tracking_uri or build_store(home)
    r = measure(uri, args.model, args.sentences, home / "server.log", args.timeout)
    print(f"# REST worst allowed request, {machine()}")
    print(f"server RSS idle {r['idle_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB "
          f"(mlflow models serve + uvicorn worker, summed)")
    print(f"worst request: {r['worst_n']} x 2000 characters, beam 16, max_len_ratio 4 -> HTTP {r['worst_status']} "
          f"in {r['worst_s']:.1f} s")
    print(f"work bound at a {args.timeout:g} s request timeout: {r['allowed']} such sentences; "
          f"{r['allowed'] + 1} -> HTTP {r['over_status']} in {r['over_s']:.2f} s ({r['over_message']})")
    print(f"everyday sentences up to the work bound: {r['everyday']} at beam 5 -> HTTP {r['full_status']} "
          f"in {r['full_s']:.1f} s")
    print(f"10 typical sentences at beam 16: {r['typical_s']:.2f} s (median of 3)")
    print(f"beam_size 100000 -> HTTP {r['beam100000_status']}; a request after it -> HTTP {r['alive_after']}")


if __name__ == "__main__":
    main()
