"""Figures of §7: initialisation, conditioning and gradient flow."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from la_dl import init
from la_dl.plots import figure
from la_dl.plots._style import BLUE, GREEN, GREY, ORANGE, PURPLE, RED

__all__ = ["variance_rule", "product_spectrum", "signal_flow", "INIT_COLORS", "INIT_LABELS"]

INIT_COLORS = {"naive": RED, "tiny": PURPLE, "xavier": GREEN, "he": BLUE}
INIT_LABELS = {
    "naive": "naive N(0, 1)",
    "tiny": f"tiny N(0, {init.TINY_STD:g}²)",
    "xavier": "Xavier 2/(n_in+n_out)",
    "he": "He 2/n_in",
}


@figure("s7_variance_rule")
def variance_rule(
    n_ins: Sequence[int] = (1, 4, 16, 64, 256, 1024),
    weight_stds: Sequence[float] = (0.03, 0.1, 0.3),
    input_std: float = 1.0,
    seed: int = 0,
) -> Figure:
    """Measured ``Var(y)`` of ``y = Wx`` against ``n_in · Var(W) · Var(x)`` (§7.1), log–log."""
    g = torch.Generator().manual_seed(seed)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colors = [BLUE, ORANGE, GREEN, RED, PURPLE]
    for std, color in zip(weight_stds, colors * 2):
        measured = [init.output_variance(n, std, input_std, n_out=256, n_samples=256, generator=g)
                    for n in n_ins]
        predicted = [n * std**2 * input_std**2 for n in n_ins]
        ax.plot(n_ins, predicted, "-", color=color, lw=1, label=f"n_in·Var(W)·Var(x), std(W) = {std:g}")
        ax.plot(n_ins, measured, "o", color=color, ms=6, mfc="none")
    ax.axhline(input_std**2, color=GREY, ls=":", lw=1)
    ax.text(n_ins[-1], input_std**2 * 0.6, "Var(x): preserved where n_in·Var(W) = 1", color=GREY,
            fontsize=8, ha="right", va="top")
    ax.set(xscale="log", yscale="log", xlabel="fan-in $n_{in}$", ylabel="Var(y)",
           title="Variance of one linear layer's output: lines = theory, circles = sampled")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _singular_values(ax: Axes, width: int, inits: Sequence[str], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for name in inits:
        w = init.init_weight(width, width, name, generator=g, dtype=torch.float64)
        s = torch.linalg.svdvals(w)  # (n,), descending
        ax.plot(range(1, width + 1), s, color=INIT_COLORS[name], label=INIT_LABELS[name])
    ax.axhline(1.0, color=GREY, ls=":", lw=1)
    ax.set(yscale="log", xlabel="index i", ylabel=r"$\sigma_i(W)$",
           title=f"Spectrum of one {width}×{width} layer")


def _product_curve(ax: Axes, depth: int, width: int, inits: Sequence[str], nonlinearity: str,
                   seed: int, device: torch.device | str | None) -> None:
    for name in inits:
        sigma = init.product_singular_values(depth, width, name, nonlinearity,
                                             generator=torch.Generator().manual_seed(seed), device=device)
        ax.plot(range(1, depth + 1), sigma.cpu(), "o-", ms=2.5, color=INIT_COLORS[name],
                label=INIT_LABELS[name])
    ax.axhline(1.0, color=GREY, ls=":", lw=1)
    if nonlinearity == "linear":
        title = "linear stack: $W_\\ell\\cdots W_1$"
    else:
        title = f"{nonlinearity} stack: $J_\\ell\\cdots J_1$"
    ax.set(yscale="log", xlabel="depth ℓ", ylabel=r"$\sigma_{max}$ of the product", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


@figure("s7_product_spectrum")
def product_spectrum(
    depth: int = 30,
    width: int = 64,
    inits: Sequence[str] = ("naive", "xavier", "he"),
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Figure:
    """One layer's singular values, and ``σ_max`` of the product of layers vs depth (§7.2).

    Middle panel: a purely linear stack (Xavier's 1/n keeps it O(1); He's 2/n grows by √2 per
    layer). Right panel: the Jacobians of a ReLU stack (He keeps it O(1); Xavier decays).
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    _singular_values(axes[0], width, inits, seed)
    _product_curve(axes[1], depth, width, inits, "linear", seed, device)
    _product_curve(axes[2], depth, width, inits, "relu", seed, device)
    axes[0].legend(fontsize=8)
    fig.suptitle("Each layer's σ_max multiplies: >1 explodes, <1 vanishes, ≈1 survives depth", fontsize=11)
    fig.tight_layout()
    return fig


def draw_signal(axes: Sequence[Axes], run: init.SignalPropagation, label: str, color: str) -> None:
    """Forward RMS(H_ℓ) on ``axes[0]`` and backward RMS(∂L/∂H_ℓ) on ``axes[1]``."""
    layers = range(len(run.activation_norms))
    axes[0].plot(layers, run.activation_norms.cpu(), "o-", ms=3, color=color, label=label)
    axes[1].plot(layers, run.gradient_norms.cpu(), "o-", ms=3, color=color, label=label)
    # Limits from every curve drawn so far on either panel (not from the current limits, which
    # would clip a later, smaller curve), with at least a decade either side of 1 so that
    # "flat" looks flat.
    ys = torch.cat([torch.as_tensor(line.get_ydata(), dtype=torch.float64)
                    for ax in axes for line in ax.get_lines()])
    ys = ys[ys > 0]
    low, high = min(ys.min().item() / 3, 0.1), max(ys.max().item() * 3, 10.0)
    for ax, what in zip(axes, ("forward: RMS of activations $H_\\ell$",
                               "backward: RMS of gradients $\\partial L/\\partial H_\\ell$")):
        ax.axhline(1.0, color=GREY, ls=":", lw=1)
        ax.set(yscale="log", xlabel="layer ℓ", title=what, ylim=(low, high))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


@figure("s7_signal_propagation")
def signal_flow(
    depth: int = 6,
    width: int = 256,
    nonlinearity: str = "relu",
    inits: Sequence[str] = ("naive", "tiny", "he"),
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Figure:
    """Activations forward and gradients backward, layer by layer, for several inits (§7.3)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for name in inits:
        run = init.signal_propagation(depth, width, name, nonlinearity,
                                      generator=torch.Generator().manual_seed(seed), device=device)
        draw_signal(axes, run, INIT_LABELS[name], INIT_COLORS[name])
    axes[0].set_ylabel("RMS (input and upstream gradient: 1)")
    axes[0].legend(fontsize=8)
    act = "no nonlinearity" if nonlinearity == "linear" else f"{nonlinearity} after each layer"
    fig.suptitle(f"{depth} linear layers of width {width}, {act}", fontsize=11)
    fig.tight_layout()
    return fig
