"""Figures of the exercises (chapters/10_exercises*.ipynb): one function per worked solution."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from la_dl import flops as _flops
from la_dl import norm
from la_dl.plots import figure
from la_dl.plots._style import BLUE, GREEN, GREY, ORANGE, PURPLE, RED

__all__ = ["random_activations", "norm_distributions", "bert_flops", "update_energy"]

_NORMS = [("raw", GREY), ("BatchNorm", BLUE), ("LayerNorm", ORANGE), ("RMSNorm", GREEN)]


def random_activations(batch: int = 256, features: int = 64, seed: int = 0) -> torch.Tensor:
    """A random ``(batch, features)`` activation matrix whose features and samples drift apart.

    Feature ``j`` has its own mean (between −2 and 4) and scale (between 0.5 and 3), the way
    pre-activations drift during training, and each sample (row) has its own overall gain
    (log-normal, like inputs of different brightness). Float64, on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    mean = torch.linspace(-2, 4, features, dtype=torch.float64)[torch.randperm(features, generator=g)]
    scale = torch.linspace(0.5, 3, features, dtype=torch.float64)[torch.randperm(features, generator=g)]
    gain = torch.exp(0.7 * torch.randn(batch, 1, generator=g, dtype=torch.float64))  # (B, 1)
    return gain * (mean + scale * torch.randn(batch, features, generator=g, dtype=torch.float64))  # (B, D)


def _normalise(kind: str, h: torch.Tensor) -> torch.Tensor:
    if kind == "BatchNorm":
        return norm.batch_norm(h, None, None, training=True)  # columns
    if kind == "LayerNorm":
        return norm.layer_norm(h, h.shape[-1:])  # rows
    if kind == "RMSNorm":
        return norm.rms_norm(h, h.shape[-1:])  # rows, no centring
    return h


@figure("ex_norm_distributions")
def norm_distributions(activations: torch.Tensor | None = None, n_show: int = 3) -> Figure:
    """Exercise 11: distributions of a random batch before and after BatchNorm, LayerNorm, RMSNorm.

    Top row: ``n_show`` features (columns), each a histogram over the batch. Bottom row:
    ``n_show`` samples (rows), each a histogram over its features. BatchNorm stacks the top
    histograms on N(0, 1); LayerNorm stacks the bottom ones; RMSNorm rescales the rows but
    leaves their means where they were.
    """
    h = random_activations() if activations is None else activations.detach().cpu().double()
    # Show features with distinct means: the lowest, a middle and the highest column mean.
    order = h.mean(0).argsort()
    columns = order[torch.linspace(0, h.shape[1] - 1, n_show).long()]
    colors = [PURPLE, RED, BLUE, GREEN, ORANGE][:n_show]
    fig, axes = plt.subplots(2, 4, figsize=(10, 4.4), sharey="row")
    for col, (kind, title_color) in enumerate(_NORMS):
        y = _normalise(kind, h)
        lim = max(3.0, y.abs().quantile(0.995).item())  # a few outliers must not squash the bins
        bins = torch.linspace(-lim, lim, 41).numpy()
        for i, (j, c) in enumerate(zip(columns.tolist(), colors)):
            axes[0, col].hist(y[:, j].numpy(), bins=bins, color=c, alpha=0.5, label=f"feature {j}")
            axes[1, col].hist(y[i].numpy(), bins=bins, color=c, alpha=0.5, label=f"sample {i}")
        axes[0, col].set_title(kind, color="black" if kind == "raw" else title_color)
        for ax in axes[:, col]:
            ax.axvline(0, color=GREY, lw=0.8, ls=":")
        axes[1, col].set_xlabel("activation value")
    axes[0, 0].set_ylabel("one feature\n(column, over the batch)")
    axes[1, 0].set_ylabel("one sample\n(row, over features)")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.suptitle(f"A random batch of {h.shape[0]} samples × {h.shape[1]} features, "
                 "before and after each norm")
    fig.tight_layout()
    return fig


@figure("ex_bert_flops")
def bert_flops(
    seq_lens: Sequence[int] = (16, 32, 64, 128, 256, 512, 1024, 2048),
    measured: dict[int, int] | None = None,
    config: _flops.EncoderConfig = _flops.BERT_TINY,
) -> Figure:
    """Exercise 12: forward FLOPs of BERT-tiny by component against the sequence length.

    Left: total FLOPs per component (log-log) with, as black rings, the matmul totals measured
    by ``FlopCounterMode`` (``measured``, ``{seq_len: FLOPs}``). Right: each component's share
    of the total. The attention sublayer (projections and the ``4 n² E`` products) passes the
    FFN at ``n = F − 2E`` (256 for BERT-tiny, where their matmul FLOPs tie).
    """
    groups = [_flops.group_flops(_flops.encoder_flops(config, n)) for n in seq_lens]
    names = list(groups[0])
    colors = {"attention": BLUE, "ffn": ORANGE, "norm": GREEN, "residual": GREY}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    totals = [sum(g[k].total for k in names) for g in groups]
    for name in names:
        values = [g[name].total for g in groups]
        ax1.plot(seq_lens, values, "o-", ms=3, color=colors.get(name, PURPLE), label=name)
        ax2.plot(seq_lens, [v / t for v, t in zip(values, totals)], "o-", ms=3,
                 color=colors.get(name, PURPLE), label=name)
    ax1.plot(seq_lens, totals, "-", color="black", lw=1.2, label="total")
    if measured:
        ns = sorted(measured)
        ax1.plot(ns, [measured[n] for n in ns], "o", mfc="none", mec="black", ms=9,
                 label="matmuls, FlopCounterMode")
    ax1.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="FLOPs (forward)",
            title=f"BERT-tiny ({config.num_layers} layers, d={config.d_model}, FFN {config.dim_feedforward})")
    ax1.legend(fontsize=7)
    ax2.set(xscale="log", ylim=(0, 1), xlabel="sequence length n", ylabel="share of total FLOPs",
            title="Which component dominates?")
    fig.tight_layout()
    return fig


@figure("ex_update_energy")
def update_energy(updates: dict[str, torch.Tensor] | None = None, max_rank: int = 32) -> Figure:
    """Exercise 14: how much of ‖ΔW‖_F² the top-k singular directions capture, per update.

    ``updates`` maps a label to a weight update ΔW. A low-rank update reaches 1 within a few
    directions; an update that LoRA cannot express climbs slowly, like a random matrix.
    """
    if updates is None:
        g = torch.Generator().manual_seed(0)
        low = torch.randn(64, 4, generator=g) @ torch.randn(4, 64, generator=g)
        updates = {"rank-4 update": low, "random (full-rank)": torch.randn(64, 64, generator=g)}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    palette = [BLUE, RED, ORANGE, GREEN, PURPLE]
    for (label, delta), color in zip(updates.items(), palette):
        s = torch.linalg.svdvals(delta.detach().cpu().double())
        energy = (s**2).cumsum(0) / (s**2).sum()
        k = min(max_rank, energy.numel())
        ax.plot(range(1, k + 1), energy[:k].numpy(), "o-", ms=3, color=color, label=label)
    ax.axhline(0.9, color=GREY, ls=":", lw=1)
    ax.text(1, 0.92, "90% of ‖ΔW‖²", color=GREY, fontsize=8)
    ax.set(xlabel="number of singular directions k", ylabel="share of ‖ΔW‖_F² captured",
           ylim=(0, 1.05), title="Is the update low-rank? Energy in the top-k directions")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
