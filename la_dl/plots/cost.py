"""Figures of the cost appendix: the chapter's operations on a roofline; attention vs n."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from la_dl import flops
from la_dl.attention import score_matrix_bytes
from la_dl.device import default_device, describe_device
from la_dl.plots import figure
from la_dl.plots._style import BLUE, GREEN, GREY, PURPLE, RED

__all__ = ["roofline", "attention_scaling"]

MIB = 2**20
_MARKERS = ["o", "s", "^"]  # the operations of one section share a colour
_SECTION_COLOURS = {"§1": BLUE, "§2": "#000000", "§3": GREEN, "§4": RED, "§6": PURPLE}


@figure("s11_roofline")
def roofline(
    measurements: Sequence[flops.Measurement] | None = None,
    bandwidth: float | None = None,
    device: torch.device | str | None = None,
) -> Figure:
    """Achieved GFLOP/s vs arithmetic intensity for each operation (la_dl filled, torch hollow).

    The x position is the operation's largest possible intensity, FLOPs over compulsory
    bytes (:attr:`la_dl.flops.OpCost.max_intensity`), the same for every implementation. The
    slanted line is the measured copy bandwidth times that intensity (the most a memory-bound
    operation can reach); the flat one is the best throughput measured here.
    """
    device = torch.device(device) if device is not None else default_device()
    if measurements is None:
        measurements = flops.measure(flops.chapter_operations(device))
    if bandwidth is None:
        bandwidth = flops.copy_bandwidth(device)
    points = list(measurements)
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    best = max(max(m.gflops, m.cost.flops / m.builtin_seconds / 1e9) for m in points)
    lo = min(m.cost.max_intensity for m in points) / 2
    hi = max(m.cost.max_intensity for m in points) * 2
    x = np.geomspace(lo, hi, 200)
    ax.plot(x, np.minimum(bandwidth * x, best), color=GREY, lw=1.5,
            label=f"roof: {bandwidth:.0f} GB/s copy bandwidth, {best:.0f} GFLOP/s best measured")
    names = [f"{m.section} {m.cost.name}" for m in points]
    op_handles = []
    for i, (m, name) in enumerate(zip(points, names)):
        colour = _SECTION_COLOURS.get(m.section, GREY)
        marker = _MARKERS[sum(m2.section == m.section for m2 in points[:i]) % len(_MARKERS)]
        label = f"{name}, {m.cost.shapes}" if names.count(name) > 1 else name
        builtin = m.cost.flops / m.builtin_seconds / 1e9
        x_i = m.cost.max_intensity
        ax.plot([x_i] * 2, [m.gflops, builtin], color=colour, lw=0.8, alpha=0.6)
        ax.scatter(x_i, builtin, s=45, marker=marker, facecolors="none", edgecolors=colour)
        op_handles.append(ax.scatter(x_i, m.gflops, s=45, marker=marker, color=colour, label=label))
    rates = [r for m in points for r in (m.gflops, m.cost.flops / m.builtin_seconds / 1e9)]
    ax.set_ylim(min(rates) / 2, max(best, *rates) * 2)
    ax.set_xlim(lo, hi)
    kinds = [ax.scatter([], [], color=GREY, label="la_dl (filled)"),
             ax.scatter([], [], facecolors="none", edgecolors=GREY, label="torch built-in (hollow)")]
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity: FLOPs / compulsory bytes",
           ylabel="achieved GFLOP/s", title="The chapter's operations on a roofline")
    first = ax.legend(handles=[ax.get_lines()[0], *kinds], loc="lower right", fontsize=7)
    ax.add_artist(first)
    ax.legend(handles=op_handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.suptitle(describe_device(device), fontsize=8, color=GREY, y=0.02)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


@figure("s11_attention_scaling")
def attention_scaling(
    sizes: Sequence[int] = (256, 512, 1024, 2048),
    measured: dict[str, list[tuple[float, int | None]]] | None = None,
    heads: int = 4,
    head_dim: int = 64,
    device: torch.device | str | None = None,
) -> Figure:
    """Time and peak memory vs sequence length n: naive four steps, tiled, and torch's kernel.

    The dashed line on the right is the analytic size of the three ``(1, H, n, n)``
    matrices the naive form stores (scores, scaled scores, weights): it grows like n².
    """
    device = torch.device(device) if device is not None else default_device()
    if measured is None:
        measured = flops.measure_attention(sizes, device, heads=heads, head_dim=head_dim)
    n = list(sizes)
    styles = {"naive": (RED, "naive: four steps (§4.2)"), "tiled": (BLUE, "tiled: online softmax (§4.4)"),
              "torch": (GREY, "F.scaled_dot_product_attention")}
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, (colour, label) in styles.items():
        seconds = [t for t, _ in measured[name]]
        ax_t.plot(n, [s * 1e3 for s in seconds], "o-", color=colour, label=label)
        peaks = [p for _, p in measured[name]]
        if all(p is not None for p in peaks):
            ax_m.plot(n, [max(p, 1) / MIB for p in peaks], "o-", color=colour, label=label)
    ax_m.plot(n, [3 * score_matrix_bytes(k, heads) / MIB for k in n], "--", color=RED, lw=1,
              label="3 n×n matrices (analytic)")
    ax_t.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="median time (ms)",
             title="Time: all three grow like n²")
    ax_m.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="peak extra memory (MiB)",
             title="Memory: n² naive, ~n tiled")
    for ax in (ax_t, ax_m):
        ax.set_xticks(n, [str(k) for k in n])
        ax.minorticks_off()
    ax_t.legend(fontsize=7)
    ax_m.legend(fontsize=7)
    fig.suptitle(f"batch 1, {heads} heads, d = {head_dim}, float32; {describe_device(device)}",
                 fontsize=8, color=GREY)
    fig.tight_layout()
    return fig
