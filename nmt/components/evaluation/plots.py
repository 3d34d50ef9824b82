"""Figures logged as PNG artifacts: attention heatmaps and BLEU-by-length curves.
matplotlib's Agg backend: no display needed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def attention_heatmap(weights: np.ndarray, src_tokens: list[str], tgt_tokens: list[str],
                      title: str, ax: plt.Axes | None = None, vmax: float = 1.0) -> Figure:
    """weights (T, S): row i is the distribution over source tokens when emitting target
    token i. x axis: source tokens, y axis: target tokens (Bahdanau et al. 2015, Fig. 3).
    Black is ``vmax``: 1.0 for attention; a diffuse map (saliency) reads better at its max."""
    T, S = weights.shape
    if (T, S) != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"weights {weights.shape} vs {len(tgt_tokens)} target x {len(src_tokens)} source tokens")
    fig = ax.figure if ax is not None else plt.figure(figsize=(0.35 * S + 2.5, 0.35 * T + 1.8))
    ax = ax or fig.add_subplot(1, 1, 1)
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(S), src_tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(T), tgt_tokens, fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def head_grid(weights: np.ndarray, src_tokens: list[str], tgt_tokens: list[str], title: str) -> Figure:
    """weights (nh, T, S): one heatmap per head of a Transformer layer."""
    nh = weights.shape[0]
    cols = min(4, nh)
    rows = (nh + cols - 1) // cols
    S, T = len(src_tokens), len(tgt_tokens)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * (0.3 * S + 2), rows * (0.3 * T + 1.5)), squeeze=False)
    for h in range(rows * cols):
        ax = axes[h // cols][h % cols]
        if h < nh:
            attention_heatmap(weights[h], src_tokens, tgt_tokens, f"head {h}", ax=ax)
        else:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str, *, logx: bool = False,
            legend: bool = False) -> Figure:
    """The axes, title, grid and layout every plot here shares."""
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def length_plot(curves: dict[str, list[tuple[str, float | None]]], title: str) -> Figure:
    """curves: name -> [(bucket label, BLEU or None)], buckets in the same order."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, points in curves.items():
        xs = [i for i, (_, b) in enumerate(points) if b is not None]
        ax.plot(xs, [points[i][1] for i in xs], marker="o", label=name)
    labels = [b for b, _ in next(iter(curves.values()))] if curves else []
    ax.set_xticks(range(len(labels)), labels)
    return _finish(fig, ax, "source length (words)", "BLEU", title, legend=True)


def scatter_plot(points: dict[str, tuple[float, float]], xlabel: str, title: str, logx: bool = False) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, (x, y) in points.items():
        ax.scatter([x], [y])
        ax.annotate(name, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    return _finish(fig, ax, xlabel, "BLEU", title, logx=logx)


def band_plot(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], xlabel: str, title: str,
              logx: bool = False) -> Figure:
    """curves: name -> one (x, y) per seed. Each name: the mean over its seeds on a common x
    grid (where every seed has reached), and a band from the lowest to the highest seed."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, seeds in curves.items():
        seeds = [(x, y) for x, y in seeds if len(x)]
        if not seeds:
            continue
        hi = min(x[-1] for x, _ in seeds)
        grid = np.linspace(min(x[0] for x, _ in seeds), hi, 60) if hi > 0 else np.array([0.0])
        ys = np.stack([np.interp(grid, x, y) for x, y in seeds])  # (k, 60)
        line, = ax.plot(grid, ys.mean(0), label=f"{name} ({len(seeds)} seeds)")
        ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2, linewidth=0)
    return _finish(fig, ax, xlabel, "val BLEU (greedy)", title, logx=logx, legend=True)
