"""Shared by the benchmarks: real Multi30k batches without MLflow, and a timer."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.pipeline.config import PipelineConfig, load_config
from nmt.pipeline.stages.prepare import build_dataset

_CACHE = Path(tempfile.gettempdir()) / "nmt-bench-data"


def real_data(overrides: list[str] = ()) -> tuple[PipelineConfig, Path, TextCodec]:
    """Multi30k de-en prepared as the prepare stage does it (cached in /tmp)."""
    cfg = load_config(list(overrides))
    out = _CACHE / f"{cfg.data.src_lang}-{cfg.data.tgt_lang}-{cfg.data.vocab_size}"
    if not (out / "data").exists():
        with tempfile.TemporaryDirectory() as work:
            built = build_dataset(cfg, Path(work))
            out.mkdir(parents=True, exist_ok=True)
            built.src_tok.save(str(out / "src.json"))
            built.tgt_tok.save(str(out / "tgt.json"))
            built.data.save_to_disk(str(out / "data"))
    return cfg, out / "data", TextCodec.from_files(out / "src.json", out / "tgt.json")


def trained(store, run_id: str):
    """(model in eval mode, codec) of a finished train run in ``store``: its checkpoint and its
    prepare run's tokenizers."""
    from nmt.components.tracking import names as N
    from nmt.pipeline.trained import trained_model
    from nmt.pipeline.upstream import PreparedData
    model, _ = trained_model(store, run_id)
    return model, PreparedData.load(store, store.get_run(run_id).params[N.PARAM_PREPARE_RUN]).codec


def random_init(arch: str, seed: int = 0):
    """(model in eval mode, codec) of ``arch`` at its configured size, random init, on
    Multi30k's vocabulary."""
    import torch
    from nmt.components.models.factory import build
    from nmt.pipeline.trained import model_spec
    cfg, _, codec = real_data([f"model={arch}"])
    torch.manual_seed(seed)
    return build(model_spec(cfg, codec)).eval(), codec


def train_batches(data_dir: Path, n: int, max_tokens: int = 4096, seed: int = 0) -> list[dict]:
    dm = TranslationDataModule(data_dir, max_tokens=max_tokens, seed=seed)
    dm.setup()
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> str:
    """CPU model and vector level, cores, torch, and the GPU when one is visible."""
    import platform

    import torch

    from nmt.components.training.devices import native_bf16
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu} ({torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16('cpu')}), "
            f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads{gpu}")
