"""§3 Convolution is GEMM in disguise: Toeplitz matrices, im2col, depthwise-separable convolution.

A convolution is a linear map, so it is a matrix. In one dimension that matrix is a banded
Toeplitz matrix :math:`T` with :math:`y = T x` (§3.1). In two dimensions the frameworks never
build :math:`T`; they copy every receptive field into one column of :math:`X_{col}` (im2col) and
compute the whole layer as one dense product :math:`Y_{flat} = W_{row} X_{col}` (§3.2).
A depthwise-separable convolution factors the weight tensor into a per-channel spatial filter and
a 1x1 channel mixer: a low-rank factorisation with far fewer parameters and FLOPs (§3.3).

Every function mirrors the ``torch.nn.functional`` built-in of the same name (``F.conv1d``,
``F.conv2d``, ``F.unfold`` as :func:`im2col`, ``F.fold`` as :func:`col2im`) and takes ints or
tuples wherever torch does. Convolution in torch, as here, is cross-correlation: the kernel is
not flipped, ``y[i] = sum_k w[k] x[i*stride + k*dilation - padding]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from la_dl._checks import check_floating, check_ndim, check_same, check_tensor

__all__ = [
    "toeplitz",
    "im2col",
    "col2im",
    "conv1d",
    "conv2d",
    "depthwise_separable_conv2d",
    "depthwise_separable_weight",
    "im2col_blowup",
    "conv_output_size",
    "conv_parameter_count",
    "depthwise_separable_parameter_count",
    "conv_flops",
    "Conv2d",
]

IntOrPair = Union[int, Sequence[int]]
# conv2d on a CPU builds X_col for as many images as fit in this many elements (16 MiB in float32).
_CPU_X_COL_ELEMENTS = 2**22
Padding = Union[int, Sequence[int], str]


# ----------------------------------------------------------------------------------------------
# Argument helpers: ints or tuples, as torch accepts them
# ----------------------------------------------------------------------------------------------


def _ntuple(fn: str, name: str, value: object, n: int, minimum: int) -> tuple[int, ...]:
    """``value`` as an n-tuple of ints >= ``minimum`` (an int is repeated n times)."""
    if isinstance(value, bool):
        raise TypeError(f"{fn}: expected {name} to be an int or a tuple of {n} ints but got bool")
    if isinstance(value, int):
        values: tuple = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{fn}: expected {name} to be an int or a tuple of {n} ints but got {value!r}")
    else:
        raise TypeError(
            f"{fn}: expected {name} to be an int or a tuple of {n} ints but got {type(value).__name__}"
        )
    if any(v < minimum for v in values):
        bound = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{fn}: expected {name} to be {bound} but got {value!r}")
    return values


def conv_output_size(
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    fn: str = "conv_output_size",
) -> tuple[int, ...]:
    """Spatial output size per dimension, the formula of the ``nn.Conv2d`` docs.

    .. math:: L_{out} = \\lfloor (L + 2p - d(K-1) - 1) / s \\rfloor + 1

    Raises ``ValueError`` when the dilated kernel is larger than the padded input.
    """
    out = []
    for L, K, s, p, d in zip(input_size, kernel_size, stride, padding, dilation):
        span = d * (K - 1) + 1  # the receptive field of one output, dilation included
        if span > L + 2 * p:
            padded = " x ".join(str(n + 2 * q) for n, q in zip(input_size, padding))
            spans = " x ".join(str(e * (k - 1) + 1) for k, e in zip(kernel_size, dilation))
            raise ValueError(
                f"{fn}: expected the (dilated) kernel ({spans}) to fit in the padded input "
                f"({padded}) but got a kernel larger than the input"
            )
        out.append((L + 2 * p - span) // s + 1)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# §3.1 One dimension: the Toeplitz matrix
# ----------------------------------------------------------------------------------------------


def toeplitz(
    weight: torch.Tensor, input_length: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> torch.Tensor:
    """The banded (block-)Toeplitz matrix ``T`` of a 1D convolution: ``y = T x`` (§3.1).

    Row ``i`` of ``T`` holds the kernel starting at column ``i*stride - padding``:
    ``T[i, i*stride + k*dilation - padding] = w[k]``. Columns that would fall on the zero
    padding are dropped, so ``T`` multiplies the unpadded input.

    Parameters
    ----------
    weight:
        ``(K,)`` for one channel, giving ``T`` of shape ``(L_out, L)`` with
        ``T @ x == F.conv1d(x.view(1, 1, L), weight.view(1, 1, K)).flatten()``; or the
        ``F.conv1d`` weight ``(C_out, C_in, K)``, giving the block matrix
        ``(C_out * L_out, C_in * L)`` with ``T @ x.flatten() == F.conv1d(x[None], weight).flatten()``
        for ``x`` of shape ``(C_in, L)``.
    input_length:
        ``L``, the length of the (unpadded) input.
    """
    fn = "toeplitz"
    check_tensor("weight", fn, weight)
    check_ndim("weight", fn, weight, (1, 3))
    check_floating("weight", fn, weight)
    (L,) = _ntuple(fn, "input_length", input_length, 1, 1)
    (s,) = _ntuple(fn, "stride", stride, 1, 1)
    (p,) = _ntuple(fn, "padding", padding, 1, 0)
    (d,) = _ntuple(fn, "dilation", dilation, 1, 1)
    K = weight.shape[-1]
    (L_out,) = conv_output_size((L,), (K,), (s,), (p,), (d,), fn)

    # Selection tensor S[i, k, j] = 1 where output i reads input j through kernel tap k.
    i = torch.arange(L_out, device=weight.device).view(L_out, 1, 1)
    k = torch.arange(K, device=weight.device).view(1, K, 1)
    j = torch.arange(L, device=weight.device).view(1, 1, L)
    S = (j == i * s + k * d - p).to(weight.dtype)  # (L_out, K, L)

    if weight.ndim == 1:
        return torch.einsum("k,ikj->ij", weight, S)  # (L_out, L)
    C_out, C_in, _ = weight.shape
    T = torch.einsum("ock,ikj->oicj", weight, S)  # (C_out, L_out, C_in, L)
    return T.reshape(C_out * L_out, C_in * L)  # (C_out*L_out, C_in*L): block-Toeplitz


# ----------------------------------------------------------------------------------------------
# §3.2 Two dimensions: im2col and its adjoint col2im
# ----------------------------------------------------------------------------------------------


def im2col(
    input: torch.Tensor,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: IntOrPair = 0,
    stride: IntOrPair = 1,
) -> torch.Tensor:
    """Unfold every receptive field into one column of ``X_col``: ``F.unfold`` (§3.2).

    For input ``(N, C, H, W)`` the result is ``(N, C*kH*kW, L)`` with ``L = H_out * W_out``
    columns, one per output position (row-major), each the flattened ``C x kH x kW`` patch in
    the order ``(c, kh, kw)``. An unbatched ``(C, H, W)`` input gives ``(C*kH*kW, L)``.

    The patches are first a zero-copy strided *view* of the padded input (``as_strided``:
    moving to the next output position moves ``stride`` pixels, moving to the next kernel tap
    moves ``dilation`` pixels); the one copy happens when the view is flattened into ``X_col``.
    That copy is the memory blow-up: each pixel lands in up to ``kH*kW`` columns.
    """
    fn = "im2col"
    check_tensor("input", fn, input)
    check_ndim("input", fn, input, (3, 4))
    kh, kw = _ntuple(fn, "kernel_size", kernel_size, 2, 1)
    dh, dw = _ntuple(fn, "dilation", dilation, 2, 1)
    ph, pw = _ntuple(fn, "padding", padding, 2, 0)
    sh, sw = _ntuple(fn, "stride", stride, 2, 1)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input  # (N, C, H, W)
    N, C, H, W = x.shape
    H_out, W_out = conv_output_size((H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw), fn)

    x = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw), zeros around the border
    sN, sC, sH, sW = x.stride()
    patches = x.as_strided(  # a view, no copy: patches[n, c, i, j, y, x] = x[n, c, y*sh + i*dh, x*sw + j*dw]
        (N, C, kh, kw, H_out, W_out),
        (sN, sC, dh * sH, dw * sW, sh * sH, sw * sW),
        x.storage_offset(),
    )
    cols = patches.reshape(N, C * kh * kw, H_out * W_out)  # (N, C*kH*kW, L): X_col, the copy
    return cols[0] if unbatched else cols


def col2im(
    input: torch.Tensor,
    output_size: IntOrPair,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: IntOrPair = 0,
    stride: IntOrPair = 1,
) -> torch.Tensor:
    """Scatter-add columns back into an image: ``F.fold``, the adjoint (transpose) of :func:`im2col`.

    ``input`` is ``(N, C*kH*kW, L)`` (or unbatched ``(C*kH*kW, L)``); the result is
    ``(N, C, H, W)`` with ``(H, W) = output_size``. A pixel shared by several patches receives
    the sum of their entries, which is why ``col2im(im2col(x))`` is ``x`` times the number of
    patches covering each pixel, and why ``<im2col(x), y> = <x, col2im(y)>`` (§3.2).
    """
    fn = "col2im"
    check_tensor("input", fn, input)
    check_ndim("input", fn, input, (2, 3))
    H, W = _ntuple(fn, "output_size", output_size, 2, 1)
    kh, kw = _ntuple(fn, "kernel_size", kernel_size, 2, 1)
    dh, dw = _ntuple(fn, "dilation", dilation, 2, 1)
    ph, pw = _ntuple(fn, "padding", padding, 2, 0)
    sh, sw = _ntuple(fn, "stride", stride, 2, 1)
    unbatched = input.ndim == 2
    cols = input.unsqueeze(0) if unbatched else input  # (N, C*kH*kW, L)
    N, CK, L = cols.shape
    if CK % (kh * kw) != 0:
        raise ValueError(
            f"{fn}: expected size of dimension 1 of input to be divisible by kH*kW = {kh * kw} "
            f"but got {CK}"
        )
    H_out, W_out = conv_output_size((H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw), fn)
    if L != H_out * W_out:
        raise ValueError(
            f"{fn}: expected {H_out * W_out} columns (the {H_out} x {W_out} sliding positions of "
            f"output_size {(H, W)}) but got input of shape {tuple(input.shape)}"
        )
    C = CK // (kh * kw)
    cols = cols.reshape(N, C, kh, kw, H_out, W_out)  # (N, C, kH, kW, H_out, W_out)

    out = cols.new_zeros(N, C, H + 2 * ph, W + 2 * pw)  # (N, C, H + 2ph, W + 2pw)
    for i in range(kh):  # one strided slice of the image per kernel tap (i, j)
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (H_out - 1) + 1, sh)
            colz = slice(j * dw, j * dw + sw * (W_out - 1) + 1, sw)
            out[:, :, rows, colz] += cols[:, :, i, j]  # overlapping patches add up
    out = out[:, :, ph : ph + H, pw : pw + W]  # (N, C, H, W): drop the padding
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------------------------
# §3.2 Convolution as one GEMM
# ----------------------------------------------------------------------------------------------


def _check_conv(
    fn: str,
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    groups: int,
    spatial: int,
) -> None:
    """The boundary checks shared by conv1d and conv2d (``spatial`` = 1 or 2 dims)."""
    check_tensor("input", fn, input)
    check_tensor("weight", fn, weight)
    if bias is not None:
        check_tensor("bias", fn, bias)
    check_ndim("input", fn, input, (spatial + 1, spatial + 2))
    check_ndim("weight", fn, weight, spatial + 2)
    check_floating("input", fn, input)
    check_same(fn, input=input, weight=weight, bias=bias)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"{fn}: expected groups to be an int but got {type(groups).__name__}")
    if groups <= 0:
        raise ValueError(f"{fn}: expected groups > 0 but got {groups}")
    C_out, C_in_per_group = weight.shape[:2]
    C_in = input.shape[-spatial - 1]
    if C_in != C_in_per_group * groups:
        raise ValueError(
            f"{fn}: expected input of shape {tuple(input.shape)} to have weight.shape[1] * groups = "
            f"{C_in_per_group} * {groups} = {C_in_per_group * groups} channels but got {C_in} channels"
        )
    if C_out % groups != 0:
        raise ValueError(
            f"{fn}: expected out_channels (weight.shape[0] = {C_out}) to be divisible by "
            f"groups = {groups} but got {C_out}"
        )
    if bias is not None and tuple(bias.shape) != (C_out,):
        raise ValueError(f"{fn}: expected bias of shape ({C_out},) but got {tuple(bias.shape)}")


def _resolve_padding(
    fn: str,
    padding: Padding,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``padding`` as (left, right) per dim; ``'same'`` puts the odd pixel on the right, as torch does."""
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * n, (0,) * n
        if padding != "same":
            raise ValueError(f"{fn}: expected padding to be 'valid', 'same', or ints but got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{fn}: expected stride 1 with padding='same' but got stride {stride}")
        total = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        left = tuple(t // 2 for t in total)
        return left, tuple(t - lt for t, lt in zip(total, left))
    symmetric = _ntuple(fn, "padding", padding, n, 0)
    return symmetric, symmetric


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2D convolution as one GEMM on the im2col matrix: ``F.conv2d`` (§3.2).

    .. math:: Y_{flat} = W_{row} \\, X_{col} + b \\mathbf{1}^\\top

    with :math:`W_{row}` the weight flattened to ``(C_out, C_in*kH*kW)`` and :math:`X_{col}`
    the ``(C_in*kH*kW, H_out*W_out)`` matrix of :func:`im2col`, per sample. With ``groups = G``
    the channels split into G independent blocks and the product is one batched GEMM over
    the groups (``G = C_in`` is a depthwise convolution). On a CPU, ``X_col`` is built for a
    few images at a time (at most ``_CPU_X_COL_ELEMENTS`` values) so that it stays in cache:
    the same GEMM, split along its columns.

    Shapes: input ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``; weight
    ``(C_out, C_in/G, kH, kW)``; bias ``(C_out,)``; output ``(N, C_out, H_out, W_out)``.
    """
    return _conv2d("conv2d", input, weight, bias, stride, padding, dilation, groups)


def _conv2d(
    fn: str,
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: IntOrPair,
    padding: Padding,
    dilation: IntOrPair,
    groups: int,
) -> torch.Tensor:
    _check_conv(fn, input, weight, bias, groups, spatial=2)
    stride = _ntuple(fn, "stride", stride, 2, 1)
    dilation = _ntuple(fn, "dilation", dilation, 2, 1)
    C_out, C_in_g, kh, kw = weight.shape
    left, right = _resolve_padding(fn, padding, (kh, kw), stride, dilation)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input  # (N, C_in, H, W)
    if left != right:  # padding='same' with an even kernel: the odd pixel goes right/bottom
        x = F.pad(x, (left[1], right[1], left[0], right[0]))
        left = (0, 0)
    N, C_in, H, W = x.shape
    H_out, W_out = conv_output_size((H, W), (kh, kw), stride, left, dilation, fn)
    G = groups

    W_row = weight.reshape(G, C_out // G, C_in_g * kh * kw)  # (G, C_out/G, C_in/G*kH*kW)

    # X_col of a whole batch is K²/s² times the input: hundreds of MB for an early CNN layer.
    # On a CPU we build it for a few images at a time, sized to stay in cache (Caffe did it per
    # image); it is the same GEMM, split along its columns. A GPU takes the batch in one GEMM.
    L = H_out * W_out
    chunk = N if x.device.type != "cpu" else max(1, _CPU_X_COL_ELEMENTS // (C_in * kh * kw * L))
    Y_chunks = []
    for x_chunk in x.split(chunk):  # (n, C_in, H, W)
        n = x_chunk.shape[0]
        X_col = im2col(x_chunk, (kh, kw), dilation, left, stride)  # (n, C_in*kH*kW, L)
        X_col = X_col.view(n, G, C_in_g * kh * kw, L)  # (n, G, C_in/G*kH*kW, L)
        Y_chunks.append(torch.matmul(W_row, X_col))  # (n, G, C_out/G, L): Y_flat = W_row X_col
    Y = Y_chunks[0] if len(Y_chunks) == 1 else torch.cat(Y_chunks)  # (N, G, C_out/G, L)
    Y = Y.view(N, C_out, H_out, W_out)  # (N, C_out, H_out, W_out): reshape back to the image
    if bias is not None:
        Y = Y + bias.view(1, C_out, 1, 1)  # + b 1^T
    return Y[0] if unbatched else Y


def conv1d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """1D convolution: ``F.conv1d``, computed as a 2D one on an image of height 1 (§3.1).

    Equal to multiplying each channel block by the Toeplitz matrix of :func:`toeplitz`; here
    it runs through im2col and one GEMM like :func:`conv2d`.
    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/G, K)``;
    output ``(N, C_out, L_out)``.
    """
    fn = "conv1d"
    _check_conv(fn, input, weight, bias, groups, spatial=1)
    (s,) = _ntuple(fn, "stride", stride, 1, 1)
    (d,) = _ntuple(fn, "dilation", dilation, 1, 1)
    p = padding if isinstance(padding, str) else _ntuple(fn, "padding", padding, 1, 0)[0]
    if not isinstance(p, str):  # report a too-long kernel in 1D terms, before lifting to 2D
        conv_output_size(input.shape[-1:], weight.shape[-1:], (s,), (p,), (d,), fn)
    x2 = input.unsqueeze(-2)  # (N, C_in, 1, L): a one-pixel-high image
    w2 = weight.unsqueeze(-2)  # (C_out, C_in/G, 1, K)
    pad2 = p if isinstance(p, str) else (0, p)
    y = _conv2d(fn, x2, w2, bias, (1, s), pad2, (1, d), groups)  # (N, C_out, 1, L_out)
    return y.squeeze(-2)  # (N, C_out, L_out)


# ----------------------------------------------------------------------------------------------
# §3.3 Depthwise-separable convolution: a low-rank factorisation
# ----------------------------------------------------------------------------------------------


def _check_separable(fn: str, depthwise_weight: torch.Tensor, pointwise_weight: torch.Tensor) -> None:
    check_tensor("depthwise_weight", fn, depthwise_weight)
    check_ndim("depthwise_weight", fn, depthwise_weight, 4)
    if depthwise_weight.shape[1] != 1:
        raise ValueError(
            f"{fn}: expected depthwise_weight of shape (C_in * M, 1, kH, kW) but got "
            f"{tuple(depthwise_weight.shape)}"
        )
    check_tensor("pointwise_weight", fn, pointwise_weight)
    check_ndim("pointwise_weight", fn, pointwise_weight, 4)
    C_mid = depthwise_weight.shape[0]
    if tuple(pointwise_weight.shape[1:]) != (C_mid, 1, 1):
        raise ValueError(
            f"{fn}: expected pointwise_weight of shape (C_out, {C_mid}, 1, 1) but got "
            f"{tuple(pointwise_weight.shape)}"
        )


def depthwise_separable_conv2d(
    input: torch.Tensor,
    depthwise_weight: torch.Tensor,
    pointwise_weight: torch.Tensor,
    depthwise_bias: torch.Tensor | None = None,
    pointwise_bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """Depthwise ``K x K`` convolution per channel, then a pointwise ``1 x 1`` channel mixer (§3.3).

    Equal to ``F.conv2d(F.conv2d(input, depthwise_weight, depthwise_bias, stride, padding,
    dilation, groups=C_in), pointwise_weight, pointwise_bias)``. The parameters drop from
    :math:`C_{out} C_{in} K^2` to :math:`C_{in} K^2 + C_{out} C_{in}` (MobileNet).

    Shapes: input ``(N, C_in, H, W)``; depthwise_weight ``(C_in*M, 1, K, K)`` (M: depth
    multiplier, usually 1); pointwise_weight ``(C_out, C_in*M, 1, 1)``.
    """
    fn = "depthwise_separable_conv2d"
    check_tensor("input", fn, input)
    check_ndim("input", fn, input, (3, 4))
    _check_separable(fn, depthwise_weight, pointwise_weight)
    C_in, C_mid = input.shape[-3], depthwise_weight.shape[0]
    if C_mid % C_in != 0:
        raise ValueError(
            f"{fn}: expected depthwise_weight.shape[0] to be a multiple (C_in * M) of the input's "
            f"{C_in} channels but got {C_mid}"
        )
    h = _conv2d(fn, input, depthwise_weight, depthwise_bias, stride, padding, dilation, groups=C_in)
    return _conv2d(fn, h, pointwise_weight, pointwise_bias, 1, 0, 1, groups=1)  # (N, C_out, H_out, W_out)


def depthwise_separable_weight(
    depthwise_weight: torch.Tensor, pointwise_weight: torch.Tensor, in_channels: int | None = None
) -> torch.Tensor:
    """The dense ``(C_out, C_in, K, K)`` weight that a depthwise-separable pair computes (§3.3).

    With depth multiplier 1: :math:`W[o, c, :, :] = P[o, c] \\, D[c, :, :]`. For every input
    channel ``c`` the slice ``W[:, c]`` reshaped to ``(C_out, K*K)`` is the outer product of
    the column ``P[:, c]`` and the flattened filter ``D[c]``: rank 1 (rank <= M with depth
    multiplier M), where a general convolution's slice has rank up to ``min(C_out, K*K)``.
    ``conv2d(x, W)`` equals :func:`depthwise_separable_conv2d` without biases.

    ``in_channels`` (default ``depthwise_weight.shape[0]``, i.e. M = 1) fixes M = C_mid / C_in.
    """
    fn = "depthwise_separable_weight"
    check_tensor("depthwise_weight", fn, depthwise_weight)
    _check_separable(fn, depthwise_weight, pointwise_weight)
    check_same(fn, depthwise_weight=depthwise_weight, pointwise_weight=pointwise_weight)
    C_mid, _, kh, kw = depthwise_weight.shape
    C_out = pointwise_weight.shape[0]
    (C_in,) = _ntuple(fn, "in_channels", C_mid if in_channels is None else in_channels, 1, 1)
    if C_mid % C_in != 0:
        raise ValueError(
            f"{fn}: expected depthwise_weight.shape[0] ({C_mid}) to be a multiple of in_channels "
            f"but got in_channels = {C_in}"
        )
    M = C_mid // C_in
    P = pointwise_weight.reshape(C_out, C_in, M)  # (C_out, C_in, M)
    D = depthwise_weight.reshape(C_in, M, kh, kw)  # (C_in, M, kH, kW): filter c*M + r reads channel c
    return torch.einsum("ocm,cmhw->ochw", P, D)  # (C_out, C_in, kH, kW): W[o, c] = sum_r P[o, c, r] D[c, r]


def im2col_blowup(
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: IntOrPair = 0,
    stride: IntOrPair = 1,
) -> float:
    """How many times larger ``X_col`` is than the input: ``numel(im2col(x)) / numel(x)`` (§3.2).

    .. math:: \\frac{C K_h K_w H_{out} W_{out}}{C H W} \\approx \\frac{K^2}{s^2}

    ``input_size`` is ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``; the ratio depends only on
    ``(H, W)``. With "same" padding and stride 1 the ratio is exactly ``K^2``: every interior
    pixel is copied into ``K^2`` columns, border pixels into fewer, and padding zeros fill the rest.
    """
    fn = "im2col_blowup"
    if not isinstance(input_size, Sequence) or len(input_size) not in (2, 3, 4):
        raise ValueError(
            f"{fn}: expected input_size (N, C, H, W), (C, H, W) or (H, W) but got {input_size!r}"
        )
    H, W = _ntuple(fn, "input_size[-2:]", tuple(input_size[-2:]), 2, 1)
    kh, kw = _ntuple(fn, "kernel_size", kernel_size, 2, 1)
    d = _ntuple(fn, "dilation", dilation, 2, 1)
    p = _ntuple(fn, "padding", padding, 2, 0)
    s = _ntuple(fn, "stride", stride, 2, 1)
    H_out, W_out = conv_output_size((H, W), (kh, kw), s, p, d, fn)
    return (kh * kw * H_out * W_out) / (H * W)


def conv_parameter_count(
    in_channels: int, out_channels: int, kernel_size: IntOrPair, groups: int = 1, bias: bool = True
) -> int:
    """Parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size, groups=groups, bias=bias)``.

    .. math:: C_{out} \\cdot \\frac{C_{in}}{G} \\cdot K_h K_w \\; (+ C_{out} \\text{ with bias})

    With ``groups=1`` and no bias this is the standard :math:`C_{out} C_{in} K^2` (§3.3).
    """
    fn = "conv_parameter_count"
    C_in, C_out, G = (_ntuple(fn, n, v, 1, 1)[0] for n, v in
                      (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)))
    kh, kw = _ntuple(fn, "kernel_size", kernel_size, 2, 1)
    if C_in % G or C_out % G:
        raise ValueError(
            f"{fn}: expected in_channels ({C_in}) and out_channels ({C_out}) divisible by groups "
            f"but got groups = {G}"
        )
    return C_out * (C_in // G) * kh * kw + (C_out if bias else 0)


def depthwise_separable_parameter_count(
    in_channels: int, out_channels: int, kernel_size: IntOrPair, depth_multiplier: int = 1, bias: bool = False
) -> int:
    """Parameters of a depthwise (``groups=C_in``) plus pointwise (1x1) pair (§3.3).

    .. math:: C_{in} K^2 + C_{out} C_{in} \\quad (M = 1, \\text{no bias})

    so the ratio to a standard convolution is :math:`1/C_{out} + 1/K^2`.
    """
    C_mid = in_channels * depth_multiplier
    return conv_parameter_count(in_channels, C_mid, kernel_size, groups=in_channels, bias=bias) + (
        conv_parameter_count(C_mid, out_channels, 1, bias=bias)
    )


def conv_flops(
    input_size: Sequence[int],
    weight_size: Sequence[int],
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> int:
    """FLOPs of ``F.conv2d`` (2 per multiply-add, the convention of ``torch.utils.flop_counter``).

    .. math:: 2 \\, N \\, C_{out} H_{out} W_{out} \\cdot \\frac{C_{in}}{G} K_h K_w

    ``weight_size`` is ``(C_out, C_in/G, kH, kW)``, so the groups are read from the shapes.
    This is also the FLOP count of the GEMM ``W_row X_col`` (§3.2).
    """
    fn = "conv_flops"
    if len(input_size) != 4 or len(weight_size) != 4:
        raise ValueError(
            f"{fn}: expected input_size (N, C, H, W) and weight_size (C_out, C_in/G, kH, kW) but got "
            f"{tuple(input_size)} and {tuple(weight_size)}"
        )
    N, _, H, W = input_size
    C_out, C_in_g, kh, kw = weight_size
    s = _ntuple(fn, "stride", stride, 2, 1)
    p = _ntuple(fn, "padding", padding, 2, 0)
    d = _ntuple(fn, "dilation", dilation, 2, 1)
    H_out, W_out = conv_output_size((H, W), (kh, kw), s, p, d, fn)
    return 2 * N * C_out * H_out * W_out * C_in_g * kh * kw


# ----------------------------------------------------------------------------------------------
# Module form
# ----------------------------------------------------------------------------------------------


class Conv2d(nn.Module):
    """``nn.Conv2d`` (zero padding) computed by :func:`conv2d`; loads an ``nn.Conv2d`` state_dict."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kh, kw = _ntuple("Conv2d", "kernel_size", kernel_size, 2, 1)
        conv_parameter_count(in_channels, out_channels, (kh, kw), groups)  # validates the channels
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        # nn.Conv2d's default init: kaiming_uniform_(a=sqrt(5)) and a matching uniform bias
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
