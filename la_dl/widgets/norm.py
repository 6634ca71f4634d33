"""Widget of §6: batch size × norm type → how much one sample's output depends on its batch."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from la_dl import norm
from la_dl.plots._style import GREY
from la_dl.plots.norm import NORM_COLORS, NORM_LABELS, apply_norm
from la_dl.widgets import explorable

__all__ = ["batch_dependence"]


def batch_dependence(
    batch_sizes: Sequence[int] = (2, 4, 8, 16, 32, 64, 128, 512),
    kinds: Sequence[str] = ("batch", "layer", "rms"),
    width: int = 32,
    n_batches: int = 6,
    seed: int = 0,
) -> W.VBox:
    """Pick a batch size and a norm: sample 0, normalised inside ``n_batches`` random batches.

    The x-axis is sample 0's output when the statistics come from all 1,797 samples (for
    BatchNorm: the population; LayerNorm/RMSNorm use no other sample at all); the y-axis is
    its output inside a random batch of size B. BatchNorm's points scatter around the diagonal,
    less as B grows (§6.1); LayerNorm's and RMSNorm's sit on it for every B.
    """
    h = norm.digits_activations(width, seed=seed).double()  # (N, C)
    N = h.shape[0]

    def deviations(batch_size: int, kind: str, reference: torch.Tensor):
        """Sample 0's outputs in ``n_batches`` random batches, and the largest change."""
        g = torch.Generator().manual_seed(seed)
        outs = []
        for _ in range(n_batches):
            others = torch.randperm(N - 1, generator=g)[: batch_size - 1] + 1  # (B-1,)
            batch = torch.cat([h[:1], h[others]])  # sample 0 and B-1 others: (B, C)
            outs.append(apply_norm(kind, batch)[0])  # (C,)
        outs = torch.stack(outs)  # (n_batches, C)
        return outs, (outs - reference).abs().max().item()

    curves: dict[str, list[float]] = {}  # filled on first use, shared by every state

    def draw(batch_size: int, kind: str):
        reference = apply_norm(kind, h)[0]  # sample 0 with population statistics: (C,)
        outs, worst = deviations(batch_size, kind, reference)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.5, 3), gridspec_kw=dict(width_ratios=[1, 1.3]))
        for out in outs:
            ax.plot(reference, out, "o", ms=3, alpha=0.6, color=NORM_COLORS[kind])
        lim = reference.abs().max().item() * 1.6 + 0.5
        ax.plot([-lim, lim], [-lim, lim], color=GREY, lw=1, ls=":")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
               xlabel="sample 0, whole-dataset statistics", ylabel=f"inside a batch of {batch_size}",
               title=f"{NORM_LABELS[kind]}, {n_batches} batches")
        for k in kinds:  # the largest change against B, for every norm
            if k not in curves:
                ref_k = apply_norm(k, h)[0]
                curves[k] = [deviations(b, k, ref_k)[1] for b in batch_sizes]
            curve = curves[k]
            ax2.plot(batch_sizes, curve, "o-", ms=3, color=NORM_COLORS[k], label=NORM_LABELS[k],
                     lw=2.5 if k == kind else 1)
        ax2.plot([batch_size], [worst], "o", ms=10, mfc="none", mec="black")
        ax2.set(xscale="log", xlabel="batch size B", ylabel="largest change of the output",
                title="Dependence on the batch")
        ax2.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
        ax2.legend(fontsize=8)
        fig.tight_layout()
        summary = (f"{NORM_LABELS[kind]}, B = {batch_size}: largest change of sample 0's output "
                   f"caused by its batch-mates = <b>{worst:.3f}</b>")
        return fig, summary

    return explorable(
        draw,
        {"batch_size": list(batch_sizes), "kind": list(kinds)},
        labels={"batch_size": "batch size B", "kind": "norm"},
        initial={"batch_size": batch_sizes[1], "kind": kinds[0]},
        title="Does a sample's output depend on its batch?",
    )
