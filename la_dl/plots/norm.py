"""Figures of §6: normalisation along different axes of the activation matrix."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from la_dl import norm
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, GREEN, GREY, ORANGE, PURPLE

__all__ = ["NORM_COLORS", "NORM_LABELS", "apply_norm", "axes_of_the_matrix", "distributions",
           "batch_noise"]

NORM_COLORS = {"none": GREY, "batch": BLUE, "layer": ORANGE, "rms": GREEN}
NORM_LABELS = {"none": "raw activations", "batch": "BatchNorm", "layer": "LayerNorm",
               "rms": "RMSNorm"}


def apply_norm(kind: str, h: torch.Tensor) -> torch.Tensor:
    """``h`` (N, C) through the la_dl norm named ``kind`` (no affine; BatchNorm in training)."""
    if kind == "none":
        return h
    if kind == "batch":
        return norm.batch_norm(h, None, None, training=True)
    if kind == "layer":
        return norm.layer_norm(h, h.shape[-1:])
    if kind == "rms":
        return norm.rms_norm(h, h.shape[-1:])
    raise ValueError(f"apply_norm: expected kind 'none', 'batch', 'layer' or 'rms' but got {kind!r}")


@figure("s6_axes")
def axes_of_the_matrix(n_samples: int = 8, n_features: int = 12, seed: int = 0) -> Figure:
    """One activation matrix, three times: raw, BatchNorm'd (columns), LayerNorm'd (rows) (§6.1)."""
    h = norm.digits_activations(n_features, seed=seed)[:n_samples].double()  # (N, C)
    panels = [("none", "raw H: N samples × C features\n"),
              ("batch", "BatchNorm: μ, σ of each column (over\nthe batch) → mean 0, var 1"),
              ("layer", "LayerNorm: μ, σ of each row (over\nthe features) → mean 0, var 1")]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    for ax, (kind, title) in zip(axes, panels):
        y = apply_norm(kind, h)
        lim = y.abs().max().item()
        ax.imshow(y, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
        ax.set(title=title, xlabel="feature (column)", ylabel="sample (row)", xticks=[], yticks=[])
        ax.grid(False)
        if kind == "batch":  # one column's statistics
            ax.add_patch(Rectangle((2.5, -0.5), 1, n_samples, fill=False, ec=BLUE, lw=2.5))
        if kind == "layer":  # one row's statistics
            ax.add_patch(Rectangle((-0.5, 2.5), n_features, 1, fill=False, ec=ORANGE, lw=2.5))
    fig.tight_layout()
    return fig


@figure("s6_distributions")
def distributions(n_show: int = 8, width: int = 32, relu: bool = True, seed: int = 0) -> Figure:
    """Per-feature and per-sample distributions of real activations before and after each norm.

    The raw column has its own y-axis (the three normalised columns share one).
    Top row: ``n_show`` columns (features, active on most samples) over all 1,797 samples; BatchNorm lines
    them up. Bottom row: the first ``n_show`` rows (samples) over their ``width`` features;
    LayerNorm lines them up (mean 0, spread 1) and RMSNorm gives them RMS 1 but keeps their
    means (§6.1, §6.2). By default the activations are taken after a ReLU (non-negative).
    """
    h = norm.digits_activations(width, seed=seed, relu=relu)  # (N, C)
    alive = (h > 0).float().mean(0) > 0.5  # skip ReLU features that are almost always 0
    h = torch.cat([h[:, alive], h[:, ~alive]], 1)  # the same matrix, live features first
    kinds = ["none", "batch", "layer", "rms"]
    fig, axes = plt.subplots(2, 4, figsize=(11, 4.6))
    for row in range(2):  # the three normed panels share a y-axis; the raw one keeps its own,
        for col in (2, 3):  # so each feature's offset and scale stay visible
            axes[row, col].sharey(axes[row, 1])
            axes[row, col].tick_params(labelleft=False)
    for col, kind in enumerate(kinds):
        y = apply_norm(kind, h)
        for row, (data, what) in enumerate([(y[:, :n_show].T, "feature"), (y[:n_show], "sample")]):
            ax = axes[row, col]
            parts = ax.boxplot([d.numpy() for d in data], widths=0.6, showfliers=False,
                               patch_artist=True, medianprops=dict(color="black"))
            for box in parts["boxes"]:
                box.set(facecolor=NORM_COLORS[kind], alpha=0.55)
            means = data.mean(1)
            ax.plot(range(1, n_show + 1), means, "D", color=PURPLE, ms=3.5,
                    label="mean" if (row, col) == (0, 0) else None)
            ax.axhline(0, color=GREY, lw=0.8, ls=":")
            ax.set_xticks(range(1, n_show + 1))
            ax.set_xticklabels([str(i) for i in range(n_show)], fontsize=7)
            if row == 0:
                title = NORM_LABELS[kind] + (" (own y-scale)" if kind == "none" else "")
                ax.set_title(title, color=NORM_COLORS[kind] if kind != "none" else "black")
            ax.set_xlabel(f"{what} index")
        axes[0, 0].set_ylabel("per feature\n(a column, all samples)")
        axes[1, 0].set_ylabel("per sample\n(a row, all features)")
    axes[0, 0].legend(fontsize=8, loc="best")
    what = "ReLU(XWᵀ + b)" if relu else "XWᵀ + b"
    fig.suptitle(f"Digits activations {what}: which axis does each norm standardise?", y=1.0)
    fig.tight_layout()
    return fig


@figure("s6_batch_noise")
def batch_noise(
    batch_sizes: Sequence[int] = (2, 4, 8, 16, 32, 64, 128, 256, 512),
    n_trials: int = 200,
    width: int = 32,
    seed: int = 0,
) -> Figure:
    """BatchNorm's estimate of μ is noisy for small batches: error vs batch size, log–log (§6.1)."""
    h = norm.digits_activations(width, seed=seed).double()  # (N, C)
    errors = norm.batch_mean_error(h, batch_sizes, n_trials, torch.Generator().manual_seed(seed))
    N = h.shape[0]
    sizes = torch.tensor(batch_sizes, dtype=torch.float64)
    theory = torch.sqrt((1 - sizes / N) / sizes)  # σ/sqrt(B), finite-population corrected
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(sizes, errors, "o", color=BLUE, label="measured: batch μ vs population μ (in σ units)")
    ax.plot(sizes, theory, "-", color=GREY, lw=1, label=r"$1/\sqrt{B}$ (finite-population corrected)")
    ax.plot(sizes, torch.zeros_like(sizes), "s", color=ORANGE, ms=4,
            label="LayerNorm / RMSNorm: no batch statistic, no error")
    ax.set(xscale="log", xlabel="batch size B", ylabel="RMS error of batch μ (units of σ)",
           title="BatchNorm's statistics are estimates; their noise falls like 1/√B")
    ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
