"""Figures of §1: the network is the matmul chain."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from la_dl import mlp
from la_dl.device import default_device, describe_device
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, GREY, ORANGE

__all__ = ["gemm_throughput", "digit_templates", "collapse_gap"]


@figure("s1_gemm_throughput")
def gemm_throughput(
    measurements: Sequence[mlp.GemmMeasurement] | None = None,
    d: int = 512,
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
    device: torch.device | str | None = None,
) -> Figure:
    """Measured GFLOP/s and cost per sample of ``X Wᵀ`` vs batch size, with arithmetic intensity."""
    device = torch.device(device) if device is not None else default_device()
    if measurements is None:
        measurements = mlp.gemm_throughput(batch_sizes, d, d, device)
    points = list(measurements)
    batches = [p.batch for p in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(batches, [p.gflops for p in points], "o-", color=BLUE, label="measured GFLOP/s")
    ax1.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="GFLOP/s",
            title="Throughput of one layer, $XW^\\top$")
    twin = ax1.twinx()
    twin.plot(batches, [p.intensity for p in points], "s--", color=ORANGE, ms=4, label="FLOP/byte")
    twin.set(yscale="log", ylabel="arithmetic intensity (FLOP/byte)")
    twin.spines["right"].set_visible(True)
    twin.grid(False)
    lines = ax1.get_lines() + twin.get_lines()
    ax1.legend(lines, [line.get_label() for line in lines], loc="lower right")
    ax2.plot(batches, [p.us_per_row for p in points], "o-", color=BLUE)
    ax2.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="µs per sample",
            title="Cost per sample falls as the batch grows")
    shape = f"d_in = {points[0].d_in}, d_out = {points[0].d_out}"
    fig.suptitle(f"{shape}; {describe_device(device)}", fontsize=9, color=GREY)
    fig.tight_layout()
    return fig


@figure("s1_digit_templates")
def digit_templates(model: mlp.MLP | None = None, n_rows: int = 16, accuracy: float | None = None) -> Figure:
    """Heatmap of a trained first-layer ``W`` (one neuron per row) and its rows as 8×8 templates."""
    if model is None:
        model, accuracy = train_digits_mlp()
    weight = model.layers[0].weight.detach().cpu()  # (hidden, 64)
    n_rows = min(n_rows, weight.shape[0])
    cols = 4
    fig = plt.figure(figsize=(11, 4.6))
    outer = fig.add_gridspec(1, 2, width_ratios=[1.25, 1], wspace=0.15)
    ax = fig.add_subplot(outer[0])
    lim = weight.abs().max().item()
    im = ax.imshow(weight, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim, aspect="auto")
    ax.set(xlabel="input pixel (64 = 8×8)", ylabel="neuron (row of W)",
           title=f"First-layer W {tuple(weight.shape)}")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.04)
    inner = outer[1].subgridspec((n_rows + cols - 1) // cols, cols, hspace=0.08, wspace=0.08)
    for k in range(n_rows):
        sub = fig.add_subplot(inner[k // cols, k % cols])
        row = weight[k].reshape(8, 8)
        lim_k = row.abs().max().item()
        sub.imshow(row, cmap=CMAP_DIVERGING, vmin=-lim_k, vmax=lim_k)
        sub.set_xticks([])
        sub.set_yticks([])
        sub.text(0.03, 0.97, str(k), transform=sub.transAxes, va="top", fontsize=7, color=GREY)
    title = f"Rows 0–{n_rows - 1} of W reshaped to 8×8: the template each neuron responds to"
    if accuracy is not None:
        title += f" (test accuracy {accuracy:.1%})"
    fig.suptitle(title)
    return fig


def train_digits_mlp(hidden: int = 32, epochs: int = 150, seed: int = 0) -> tuple[mlp.MLP, float]:
    """The §1.4 model: a 64→hidden→10 ReLU MLP trained on the digits; returns it and its test accuracy."""
    torch.manual_seed(seed)
    x, y, x_test, y_test = mlp.load_digits("cpu")
    model = mlp.MLP([64, hidden, 10])
    mlp.train_classifier(model, x, y, epochs=epochs, weight_decay=1e-3, seed=seed)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, accuracy


@figure("s1_collapse")
def collapse_gap(width: int = 16, depth: int = 4, n: int = 200, seed: int = 0) -> Figure:
    """Outputs of a deep linear stack vs its collapsed single matrix, and the same with ReLU."""
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(width, width, generator=g, dtype=torch.float64) / width**0.5 for _ in range(depth)]
    x = torch.randn(n, width, generator=g, dtype=torch.float64)
    collapsed = x @ mlp.collapse_linear(weights).T
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
    for ax, act, title in [(axes[0], "identity", "no σ: identical"), (axes[1], "relu", "ReLU: not a matrix")]:
        out = mlp.mlp_forward(x, weights, None, act)
        ax.scatter(collapsed.flatten(), out.flatten(), s=3, alpha=0.4, color=BLUE)
        ax.plot([-3, 3], [-3, 3], color=GREY, lw=1)
        ax.set(xlabel="one collapsed matrix: $(W_4W_3W_2W_1)x$", title=title)
    axes[0].set_ylabel(f"{depth}-layer network output")
    fig.tight_layout()
    return fig
