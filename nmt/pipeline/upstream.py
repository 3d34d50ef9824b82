"""Prepare's typed hand-over: what a prepare run left (``PreparedData``: its data, tokenizers
and counts, and one of its test splits). Every stage and command that needs it comes here.
Nothing here imports a model: prepare's code version covers this module, not the models
(train's hand-over is :mod:`nmt.pipeline.trained`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError
from nmt.components.data.tokenizer import TextCodec
from nmt.components.tracking.run import RunLog
from nmt.components.tracking.uri import project_home

if TYPE_CHECKING:  # annotations only: the stages that read here do not run the config loader
    from nmt.components.data.build import Built
    from nmt.components.tracking.store import RunStore


@dataclass(frozen=True)
class PreparedData:
    """What a prepare run hands on: its tokenized splits, the codec of its tokenizers and its
    counts. The prepare stage publishes through :meth:`publish`; train, evaluate, sweeps and
    the commands :meth:`load` (downloaded once per prepare run into ``.nmt/cache``)."""
    run_id: str
    data_dir: Path           # a DatasetDict in save_to_disk's layout: train, val, test*
    codec: TextCodec
    stats: dict[str, Any]    # data_stats.json: pairs read, kept and dropped per split, the corpora

    @property
    def tokenizer_dir(self) -> Path:
        """``tokenizer/``: the source and target tokenizers' files (what a logged model ships)."""
        return self.data_dir.parent / N.TOKENIZER_DIR

    @staticmethod
    def publish(run: RunLog, built: Built, tmp: Path) -> None:
        """Log ``built`` (prepare's result) as ``data/``, ``tokenizer/`` and ``data_stats.json``."""
        from nmt.components.data.build import save_to_disk
        save_to_disk(built.data, tmp / N.DATA_DIR)  # moves the Arrow files: nothing is read back
        (tmp / N.TOKENIZER_DIR).mkdir()
        built.src_tok.save(str(tmp / N.TOKENIZER_DIR / N.SRC_TOKENIZER))
        built.tgt_tok.save(str(tmp / N.TOKENIZER_DIR / N.TGT_TOKENIZER))
        (tmp / N.DATA_STATS).write_text(json.dumps({**built.stats, "corpora": built.corpora}, indent=2))
        run.log_artifacts(tmp / N.DATA_DIR, N.DATA_DIR)
        run.log_artifacts(tmp / N.TOKENIZER_DIR, N.TOKENIZER_DIR)
        run.log_artifact(tmp / N.DATA_STATS)

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> PreparedData:
        dst = project_home() / ".nmt" / "cache" / run_id
        if not (dst / ".complete").exists():
            dst.mkdir(parents=True, exist_ok=True)
            store.download(run_id, N.DATA_DIR, dst)
            store.download(run_id, N.TOKENIZER_DIR, dst)
            (dst / ".complete").touch()
        if not (dst / N.DATA_STATS).exists():  # a cache from before the stats travelled with it
            store.download(run_id, N.DATA_STATS, dst)
        tok = dst / N.TOKENIZER_DIR
        return cls(run_id, dst / N.DATA_DIR, TextCodec.from_files(tok / N.SRC_TOKENIZER, tok / N.TGT_TOKENIZER),
                   json.loads((dst / N.DATA_STATS).read_text()))


def test_split(store: RunStore, prepare_run_id: str, split: str, limit: int | None = None
               ) -> tuple[list[str], list[str]]:
    """Raw sources and references of one test split of a prepare run (the first ``limit``)."""
    from datasets import load_from_disk

    data = load_from_disk(str(PreparedData.load(store, prepare_run_id).data_dir))
    if split not in data:
        raise ConfigError(f"split {split!r} is not in prepare run {prepare_run_id}; available: "
                          f"{', '.join(k for k in data if k.startswith('test'))}")
    rows = data[split][: limit or len(data[split])]
    return list(rows["src"]), list(rows["tgt"])


test_split.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
