"""Figures of §2: backpropagation is the matrix chain rule."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from la_dl import backprop
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, GREEN, GREY, ORANGE, RED

__all__ = ["forward_backward_flow", "outer_product_sum", "gradient_bound"]


def _node(ax: Axes, x: float, y: float, label: str, shape: str, color: str) -> None:
    ax.text(x, y, f"{label}\n{shape}", ha="center", va="center", fontsize=10,
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": color, "lw": 1.6})


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str, color: str,
           offset: float = 0.28) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.6, "shrinkA": 30, "shrinkB": 30})
    mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    ax.text(mid_x, mid_y + offset, label, ha="center", va="center", fontsize=10, color=color)


@figure("s2_flow")
def forward_backward_flow(batch: int = 4, d_in: int = 3, d_out: int = 2) -> Figure:
    """One layer forward (W) and backward (Wᵀ's role), with the shape of every tensor.

    Forward: ``Z = X Wᵀ + 1bᵀ``, ``H = σ(Z)``. Backward: ``Δ = ∂L/∂H ⊙ σ'(Z)``, then
    ``∂L/∂W = ΔᵀX``, ``∂L/∂b = Δᵀ1`` and ``∂L/∂X = ΔW``.
    """
    B, n, m = batch, d_in, d_out
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.set(xlim=(0, 10), ylim=(0, 4.4))
    ax.axis("off")
    top, bottom, low = 3.5, 1.9, 0.45
    xs = [0.8, 3.8, 6.4, 9.1]
    # forward row
    _node(ax, xs[0], top, "$X$", f"({B}, {n})", BLUE)
    _node(ax, xs[1], top, "$Z$", f"({B}, {m})", BLUE)
    _node(ax, xs[2], top, "$H$", f"({B}, {m})", BLUE)
    _node(ax, xs[3], top, "$L$", "scalar", GREY)
    _arrow(ax, (xs[0], top), (xs[1], top), r"$XW^\top + \mathbf{1}b^\top$", BLUE)
    _arrow(ax, (xs[1], top), (xs[2], top), r"$\sigma(\cdot)$", BLUE)
    _arrow(ax, (xs[2], top), (xs[3], top), "loss", GREY)
    # backward row, right to left
    _node(ax, xs[0], bottom, r"$\partial L/\partial X$", f"({B}, {n})", ORANGE)
    _node(ax, xs[1], bottom, r"$\Delta = \partial L/\partial Z$", f"({B}, {m})", ORANGE)
    _node(ax, xs[2], bottom, r"$\partial L/\partial H$", f"({B}, {m})", ORANGE)
    _arrow(ax, (xs[3], top - 0.3), (xs[2], bottom), "① upstream", ORANGE, offset=0.1)
    _arrow(ax, (xs[2], bottom), (xs[1], bottom), r"② $\odot\,\sigma'(Z)$", ORANGE)
    _arrow(ax, (xs[1], bottom), (xs[0], bottom), "④ $\\Delta W$\n(per sample $W^\\top\\delta$)", RED,
           offset=-0.45)
    # parameter gradients
    _node(ax, 3.0, low, r"$\partial L/\partial W = \Delta^\top X$", f"({m}, {n}) = shape of W", GREEN)
    _node(ax, 6.4, low, r"$\partial L/\partial b = \Delta^\top \mathbf{1}$", f"({m},) = shape of b", GREEN)
    _arrow(ax, (xs[1], bottom), (3.0, low), "", GREEN)
    _arrow(ax, (xs[1], bottom), (6.4, low), "", GREEN)
    ax.text(4.9, 1.05, "③ outer products", color=GREEN, ha="center", fontsize=10)
    ax.set_title(f"One layer, forward (top) and backward (bottom): B = {B}, d_in = {n}, d_out = {m}")
    return fig


def _heat(ax: Axes, matrix: torch.Tensor, title: str, lim: float) -> None:
    ax.imshow(matrix.cpu(), cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


@figure("s2_outer_products")
def outer_product_sum(
    batch: int = 4, d_in: int = 5, d_out: int = 3, seed: int = 0, max_terms: int = 8,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """``ΔᵀX = Σ_b δ_b x_bᵀ``: the weight gradient as a sum of one rank-1 outer product per sample.

    The first ``max_terms`` outer products are drawn (an ellipsis stands for the rest), then
    their sum, which equals :func:`la_dl.backprop.linear_backward`'s ``grad_weight``.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d_in, generator=g)  # (B, d_in)
    delta = torch.randn(batch, d_out, generator=g)  # (B, d_out)
    weight = torch.randn(d_out, d_in, generator=g)  # (d_out, d_in), only its shape matters here
    _, cache = backprop.linear_forward(x, weight)
    _, grad_weight, _ = backprop.linear_backward(delta, cache)  # (d_out, d_in): ΔᵀX
    terms = [torch.outer(delta[b], x[b]) for b in range(batch)]  # B × (d_out, d_in), each rank 1
    shown = terms[:max_terms]
    n_panels = len(shown) + 1 + (batch > max_terms)
    width = figsize or (min(1.5 * n_panels + 1, 13), 2.4)
    fig, axes = plt.subplots(1, n_panels, figsize=width)
    axes = list(axes) if n_panels > 1 else [axes]
    lim = max(t.abs().max().item() for t in [*terms, grad_weight])
    for b, (ax, term) in enumerate(zip(axes, shown)):
        _heat(ax, term, rf"$\delta_{{{b + 1}}} x_{{{b + 1}}}^\top$", lim)
        ax.text(1.12, 0.5, "+" if b < len(shown) - 1 or batch > max_terms else "=",
                transform=ax.transAxes, ha="center", va="center", fontsize=14)
    if batch > max_terms:
        dots = axes[len(shown)]
        dots.axis("off")
        dots.text(0.5, 0.5, f"⋯\n({batch - max_terms} more)", ha="center", va="center", fontsize=11)
        dots.text(1.12, 0.5, "=", transform=dots.transAxes, ha="center", va="center", fontsize=14)
    _heat(axes[-1], grad_weight, r"$\Delta^\top X$", lim)
    for spine in axes[-1].spines.values():
        spine.set(visible=True, color=GREEN, lw=2)
    fig.suptitle(f"∂L/∂W = ΔᵀX: {batch} rank-1 outer products of shape ({d_out}, {d_in}), "
                 "one per sample, summed by a single matmul", fontsize=10)
    fig.tight_layout()
    return fig


@figure("s2_gradient_bound")
def gradient_bound(
    depth: int = 20,
    width: int = 64,
    batch: int = 16,
    scales: tuple[float, ...] = (0.7, 1.0, 1.4),
    activation: str = "identity",
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Figure:
    """Measured ``‖∂L/∂H_ℓ‖`` through depth against ``‖∂L/∂H_L‖ ∏ ‖J_k‖₂`` (§2.3), log scale.

    Weights ``W ~ N(0, c²/n)`` for each ``c`` in ``scales``: the gradient shrinks or grows
    geometrically with depth, and never above the product of the layers' operator norms.
    """
    colors = [BLUE, GREEN, RED, ORANGE]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for c, color in zip(scales, colors * 2):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, width, dtype=torch.float64, generator=g).to(device)
        weights = [(c * torch.randn(width, width, dtype=torch.float64, generator=g) / width**0.5).to(device)
                   for _ in range(depth)]
        grad_out = torch.randn(batch, width, dtype=torch.float64, generator=g).to(device)
        measured, bound = backprop.gradient_norms_vs_bound(x, weights, grad_out, activation)
        layers = range(depth + 1)
        ax.plot(layers, measured.cpu(), "o-", ms=3, color=color, label=f"measured, c = {c:g}")
        ax.plot(layers, bound.cpu(), "--", color=color, label=r"bound $\prod\|J_k\|_2$")
    ax.set(yscale="log", xlabel="layer ℓ (L = output, 0 = input)",
           ylabel=r"$\|\partial L/\partial H_\ell\|$",
           title=f"Gradient through {depth} layers ({activation}), $W \\sim N(0, c^2/n)$, n = {width}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_xaxis()  # the backward pass runs from the output (left) to the input (right)
    ax.legend(fontsize=8, ncol=len(scales), loc="upper left")
    fig.tight_layout()
    return fig
