"""Figures of §5: a Transformer block."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from la_dl import transformer
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, CMAP_SEQUENTIAL, GREEN, GREY, ORANGE, PURPLE, RED

__all__ = ["block_diagram", "causal_mask", "positional_encoding", "residual_spectrum", "shift_rotation"]


def _box(ax, x: float, y: float, text: str, color: str, w: float = 2.4, h: float = 0.55) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                fc=color, ec="k", lw=0.8, alpha=0.85))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], **kw) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1.0, **kw})


def _plus(ax, x: float, y: float) -> None:
    ax.add_patch(plt.Circle((x, y), 0.17, fc="white", ec="k", lw=0.8))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def _column(ax, x0: float, pre: bool) -> None:
    """One encoder layer drawn bottom to top; the residual skips on the right."""
    ln, plus = ("LayerNorm", PURPLE), ("+", None)
    attn, ffn = ("multi-head\nself-attention", BLUE), ("FFN  W₂σ(W₁x+b₁)+b₂", ORANGE)
    if pre:  # LN inside each branch; the residual path is never normalised
        stack = [ln, attn, plus, ln, ffn, plus]
        skips = [(-1, 2), (2, 5)]  # (start below item i, end at the "+" j); -1 = the input
    else:  # LN after each residual sum
        stack = [attn, plus, ln, ffn, plus, ln]
        skips = [(-1, 1), (2, 4)]
    step, y0 = 0.95, 1.0
    ys = [y0 + i * step for i in range(len(stack))]
    top = {i: ys[i] + (0.17 if stack[i] is plus else 0.28) for i in range(len(stack))}
    bottom = {i: ys[i] - (0.17 if stack[i] is plus else 0.28) for i in range(len(stack))}
    top[-1], bottom[len(stack)] = 0.05, ys[-1] + step
    for i, (label, color) in enumerate(stack):
        if color is None:
            _plus(ax, x0, ys[i])
        else:
            _box(ax, x0, ys[i], label, color)
    for i in range(-1, len(stack)):
        _arrow(ax, (x0, top[i]), (x0, bottom[i + 1]))
    skip_x = x0 + 1.8
    for start, end in skips:
        y_start = (top[start] + bottom[start + 1]) / 2  # branch off between two items
        ax.plot([x0, skip_x, skip_x], [y_start, y_start, ys[end]], color=GREEN, lw=1.4)
        _arrow(ax, (skip_x, ys[end]), (x0 + 0.18, ys[end]), color=GREEN, lw=1.4)
    ax.text(skip_x + 0.1, ys[0], "identity\n(residual)", color=GREEN, fontsize=8, va="center")
    ax.text(x0, 0.0, "x  (N, L, E)", ha="center", va="top", fontsize=9)
    ax.text(x0, ys[-1] + step + 0.05, "output  (N, L, E)", ha="center", va="bottom", fontsize=9)
    ax.text(x0, ys[-1] + step + 0.6, "pre-norm" if pre else "post-norm (original, torch default)",
            ha="center", fontsize=10, weight="bold")


@figure("s5_block_diagram")
def block_diagram() -> Figure:
    """The encoder layer built from its four parts, post-norm and pre-norm side by side (§5)."""
    fig, ax = plt.subplots(figsize=(8, 5.2))
    _column(ax, 0.0, pre=False)
    _column(ax, 5.2, pre=True)
    ax.set(xlim=(-2.0, 8.2), ylim=(-0.5, 7.9))
    ax.axis("off")
    fig.tight_layout()
    return fig


@figure("s5_causal_mask")
def causal_mask(n: int = 8, seed: int = 0) -> Figure:
    """The additive causal mask and the attention weights it produces (§5.2)."""
    mask = transformer.causal_mask(n)  # (n, n)
    gen = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(n, n, generator=gen) + mask, dim=-1)  # (n, n)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.4))
    allowed = torch.isfinite(mask).float()
    ax1.imshow(allowed.numpy(), cmap="Greys_r", vmin=-0.3, vmax=1)
    for i in range(n):
        for j in range(n):
            ax1.text(j, i, "0" if allowed[i, j] else "−∞", ha="center", va="center", fontsize=7,
                     color="k" if allowed[i, j] else "w")
    ax1.set(title="mask added to the scores", xlabel="key position j", ylabel="query position i")
    im = ax2.imshow(weights.numpy(), cmap=CMAP_SEQUENTIAL, vmin=0, vmax=1)
    ax2.set(title="softmax weights: the future gets 0", xlabel="key position j")
    fig.colorbar(im, ax=ax2, fraction=0.046)
    for ax in (ax1, ax2):
        ax.grid(False)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    fig.tight_layout()
    return fig


@figure("s5_positional_encoding")
def positional_encoding(n_positions: int = 100, d_model: int = 64) -> Figure:
    """The PE matrix as a heatmap, and a few of its columns as waves of falling frequency (§5.3)."""
    pe = transformer.sinusoidal_positional_encoding(n_positions, d_model)  # (n, d)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
    im = ax1.imshow(pe.numpy(), cmap=CMAP_DIVERGING, vmin=-1, vmax=1, aspect="auto")
    ax1.set(xlabel="feature index (2i: sin, 2i+1: cos)", ylabel="position pos",
            title=f"PE ({n_positions} positions × d = {d_model})")
    ax1.grid(False)
    fig.colorbar(im, ax=ax1, fraction=0.04)
    for col, color in zip((4, 8, 16), (RED, GREEN, BLUE)):
        ax2.plot(pe[:, col].numpy(), color=color, label=f"column {col}: "
                 f"period {2 * np.pi * 10000 ** (col / d_model):.0f}")
    ax2.set(xlabel="position pos", ylabel="value", title="even columns: sin(pos·ω_i)")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    fig.tight_layout()
    return fig


@figure("s5_residual_spectrum")
def residual_spectrum(eig_j: torch.Tensor | None = None) -> Figure:
    """Eigenvalues of a sublayer's Jacobian J and of the residual block's I + J (§5.1).

    ``eig_j`` are the (complex) eigenvalues of J; those of I + J are the same shifted by 1.
    By default: the attention sublayer of a random encoder layer at a random input.
    """
    if eig_j is None:
        eig_j = attention_sublayer_eigenvalues()
    eig_j = eig_j.detach().cpu().to(torch.complex128)
    eig_res = eig_j + 1
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.scatter(eig_j.real.numpy(), eig_j.imag.numpy(), s=14, color=RED, label="eig(J): sublayer")
    ax.scatter(eig_res.real.numpy(), eig_res.imag.numpy(), s=14, color=BLUE, marker="s",
               label="eig(I + J): with the residual")
    ax.axvline(0, color=GREY, lw=0.8)
    ax.axvline(1, color=BLUE, lw=0.8, ls="--")
    ax.set(xlabel="real part", ylabel="imaginary part", title="Spectrum of a block's Jacobian")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def attention_sublayer_eigenvalues(
    seq_len: int = 6, d_model: int = 16, nhead: int = 4, seed: int = 0
) -> torch.Tensor:
    """Eigenvalues of J = ∂SA(x)/∂x for a seeded random layer's self-attention (L·E values)."""
    from la_dl.backprop import jacobian

    torch.manual_seed(seed)
    layer = transformer.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0,
                                                batch_first=True, dtype=torch.float64)
    x = torch.randn(1, seq_len, d_model, dtype=torch.float64)
    J = jacobian(lambda t: layer._sa_block(t, None, None), x)  # (1, L, E, 1, L, E)
    J = J.reshape(seq_len * d_model, seq_len * d_model)  # (L·E, L·E)
    return torch.linalg.eigvals(J)


