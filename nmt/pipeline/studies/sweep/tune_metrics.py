"""What a trial reports and where it lands: the map from Tune's metric names to the Lightning
and store keys, and the lookup of a trial's run in the store. The trial (``trainable``), the
driver's recorder (``tracking``) and the driver all read them here, so neither of the first
two imports the other."""

from __future__ import annotations

from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore

# Keys: the names a trial reports to Tune (which allows no "/"). Values: the Lightning keys
# they are read from, which are also the MLflow keys. The driver writes EPOCH_METRICS always.
EPOCH_METRICS = {"val_bleu": N.VAL_BLEU, "val_loss": N.VAL_LOSS,
                 "gpu_peak_mem_mb": N.GPU_PEAK_MEM}  # the last on GPU trials only
# the last three: only where the driver writes a trial's rows (SQLite), as its one row per report
TUNE_METRICS = {**EPOCH_METRICS, "train_loss": N.TRAIN_LOSS_STEP, "tokens_per_s": N.TOKENS_PER_S,
                "tokens_seen": N.TOKENS_SEEN}
TUNE_METRIC = next(k for k, v in TUNE_METRICS.items() if v == N.VAL_BLEU)  # what ASHA and the winner go by
TUNE_TOKENS = next(k for k, v in TUNE_METRICS.items() if v == N.TOKENS_SEEN)  # ASHA's clock under time_attr=tokens
LAST_REPORT = "last_report"            # true on the trial's last validation: it ends there anyway


def find_trial_run(store: RunStore, parent_run_id: str, trial_id: str) -> str | None:
    """The run of Tune trial ``trial_id`` under sweep parent ``parent_run_id``, or None."""
    runs = store.find(parent=parent_run_id, tags={N.TAG_TRIAL: trial_id}, limit=1)
    return runs[0].id if runs else None
