"""Widgets of §7: depth, init scale and nonlinearity against the spectrum and the signal.

Both widgets draw the weights as ``W ~ N(0, c²/n)`` for the chosen *init scale* ``c``:
``c = 1`` is Xavier's rule for a square layer, ``c = √2 ≈ 1.41`` is He's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from la_dl import init
from la_dl.plots._style import BLUE, GREY
from la_dl.plots.init import draw_signal
from la_dl.widgets import explorable

__all__ = ["spectrum_explorer", "signal_explorer", "predicted_gain"]


def predicted_gain(scale: float, nonlinearity: str) -> float:
    """Per-layer RMS factor from Var(y) = n·Var(W)·Var(x): ``c``, or ``c/√2`` after a ReLU."""
    return scale / math.sqrt(2) if nonlinearity == "relu" else scale


def _weights_note(scale: float) -> str:
    return f"W ~ N(0, c²/n), c = {scale:g}"


def spectrum_explorer(
    scales: Sequence[float] = (0.5, 1.0, 1.41, 2.0),
    nonlinearities: Sequence[str] = ("linear", "relu", "tanh"),
    depth: int = 30,
    width: int = 64,
    seed: int = 0,
) -> W.VBox:
    """Init scale × nonlinearity → ``σ_max(J_ℓ⋯J_1)`` against depth ℓ (§7.2)."""

    def draw(scale: float, nonlinearity: str):
        sigma = init.product_singular_values(depth, width, "xavier", nonlinearity, scale=scale,
                                             generator=torch.Generator().manual_seed(seed))
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(range(1, depth + 1), sigma, "o-", ms=3, color=BLUE, label="σ_max of the product")
        ax.axhline(1.0, color=GREY, ls=":", lw=1)
        ax.set(yscale="log", xlabel="depth ℓ", ylabel=r"$\sigma_{max}(J_\ell\cdots J_1)$",
               title=f"{nonlinearity} stack, {_weights_note(scale)}, n = {width}")
        ax.set_ylim(min(1e-3, sigma.min().item() / 3), max(1e3, sigma.max().item() * 3))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        per_layer = (sigma[-1] / sigma[0]).item() ** (1 / (depth - 1))
        summary = (
            f"σ_max after {depth} layers: <b>{sigma[-1].item():.2e}</b>; growth per layer "
            f"<b>×{per_layer:.2f}</b>; the variance rule predicts ×{predicted_gain(scale, nonlinearity):.2f} "
            f"for a typical signal" + (" (tanh: at most that, less once it saturates)"
                                       if nonlinearity == "tanh" else "")
        )
        return fig, summary

    return explorable(
        draw,
        {"scale": list(scales), "nonlinearity": list(nonlinearities)},
        labels={"scale": "init scale c", "nonlinearity": "nonlinearity"},
        initial={"scale": min(scales, key=lambda c: abs(c - 1.0)), "nonlinearity": nonlinearities[0]},
        title="σ_max of the product of layer Jacobians: depth × init scale × nonlinearity",
    )


def signal_explorer(
    depths: Sequence[int] = (6, 12, 24),
    scales: Sequence[float] = (0.5, 1.0, 1.41, 2.0),
    nonlinearities: Sequence[str] = ("linear", "relu"),
    width: int = 128,
    batch_size: int = 128,
    seed: int = 0,
) -> W.VBox:
    """Depth × init scale × nonlinearity → activations forward and gradients backward (§7.3)."""

    def draw(depth: int, scale: float, nonlinearity: str):
        run = init.signal_propagation(depth, width, "xavier", nonlinearity, scale=scale,
                                      batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
        fig, axes = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
        draw_signal(axes, run, _weights_note(scale), BLUE)
        for ax in axes:
            ax.title.set_fontsize(9)
        axes[0].set_ylabel("RMS")
        fig.suptitle(f"{depth} layers, {nonlinearity}, {_weights_note(scale)}", fontsize=10)
        fig.tight_layout()
        act, grad = run.activation_norms, run.gradient_norms
        gain = predicted_gain(scale, nonlinearity)
        summary = (
            f"RMS of the output H_{depth}: <b>{act[-1].item():.2e}</b>; RMS of the gradient at the "
            f"input: <b>{grad[0].item():.2e}</b>; predicted per-layer factor "
            f"×{gain:.2f}, i.e. ×{gain**depth:.2e} over {depth} layers"
        )
        return fig, summary

    return explorable(
        draw,
        {"depth": list(depths), "scale": list(scales), "nonlinearity": list(nonlinearities)},
        labels={"depth": "depth L", "scale": "init scale c", "nonlinearity": "nonlinearity"},
        initial={"depth": depths[0], "scale": min(scales, key=lambda c: abs(c - math.sqrt(2))),
                 "nonlinearity": nonlinearities[-1]},
        title="Activations and gradients through depth: depth × init scale × nonlinearity",
    )