@figure("s5_shift_rotation")
def shift_rotation(k: int = 5, d_model: int = 16, pos: int = 3) -> Figure:
    """R_k (block-diagonal rotations) and what it does to PE(pos) in two frequency planes."""
    R = transformer.position_shift_matrix(k, d_model)  # (d, d)
    pe = transformer.sinusoidal_positional_encoding(pos + k + 1, d_model)  # (pos+k+1, d)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    axes[0].imshow(R.numpy(), cmap=CMAP_DIVERGING, vmin=-1, vmax=1)
    axes[0].set(title=f"$R_{{{k}}}$ ({d_model}×{d_model})", xticks=[], yticks=[])
    axes[0].grid(False)
    t = np.linspace(0, 2 * np.pi, 200)
    for ax, i in zip(axes[1:], (0, 2)):
        ax.plot(np.cos(t), np.sin(t), color=GREY, lw=0.6)
        ps, pc = pe[pos, 2 * i].item(), pe[pos, 2 * i + 1].item()
        shifted = R[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] @ pe[pos, 2 * i: 2 * i + 2]
        ax.annotate("", xy=(ps, pc), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": BLUE})
        ax.annotate("", xy=(shifted[0].item(), shifted[1].item()), xytext=(0, 0),
                    arrowprops={"arrowstyle": "->", "color": RED})
        ax.plot(pe[pos + k, 2 * i].item(), pe[pos + k, 2 * i + 1].item(), "o", mfc="none", mec="k",
                ms=10, label=f"PE({pos + k}) itself")
        ax.set(xlim=(-1.25, 1.25), ylim=(-1.25, 1.25), xlabel=f"column {2 * i} (sin)",
               ylabel=f"column {2 * i + 1} (cos)", title=f"plane i = {i}")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower left")
    axes[1].text(-1.2, 1.1, f"blue: PE({pos})\nred: R·PE({pos})", fontsize=7, va="top")
    fig.tight_layout()
    return fig
