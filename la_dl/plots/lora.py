"""Figures of §8: LoRA as a low-rank update, and what a real fine-tuning run shows."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from la_dl import lora
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, GREEN, GREY, ORANGE, PURPLE, RED

__all__ = ["planted_update", "factorisation", "parameter_savings", "rank_error", "finetune_results",
           "update_spectrum", "energy_fraction"]


def planted_update(
    d_out: int = 48, d_in: int = 40, rank: int = 6, noise: float = 0.0, seed: int = 0
) -> torch.Tensor:
    """A ``d_out × d_in`` update of intrinsic rank ``rank``: ``B A`` from Gaussian factors.

    Each factor entry is N(0, 1/rank), so entries of ``B A`` have unit variance; ``noise``
    adds a full-rank N(0, noise²) matrix on top. Float64.
    """
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(d_out, rank, generator=g, dtype=torch.float64) / rank**0.5  # (d_out, k)
    A = torch.randn(rank, d_in, generator=g, dtype=torch.float64)  # (k, d_in)
    return B @ A + noise * torch.randn(d_out, d_in, generator=g, dtype=torch.float64)


@functools.cache
def _default_experiment() -> lora.FinetuneExperiment:
    """The experiment with its defaults, run once per session for the figures that need it."""
    return lora.finetune_experiment()


def energy_fraction(matrix: torch.Tensor) -> torch.Tensor:
    """Cumulative share of ``‖M‖_F²`` held by the top-k singular values, for every k."""
    s2 = torch.linalg.svdvals(matrix.double()).pow(2)  # (k,)
    return s2.cumsum(0) / s2.sum()


@figure("s8_factorisation")
def factorisation(d_out: int = 32, d_in: int = 40, r: int = 4, seed: int = 0) -> Figure:
    """ΔW = B A drawn to scale: a wide-and-tall ΔW equals a tall B times a wide A (§8.1)."""
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(d_out, r, generator=g)  # (d_out, r)
    A = torch.randn(r, d_in, generator=g)  # (r, d_in)
    delta = B @ A  # (d_out, d_in)
    fig, axes = plt.subplots(1, 5, figsize=(10, 3.3),
                             gridspec_kw=dict(width_ratios=[d_in, 6, r + 2, 4, d_in]))
    panels = {0: (delta, f"ΔW  ({d_out}×{d_in})\n{d_out * d_in} numbers, rank {r}"),
              2: (B, f"B ({d_out}×{r})"),
              4: (A, f"A  ({r}×{d_in})\n{r * (d_in + d_out)} numbers in B and A")}
    for i, ax in enumerate(axes):
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
        if i in panels:
            m, title = panels[i]
            lim = m.abs().max().item()
            ax.imshow(m, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
            ax.set_title(title, fontsize=9)
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, "=" if i == 1 else "×", fontsize=22, ha="center", va="center",
                    transform=ax.transAxes)
    axes[4].set_anchor("N")
    fig.suptitle(f"LoRA stores ΔW through its factors: rank ≤ r = {r}", y=0.98)
    fig.tight_layout()
    return fig


@figure("s8_parameter_savings")
def parameter_savings(d: int = 4096, ranks: Sequence[int] = (1, 2, 4, 8, 16, 32, 64)) -> Figure:
    """Trainable numbers of one d × d layer: full fine-tuning vs LoRA at each rank (§8.1)."""
    full = d * d
    counts = [lora.lora_parameter_count(d, d, r) for r in ranks]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = ["full"] + [f"r={r}" for r in ranks]
    values = [full] + counts
    colors = [RED] + [BLUE] * len(ranks)
    bars = ax.bar(labels, values, color=colors)
    for bar, v in zip(bars[1:], counts):
        ax.text(bar.get_x() + bar.get_width() / 2, v * 1.3, f"{full // v}×", ha="center", fontsize=8)
    ax.text(bars[0].get_x() + bars[0].get_width() / 2, full * 1.3, f"{full / 1e6:.1f}M",
            ha="center", fontsize=8)
    ax.set(yscale="log", ylabel="trainable parameters",
           title=f"One {d}×{d} layer: LoRA trains r(d_in + d_out); labels = reduction")
    ax.set_ylim(top=full * 8)
    fig.tight_layout()
    return fig


@figure("s8_rank_error")
def rank_error(
    d_out: int = 48, d_in: int = 40, intrinsic_rank: int = 6, noise: float = 0.05,
    max_rank: int = 16, seed: int = 0,
) -> Figure:
    """Relative error of the best rank-r approximation vs r (Eckart–Young, §8.1-8.2).

    Two updates with the same intrinsic rank: an exact ``B A`` (error falls to 0 at the
    intrinsic rank) and the same plus a little full-rank noise (it falls to the noise floor).
    """
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ranks = list(range(1, max_rank + 1))
    for eps, color, label in [(0.0, BLUE, "ΔW = BA exactly"), (noise, ORANGE, f"BA + noise ({noise:g})")]:
        delta = planted_update(d_out, d_in, intrinsic_rank, eps, seed)
        errors = [(torch.linalg.matrix_norm(delta - lora.low_rank_approximation(delta, r))
                   / torch.linalg.matrix_norm(delta)).item() for r in ranks]
        ax.plot(ranks, errors, "o-", ms=4, color=color, label=label)
    ax.axvline(intrinsic_rank, color=GREY, ls=":", lw=1)
    ax.text(intrinsic_rank + 0.2, 0.8, f"intrinsic rank {intrinsic_rank}", color=GREY, fontsize=8)
    ax.set(xlabel="rank r of the approximation", ylabel="‖ΔW − ΔW_r‖_F / ‖ΔW‖_F",
           title=f"Best rank-r approximation of a {d_out}×{d_in} update")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure("s8_finetune_results")
def finetune_results(experiment: lora.FinetuneExperiment | None = None) -> Figure:
    """Trainable parameters, training-step memory and accuracy of each run, side by side (§8.2)."""
    experiment = experiment or _default_experiment()
    runs = experiment.runs
    names = [run.name for run in runs]
    y = range(len(runs))
    color = [RED if n == "full" else GREY if n == "head only" else PURPLE if n.startswith("DoRA")
             else BLUE for n in names]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(11, 3.9), sharey=True)

    ax1.barh(y, [run.trainable for run in runs], color=color)
    ax1.set(xscale="log", xlabel="trainable parameters", title="What trains")
    ax1.set_yticks(list(y), names)
    ax1.invert_yaxis()

    kinds = [("parameters", GREY), ("gradients", ORANGE), ("optimizer", RED), ("activations", GREEN)]
    left = [0.0] * len(runs)
    for kind, c in kinds:
        kib = [getattr(run.memory, kind) / 1024 for run in runs]
        ax2.barh(y, kib, left=left, color=c, label=kind)
        left = [a + b for a, b in zip(left, kib)]
    ax2.set(xlabel="KiB in one training step", title="Memory (counted tensors)")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)

    h = 0.38
    ax3.barh([i - h / 2 for i in y], [run.new_accuracy for run in runs], height=h, color=color)
    ax3.barh([i + h / 2 for i in y], [run.old_accuracy for run in runs], height=h, color=color,
             alpha=0.35)
    ax3.axvline(experiment.pretrained_accuracy, color=GREY, ls=":", lw=1)
    ax3.set(xlim=(0.5, 1.0), xlabel="test accuracy", title="Accuracy")
    ax3.legend(handles=[Patch(color="black", label="new task (digits 5-9)"),
                        Patch(color="black", alpha=0.35, label="old task (0-4) via the old head"),
                        Line2D([], [], color=GREY, ls=":", label="old task before fine-tuning")],
               fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    fig.tight_layout()
    return fig


@figure("s8_update_spectrum")
def update_spectrum(experiment: lora.FinetuneExperiment | None = None, seed: int = 0) -> Figure:
    """Is the full fine-tuning update low-rank? Singular values of ΔW = W_full − W₀ (§8.2).

    Left: normalised singular values of each layer's ΔW against a Gaussian matrix of the same
    shape. Right: the share of ‖ΔW‖_F² captured by the top-k directions.
    """
    experiment = experiment or _default_experiment()
    g = torch.Generator().manual_seed(seed)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.3))
    colors = [BLUE, ORANGE]
    for (layer, delta), c in zip(experiment.full_update.items(), colors):
        s = torch.linalg.svdvals(delta.double())
        ax1.plot(range(1, len(s) + 1), s / s[0], "o-", ms=2.5, color=c,
                 label=f"ΔW of {layer} {tuple(delta.shape)}")
        ax2.plot(range(1, len(s) + 1), energy_fraction(delta), "-", color=c, label=layer)
    noise = torch.randn(*delta.shape, generator=g, dtype=torch.float64)
    s = torch.linalg.svdvals(noise)
    shape = "×".join(map(str, noise.shape))
    ax1.plot(range(1, len(s) + 1), s / s[0], "-", color=GREY, label=f"random Gaussian {shape}")
    ax2.plot(range(1, len(s) + 1), energy_fraction(noise), "-", color=GREY, label=f"random {shape}")
    # Some rows and columns of ΔW never get a gradient, so the tail of σ's is 0 (off the chart):
    # columns for inputs that are always 0 on the new task (blank pixels for fc1, silent fc1 units
    # for fc2) and rows for ReLU units that never fire. fc1's rank stops at 64 − #blank pixels.
    ax1.set(yscale="log", xlabel="index i", ylabel="σ_i / σ_1", title="Spectrum of the update",
            ylim=(1e-4, 1.5))
    ax2.set(xscale="log", xlabel="top-k directions kept", ylabel="share of ‖ΔW‖²_F",
            title="Energy captured by rank k", ylim=(0, 1.02))
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
