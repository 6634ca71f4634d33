"""Widget of §8: the rank r of a LoRA update against what it can represent."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from la_dl import lora
from la_dl.plots._style import BLUE, CMAP_DIVERGING, GREY
from la_dl.plots.lora import planted_update
from la_dl.widgets import explorable

__all__ = ["rank_explorer"]


def rank_explorer(
    ranks: Sequence[int] = (1, 2, 3, 4, 5, 6, 8, 12, 16),
    d_out: int = 48,
    d_in: int = 40,
    intrinsic_rank: int = 6,
    noise: float = 0.05,
    seed: int = 0,
) -> W.VBox:
    """Slide r: the best rank-r approximation of an update of intrinsic rank 6 (§8.1-8.2).

    The update is ``B A`` (rank ``intrinsic_rank``) plus a little full-rank noise. For each r
    the widget shows the update, its best rank-r approximation (Eckart–Young, what a perfectly
    trained rank-r LoRA could reach), the error against r, and the parameter count.
    """
    delta = planted_update(d_out, d_in, intrinsic_rank, noise, seed)  # (d_out, d_in)
    norm = torch.linalg.matrix_norm(delta).item()
    errors = {r: torch.linalg.matrix_norm(delta - lora.low_rank_approximation(delta, r)).item() / norm
              for r in ranks}
    lim = delta.abs().max().item()

    def draw(r: int):
        approx = lora.low_rank_approximation(delta, r)  # (d_out, d_in)
        fig, axes = plt.subplots(1, 3, figsize=(8, 2.9), gridspec_kw=dict(width_ratios=[1, 1, 1.4]))
        for ax, m, title in [(axes[0], delta, "ΔW (intrinsic rank 6 + noise)"),
                             (axes[1], approx, f"best rank-{r} approximation")]:
            ax.imshow(m, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
            ax.set(title=title, xticks=[], yticks=[])
            ax.title.set_fontsize(9)
            ax.grid(False)
        ax = axes[2]
        ax.plot(list(errors), list(errors.values()), "o-", ms=3, color=BLUE)
        ax.plot([r], [errors[r]], "o", ms=10, mfc="none", mec="black")
        ax.axvline(intrinsic_rank, color=GREY, ls=":", lw=1)
        ax.set(xlabel="rank r", ylabel="relative error", title="‖ΔW − ΔW_r‖_F / ‖ΔW‖_F")
        ax.title.set_fontsize(9)
        fig.tight_layout()
        params = lora.lora_parameter_count(d_in, d_out, r)
        summary = (f"r = {r}: LoRA trains r(d_in + d_out) = <b>{params}</b> numbers instead of "
                   f"d_in·d_out = {d_in * d_out} ({d_in * d_out / params:.1f}× fewer); "
                   f"relative error of the best rank-{r} fit = <b>{errors[r]:.3f}</b>")
        return fig, summary

    return explorable(draw, {"r": list(ranks)}, labels={"r": "rank r"},
                      initial={"r": ranks[0]}, title="How much of the update can rank r hold?")
