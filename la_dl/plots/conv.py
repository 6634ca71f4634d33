"""Figures of §3: convolution is GEMM in disguise (Toeplitz, im2col, blow-up, separable counts)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from la_dl import conv
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, CMAP_SEQUENTIAL, GREEN, GREY, ORANGE, RED

__all__ = ["toeplitz_heatmap", "im2col_diagram", "blowup_curve", "separable_counts", "separable_rank"]


def _bare(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _annotate(ax: Axes, matrix: torch.Tensor, fmt: str = "{:.0f}", fontsize: float = 7,
              skip_zero: bool = False) -> None:
    for (r, c), v in zip(torch.cartesian_prod(*map(torch.arange, matrix.shape)).tolist(),
                         matrix.flatten().tolist()):
        if skip_zero and v == 0:
            continue
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=fontsize)


@figure("s3_toeplitz")
def toeplitz_heatmap(
    kernel: tuple[float, ...] = (1.0, -2.0, 0.5),
    input_length: int = 12,
    stride: int = 1,
    padding: int = 0,
    seed: int = 0,
    figsize: tuple[float, float] = (9, 3.2),
) -> Figure:
    """The banded Toeplitz matrix T of a 1D kernel, and y = T x next to ``F.conv1d`` (§3.1)."""
    w = torch.tensor(kernel, dtype=torch.float64)  # (K,)
    T = conv.toeplitz(w, input_length, stride=stride, padding=padding)  # (L_out, L)
    x = torch.randn(input_length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = T @ x  # (L_out,)
    ref = F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1), stride=stride, padding=padding).flatten()

    fig, (ax_t, ax_y) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.5, 1]})
    lim = 1.8 * float(w.abs().max())  # pastel colours: the annotated numbers stay readable
    ax_t.imshow(T, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
    if T.numel() <= 200:
        _annotate(ax_t, T, "{:g}", skip_zero=True)
    ax_t.set_title(f"T: {T.shape[0]} x {T.shape[1]}, {int((T != 0).sum())} of {T.numel()} entries non-zero")
    ax_t.set_xlabel("input position j")
    ax_t.set_ylabel("output position i")
    ax_t.grid(False)

    idx = torch.arange(len(y))
    ax_y.bar(idx, y, color=BLUE, alpha=0.7, label="y = T x")
    ax_y.plot(idx, ref, "o", color=ORANGE, label="F.conv1d(x, w)")
    ax_y.axhline(0, color=GREY, lw=0.8)
    err = (y - ref).abs().max().item()
    ax_y.set_title(f"same numbers: max |diff| = {err:.0e}")
    ax_y.set_xlabel("output position i")
    ax_y.legend(loc="best", fontsize=8)
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_t.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_y.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"1D convolution with w = {list(kernel)} (stride {stride}, padding {padding}) is a matrix product"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


@figure("s3_im2col")
def im2col_diagram(
    size: int = 5,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    position: tuple[int, int] = (1, 1),
    figsize: tuple[float, float] = (10, 3.4),
) -> Figure:
    """The im2col recipe on one channel: a receptive field becomes a column of X_col (§3.2).

    The input pixels are numbered 1, 2, ... so each column of ``X_col`` shows which pixels it
    copied (0 = padding). The highlighted output ``position`` (row, column) picks a patch,
    its column, and the entry of ``Y = w_row X_col`` reshaped back to the output map.
    """
    H = W = size
    K, s, p, d = kernel_size, stride, padding, dilation
    H_out, W_out = conv.conv_output_size((H, W), (K, K), (s, s), (p, p), (d, d))
    i, j = min(position[0], H_out - 1), min(position[1], W_out - 1)
    l = i * W_out + j  # the column of X_col that belongs to output (i, j)

    image = torch.arange(1.0, H * W + 1).view(1, 1, H, W)  # (1, 1, H, W): pixel ids
    X_col = conv.im2col(image, K, d, p, s)[0]  # (K*K, L)
    weight = torch.tensor([(-1.0) ** (r + c) * (1 + ((r * K + c) % 3)) for r in range(K) for c in range(K)])
    weight = weight.view(1, 1, K, K)  # (C_out=1, C_in=1, K, K): a small fixed kernel
    Y = (weight.view(1, -1) @ X_col).view(H_out, W_out)  # (H_out, W_out): w_row X_col, reshaped

    widths = [H + 2 * p, max(X_col.shape[1], 7) * 0.8, W_out + 1]
    fig, axes = plt.subplots(1, 3, figsize=figsize, gridspec_kw={"width_ratios": widths})
    ax_in, ax_col, ax_out = axes

    padded = F.pad(image, (p, p, p, p))[0, 0]  # (H + 2p, W + 2p)
    ax_in.imshow((padded == 0).float(), cmap="Greys", vmin=0, vmax=3)  # padding shaded
    _annotate(ax_in, padded, fontsize=7 if size <= 7 else 5)
    for a in range(K):
        for b in range(K):
            ax_in.add_patch(Rectangle((j * s + b * d - 0.5, i * s + a * d - 0.5), 1, 1, fill=True,
                                      fc=ORANGE, alpha=0.45, ec=RED, lw=1.5))
    ax_in.set_title(f"input {H}x{W}" + (f" + padding {p}" if p else "") + f"\npatch of output ({i}, {j})")
    _bare(ax_in)

    ax_col.imshow((X_col == 0).float(), cmap="Greys", vmin=0, vmax=3, aspect="auto")
    if X_col.numel() <= 260:
        _annotate(ax_col, X_col, fontsize=6)
    ax_col.add_patch(Rectangle((l - 0.5, -0.5), 1, K * K, fill=True, fc=ORANGE, alpha=0.45, ec=RED, lw=1.5))
    ax_col.set_title(f"X_col: {K * K} x {X_col.shape[1]}\ncolumn {l} = that patch")
    ax_col.set_xlabel("output position l (one column each)")
    ax_col.set_ylabel(f"kernel tap ({K * K} rows)")
    _bare(ax_col)

    lim = 1.8 * float(Y.abs().max())  # pastel colours: the annotated numbers stay readable
    ax_out.imshow(Y, cmap=CMAP_DIVERGING, vmin=-lim, vmax=lim)
    if Y.numel() <= 49:
        _annotate(ax_out, Y, fontsize=6)
    ax_out.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec=RED, lw=2.5))
    ax_out.set_title(f"Y = w_row X_col\nreshaped: {H_out}x{W_out}")
    _bare(ax_out)
    fig.suptitle(f"im2col: kernel {K}x{K}, stride {s}, padding {p}, dilation {d}", fontsize=11)
    fig.tight_layout()
    return fig


@figure("s3_blowup")
def blowup_curve(
    kernel_sizes: tuple[int, ...] = (1, 3, 5, 7, 9),
    strides: tuple[int, ...] = (1, 2, 4),
    size: int = 56,
    figsize: tuple[float, float] = (9, 3.3),
) -> Figure:
    """im2col's memory blow-up: measured ``numel(X_col) / numel(x)`` against K²/s² (§3.2).

    Right panel: how many columns of ``X_col`` each pixel is copied into (``col2im`` of
    ``im2col`` of ones) for a 3x3 kernel on a small image without padding.
    """
    fig, (ax, ax_count) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.6, 1]})
    colors = [BLUE, ORANGE, GREEN, RED]
    ks = torch.linspace(1, max(kernel_sizes), 50)
    for s, color in zip(strides, colors):
        measured = []
        for K in kernel_sizes:
            x = torch.zeros(1, 1, size, size)
            measured.append(conv.im2col(x, K, padding=K // 2, stride=s).numel() / x.numel())
        ax.plot(ks, ks**2 / s**2, color=color, lw=1, alpha=0.6)
        ax.plot(kernel_sizes, measured, "o", color=color, label=f"stride {s}, measured")
    ax.plot([], [], color=GREY, lw=1, label="K² / s²")
    ax.set_yscale("log")
    ax.set_xlabel("kernel size K (padding K // 2)")
    ax.set_ylabel("numel(X_col) / numel(x)")
    ax.set_title(f"memory blow-up on a {size}x{size} input")
    ax.legend(fontsize=8)

    small = torch.ones(1, 1, 6, 6)
    counts = conv.col2im(conv.im2col(small, 3), (6, 6), 3)[0, 0]  # (6, 6): copies per pixel
    ax_count.imshow(counts, cmap=CMAP_SEQUENTIAL, vmin=0, vmax=9)
    _annotate(ax_count, counts, fontsize=8)
    ax_count.set_title("copies of each pixel in X_col\n(3x3 kernel, no padding): 9 inside")
    _bare(ax_count)
    fig.tight_layout()
    return fig


@figure("s3_separable")
def separable_counts(
    widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024),
    kernel_size: int = 3,
    spatial: int = 14,
    figsize: tuple[float, float] = (9, 3.3),
) -> Figure:
    """Parameters and FLOPs, standard vs depthwise-separable, across channel widths (§3.3, MobileNet)."""
    K = kernel_size
    std = [conv.conv_parameter_count(c, c, K, bias=False) for c in widths]
    sep = [conv.depthwise_separable_parameter_count(c, c, K, bias=False) for c in widths]
    x_size = lambda c: (1, c, spatial, spatial)  # noqa: E731
    flops_std = [conv.conv_flops(x_size(c), (c, c, K, K), padding=K // 2) for c in widths]
    flops_sep = [conv.conv_flops(x_size(c), (c, 1, K, K), padding=K // 2)
                 + conv.conv_flops(x_size(c), (c, c, 1, 1)) for c in widths]

    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=figsize)
    ax.plot(widths, std, "o-", color=BLUE, label=f"standard  C·C·{K}²")
    ax.plot(widths, sep, "s-", color=ORANGE, label=f"separable  C·{K}² + C·C")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("channels C (C_in = C_out)")
    ax.set_ylabel("parameters")
    ax.set_title(f"parameters of one {K}x{K} layer")
    ax.legend(fontsize=8)

    ax_r.plot(widths, [a / b for a, b in zip(std, sep)], "o-", color=BLUE, ms=9, mfc="white",
              label="parameters")
    ax_r.plot(widths, [a / b for a, b in zip(flops_std, flops_sep)], "x--", color=GREEN,
              label=f"FLOPs ({spatial}x{spatial} map)")
    ax_r.axhline(K * K, color=GREY, ls=":", label=f"limit K² = {K * K}")
    ax_r.set_xscale("log", base=2)
    ax_r.set_xlabel("channels C")
    ax_r.set_ylabel("standard / separable")
    ax_r.set_title("saving = 1 / (1/C + 1/K²), same for FLOPs")
    ax_r.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure("s3_separable_rank")
def separable_rank(
    out_channels: int = 16, kernel_size: int = 3, seed: int = 0, figsize: tuple[float, float] = (7, 3)
) -> Figure:
    """Singular values of one input channel's weight slice (C_out x K²): dense vs separable (§3.3)."""
    K, C_out = kernel_size, out_channels
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn(C_out, 4, K, K, generator=g, dtype=torch.float64)
    dw = torch.randn(4, 1, K, K, generator=g, dtype=torch.float64)
    pw = torch.randn(C_out, 4, 1, 1, generator=g, dtype=torch.float64)
    separable = conv.depthwise_separable_weight(dw, pw)  # (C_out, 4, K, K)
    s_dense = torch.linalg.svdvals(dense[:, 0].reshape(C_out, K * K))
    s_sep = torch.linalg.svdvals(separable[:, 0].reshape(C_out, K * K))

    fig, ax = plt.subplots(figsize=figsize)
    idx = torch.arange(1, len(s_dense) + 1)
    ax.semilogy(idx, s_dense, "o-", color=BLUE, label="standard conv: full rank")
    ax.semilogy(idx, s_sep.clamp_min(1e-17), "s-", color=ORANGE, label="depthwise-separable: rank 1")
    ax.set_xlabel("singular value index")
    ax.set_ylabel("σ (log)")
    ax.set_title(f"one input channel's slice W[:, c] as a {C_out} x {K * K} matrix")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
