"""Widgets of §3: move the kernel size, stride, padding, dilation and the output position of im2col."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import torch
import torch.nn.functional as F

from la_dl import conv
from la_dl.plots.conv import im2col_diagram
from la_dl.widgets import explorable

__all__ = ["im2col_shapes_explorer", "receptive_field_explorer"]


def im2col_shapes_explorer(
    kernel_sizes: Sequence[int] = (2, 3),
    strides: Sequence[int] = (1, 2),
    paddings: Sequence[int] = (0, 1),
    dilations: Sequence[int] = (1, 2),
    size: int = 6,
    in_channels: int = 3,
    out_channels: int = 4,
) -> W.VBox:
    """Kernel size, stride, padding and dilation → the im2col picture and every shape (§3.2).

    The summary lists the shapes of ``X_col``, ``W_row`` and ``Y`` for a layer with
    ``in_channels`` → ``out_channels`` on a ``size x size`` input, the blow-up factor, and
    checks ``la_dl.conv.conv2d`` against ``F.conv2d`` on that layer.
    """

    def draw(kernel_size: int, stride: int, padding: int, dilation: int):
        fig = im2col_diagram(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                             dilation=dilation, position=(1, 1), figsize=(8, 2.8))
        g = torch.Generator().manual_seed(0)
        C, K = in_channels, kernel_size
        x = torch.randn(1, C, size, size, generator=g, dtype=torch.float64)  # (N, C_in, H, W)
        w = torch.randn(out_channels, C, K, K, generator=g, dtype=torch.float64)  # (C_out, C_in, K, K)
        args = dict(stride=stride, padding=padding, dilation=dilation)
        X_col = conv.im2col(x, K, dilation, padding, stride)  # (N, C_in*K*K, L)
        y = conv.conv2d(x, w, **args)  # (N, C_out, H_out, W_out)
        err = (y - F.conv2d(x, w, **args)).abs().max().item()
        blowup = conv.im2col_blowup(x.shape, K, dilation, padding, stride)
        rows = [("input x", x), ("X_col", X_col[0]), ("W_row", w.reshape(out_channels, -1)),
                ("Y = W_row X_col", y[0].flatten(1)), ("output", y)]
        cells = "".join(f"<td style='padding:0 10px'>{name}<br><code>{tuple(t.shape)}</code></td>"
                        for name, t in rows)
        summary = (
            f"<table><tr>{cells}</tr></table>"
            f"C_in = {C} → C_out = {out_channels}: X_col holds <b>{blowup:.2f}×</b> the input's values; "
            f"|la_dl.conv.conv2d − F.conv2d| = {err:.0e}"
        )
        return fig, summary

    return explorable(
        draw,
        {"kernel_size": list(kernel_sizes), "stride": list(strides), "padding": list(paddings),
         "dilation": list(dilations)},
        labels={"kernel_size": "kernel K", "stride": "stride s", "padding": "padding p",
                "dilation": "dilation d"},
        initial={"kernel_size": kernel_sizes[-1], "stride": strides[0], "padding": paddings[0],
                 "dilation": dilations[0]},
        title=f"im2col on a {size}x{size} input: patches, columns and shapes",
    )


def receptive_field_explorer(
    rows: Sequence[int] = (0, 1, 2),
    cols: Sequence[int] = (0, 1, 2),
    dilations: Sequence[int] = (1, 2),
    size: int = 7,
    kernel_size: int = 3,
    stride: int = 2,
    padding: int = 1,
) -> W.VBox:
    """Pick an output position (and the dilation): its patch in the input and its column in X_col."""

    def draw(row: int, col: int, dilation: int):
        fig = im2col_diagram(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                             dilation=dilation, position=(row, col), figsize=(8, 2.8))
        H_out, W_out = conv.conv_output_size((size, size), (kernel_size,) * 2, (stride,) * 2,
                                             (padding,) * 2, (dilation,) * 2)
        top, left = row * stride - padding, col * stride - padding
        K = kernel_size
        taps = [(top + a * dilation, left + b * dilation) for a in range(K) for b in range(K)]
        inside = sum(0 <= r < size and 0 <= c < size for r, c in taps)
        summary = (
            f"output ({row}, {col}) of {H_out}x{W_out} = column {row * W_out + col} of X_col; "
            f"its patch starts at input ({top}, {left}) and reads {inside} real pixels and "
            f"{len(taps) - inside} zeros of the padding"
        )
        return fig, summary

    return explorable(
        draw,
        {"row": list(rows), "col": list(cols), "dilation": list(dilations)},
        labels={"row": "output row", "col": "output column", "dilation": "dilation d"},
        initial={"row": rows[1], "col": cols[1], "dilation": dilations[0]},
        title=f"Which pixels feed one output? ({size}x{size} input, {kernel_size}x{kernel_size} kernel, "
              f"stride {stride}, padding {padding})",
    )
