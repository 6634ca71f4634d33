"""Widgets of §1: batch size and width against arithmetic intensity and measured throughput."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from la_dl import mlp
from la_dl.device import default_device, describe_device
from la_dl.plots._style import BLUE, GREY, ORANGE
from la_dl.widgets import explorable

__all__ = ["batching_explorer"]


def batching_explorer(
    batch_sizes: Sequence[int] = (1, 4, 16, 64, 256, 1024),
    widths: Sequence[int] = (128, 512, 1024),
    device: torch.device | str | None = None,
) -> W.VBox:
    """Pick a batch size B and a width d: see the FLOP/byte of ``X Wᵀ`` and its measured speed."""
    device = torch.device(device) if device is not None else default_device()

    @cache
    def sweep(width: int) -> tuple[mlp.GemmMeasurement, ...]:
        return tuple(mlp.gemm_throughput(batch_sizes, width, width, device, repeats=3, min_time=0.01))

    def draw(batch: int, width: int):
        points = sweep(width)
        here = next(p for p in points if p.batch == batch)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 2.8))
        xs = [p.batch for p in points]
        ax1.plot(xs, [p.intensity for p in points], "o-", color=ORANGE)
        ax1.plot([batch], [here.intensity], "o", ms=12, mfc="none", mec="k")
        ax1.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="FLOP / byte",
                title="arithmetic intensity")
        ax2.plot(xs, [p.gflops for p in points], "o-", color=BLUE)
        ax2.plot([batch], [here.gflops], "o", ms=12, mfc="none", mec="k")
        ax2.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="GFLOP/s",
                title="measured throughput")
        fig.tight_layout()
        best = max(p.gflops for p in points)
        summary = (
            f"B = {batch}, d = {width}: {2 * batch * width * width / 1e6:.2f} MFLOP moving "
            f"{4 * (batch * width + width * width + batch * width) / 2**20:.2f} MiB "
            f"→ <b>{here.intensity:.1f} FLOP/byte</b>; measured <b>{here.gflops:.1f} GFLOP/s</b> "
            f"({here.gflops / best:.0%} of the best batch), {here.us_per_row:.1f} µs per sample "
            f"<span style='color:{GREY}'>(measured on {describe_device(device)})</span>"
        )
        return fig, summary

    return explorable(
        draw,
        {"batch": list(batch_sizes), "width": list(widths)},
        labels={"batch": "batch size B", "width": "width d"},
        initial={"batch": batch_sizes[0], "width": widths[len(widths) // 2]},
        title="Batching: the same layer, more rows per GEMM",
    )
