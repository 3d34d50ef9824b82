"""``nmt sweep``: Ray Tune over the same Lightning training as the train stage."""

from __future__ import annotations

import argparse


def cmd_sweep(args: argparse.Namespace, cfg, _pinned: bool) -> int:
    """``nmt sweep``: here, not in the driver, because Ray's auth mode is set before Ray is imported."""
    from nmt.pipeline.override_line import expand_overrides
    from nmt.pipeline.services.cluster import auth_env_for
    auth_env_for(cfg.sweep.ray_address)
    from nmt.pipeline.studies.sweep.driver import format_summary, run_sweep
    out = run_sweep(cfg, expand_overrides(args))
    print("\n" + format_summary(out.rows))
    r = out.register
    print(f"\nbest trial run {out.best_trial_run_id}: val/bleu {out.best_val_bleu:.2f}; "
          f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    return 0
