"""Tests of la_dl.conv (§3) against torch's convolutions: F.conv1d, F.conv2d, F.unfold, F.fold.

Same inputs into la_dl and into torch; outputs and gradients compared; shapes, strides,
paddings, dilations and groups drawn by hypothesis (size-1 dims and non-contiguous inputs
included); gradcheck in float64; every error path checked.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from la_dl import conv

DTYPES = [torch.float32, torch.float64]


def tol(dtype: torch.dtype) -> dict:
    """Per-dtype tolerances: a conv output is a sum of up to ~100 products here."""
    return {torch.float32: dict(atol=1e-4, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-10)}[dtype]


def make(shape, dtype, device, noncontig=False, gen=None) -> torch.Tensor:
    """A random tensor; ``noncontig`` gives a transposed view of the last two dims (same values)."""
    if noncontig and len(shape) >= 2:
        base = torch.randn(*shape[:-2], shape[-1], shape[-2], generator=gen, dtype=torch.float64)
        t = base.to(device=device, dtype=dtype).transpose(-1, -2)
        assert not t.is_contiguous() or min(shape[-2:]) == 1
        return t
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)


def leaf(t: torch.Tensor) -> torch.Tensor:
    """An independent leaf with the same values and the same strides (clone keeps them)."""
    return t.detach().clone().requires_grad_(True)


def compare_with_grad(ours_fn, torch_fn, inputs: list[torch.Tensor | None], dtype, seed=0):
    """Outputs and the gradients of every input equal, under a random upstream gradient."""
    ours_in = [None if t is None else leaf(t) for t in inputs]
    ref_in = [None if t is None else leaf(t) for t in inputs]
    out, ref = ours_fn(*ours_in), torch_fn(*ref_in)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, **tol(dtype))
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = g.to(device=ref.device, dtype=dtype)
    out.backward(g)
    ref.backward(g)
    for a, b in zip(ours_in, ref_in):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, **tol(dtype))


# ----------------------------------------------------------------------------------------------
# Strategies: a conv configuration whose dilated kernel fits the padded input
# ----------------------------------------------------------------------------------------------


@st.composite
def conv_case(draw, spatial: int = 2):
    groups = draw(st.integers(1, 3))
    c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    as_tuple = draw(st.booleans())
    dims = spatial if as_tuple else 1

    def per_dim(lo, hi):
        vals = tuple(draw(st.integers(lo, hi)) for _ in range(dims))
        return vals if as_tuple else vals * spatial

    k, s, p, d = per_dim(1, 3), per_dim(1, 3), per_dim(0, 2), per_dim(1, 2)
    size = tuple(draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi), 7)) for ki, pi, di in zip(k, p, d))
    arg = (lambda v: v) if as_tuple else (lambda v: v[0])
    return dict(
        N=draw(st.integers(1, 2)),
        batched=draw(st.booleans()),
        groups=groups,
        C_in=c_in_g * groups,
        C_out=c_out_g * groups,
        kernel=k,
        size=size,
        stride=arg(s),
        padding=arg(p),
        dilation=arg(d),
        dtype=draw(st.sampled_from(DTYPES)),
        noncontig=draw(st.booleans()),
        bias=draw(st.booleans()),
    )


# ----------------------------------------------------------------------------------------------
# conv2d / conv1d against the built-ins
# ----------------------------------------------------------------------------------------------


@given(case=conv_case(spatial=2))
def test_conv2d_matches_torch(device, case):
    c, dtype = case, case["dtype"]
    shape = ((c["N"],) if c["batched"] else ()) + (c["C_in"], *c["size"])
    x = make(shape, dtype, device, c["noncontig"])
    w = make((c["C_out"], c["C_in"] // c["groups"], *c["kernel"]), dtype, device, c["noncontig"])
    b = make((c["C_out"],), dtype, device) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    compare_with_grad(
        lambda x, w, b: conv.conv2d(x, w, b, **kw), lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b], dtype
    )


@given(case=conv_case(spatial=1))
def test_conv1d_matches_torch(device, case):
    c, dtype = case, case["dtype"]
    shape = ((c["N"],) if c["batched"] else ()) + (c["C_in"], *c["size"])
    x = make(shape, dtype, device, c["noncontig"])
    w = make((c["C_out"], c["C_in"] // c["groups"], *c["kernel"]), dtype, device, c["noncontig"])
    b = make((c["C_out"],), dtype, device) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    compare_with_grad(
        lambda x, w, b: conv.conv1d(x, w, b, **kw), lambda x, w, b: F.conv1d(x, w, b, **kw), [x, w, b], dtype
    )


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel", [(1, 1), (2, 3), (4, 2), (3, 3)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_string_padding_matches_torch(device, padding, kernel, dilation):
    x = make((2, 4, 8, 9), torch.float64, device)
    w = make((6, 2, *kernel), torch.float64, device)
    with warnings.catch_warnings():  # torch warns that an even kernel needs a padded copy
        warnings.simplefilter("ignore", UserWarning)
        ref = F.conv2d(x, w, padding=padding, dilation=dilation, groups=2)
    out = conv.conv2d(x, w, padding=padding, dilation=dilation, groups=2)
    torch.testing.assert_close(out, ref)
    if padding == "same":
        assert out.shape[-2:] == x.shape[-2:]
    x1, w1 = x[:, :, 0], w[:, :, 0]  # (N, C, L), (C_out, C_in/G, K)
    torch.testing.assert_close(
        conv.conv1d(x1, w1, padding=padding, dilation=dilation, groups=2),
        F.conv1d(x1, w1, padding=padding, dilation=dilation, groups=2),
    )


def test_conv2d_size_one_everything(device):
    """Batch 1, one channel, a 1x1 image and a 1x1 kernel: a product of two numbers."""
    x = torch.tensor([[[[3.0]]]], device=device)
    w = torch.tensor([[[[-2.0]]]], device=device)
    b = torch.tensor([0.5], device=device)
    out = conv.conv2d(x, w, b)
    torch.testing.assert_close(out, F.conv2d(x, w, b))
    assert out.item() == -5.5


@pytest.mark.parametrize("budget", [1, 2200, 10**9])
def test_conv2d_batch_chunks_match_torch(monkeypatch, budget):
    """On a CPU conv2d builds X_col a few images at a time; any chunking gives the same result."""
    monkeypatch.setattr(conv, "_CPU_X_COL_ELEMENTS", budget)  # 1: one image per GEMM; 2200: two
    x = make((5, 4, 6, 5), torch.float64, "cpu", noncontig=True)
    w = make((6, 2, 3, 3), torch.float64, "cpu")
    b = make((6,), torch.float64, "cpu")
    compare_with_grad(
        lambda x, w, b: conv.conv2d(x, w, b, padding=1, groups=2),
        lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2),
        [x, w, b],
        torch.float64,
    )


def test_conv2d_depthwise_matches_torch(device):
    """groups = C_in (depthwise) with a depth multiplier of 2."""
    x = make((2, 5, 9, 8), torch.float64, device, noncontig=True)
    w = make((10, 1, 3, 3), torch.float64, device)
    compare_with_grad(
        lambda x, w: conv.conv2d(x, w, padding=1, groups=5),
        lambda x, w: F.conv2d(x, w, padding=1, groups=5),
        [x, w],
        torch.float64,
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_conv2d_low_precision(device, dtype):
    """Half types where torch runs the op: compared with the float32 result of the same inputs."""
    x = make((2, 4, 6, 6), dtype, device)
    w = make((3, 4, 3, 3), dtype, device)
    try:
        ref = F.conv2d(x.float(), w.float(), padding=1)
        out = conv.conv2d(x, w, padding=1)
    except RuntimeError as err:  # pragma: no cover - depends on the backend's kernels
        pytest.skip(f"{dtype} matmul not supported on {device}: {err}")
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, atol=0.25, rtol=0.05)


def test_conv2d_module_loads_nn_conv2d(device):
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2).to(device)
    ours = conv.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2, device=device)
    assert ours.weight.shape == ref.weight.shape and ours.bias.shape == ref.bias.shape
    ours.load_state_dict(ref.state_dict())
    x = make((3, 4, 8, 7), torch.float32, device)
    torch.testing.assert_close(ours(x), ref(x), **tol(torch.float32))
    no_bias = conv.Conv2d(4, 6, 3, bias=False)
    assert no_bias.bias is None and set(no_bias.state_dict()) == {"weight"}


# ----------------------------------------------------------------------------------------------
# im2col / col2im against F.unfold / F.fold
# ----------------------------------------------------------------------------------------------


@given(case=conv_case(spatial=2))
def test_im2col_matches_unfold(device, case):
    c, dtype = case, case["dtype"]
    shape = ((c["N"],) if c["batched"] else ()) + (c["C_in"], *c["size"])
    x = make(shape, dtype, device, c["noncontig"])
    kw = dict(kernel_size=c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
    compare_with_grad(lambda x: conv.im2col(x, **kw), lambda x: F.unfold(x, **kw), [x], dtype)


@given(case=conv_case(spatial=2))
def test_col2im_matches_fold(device, case):
    c, dtype = case, case["dtype"]
    kw = dict(kernel_size=c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
    n_cols = F.unfold(torch.zeros(1, 1, *c["size"]), **kw).shape[-1]
    rows = c["C_in"] * c["kernel"][0] * c["kernel"][1]
    shape = ((c["N"],) if c["batched"] else ()) + (rows, n_cols)
    cols = make(shape, dtype, device, c["noncontig"])
    compare_with_grad(
        lambda y: conv.col2im(y, c["size"], **kw), lambda y: F.fold(y, c["size"], **kw), [cols], dtype
    )


@given(case=conv_case(spatial=2))
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), y> = <x, col2im(y)>: col2im is the transpose of the linear map im2col."""
    c = case
    kw = dict(kernel_size=c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
    x = make((c["N"], c["C_in"], *c["size"]), torch.float64, "cpu")
    cols = conv.im2col(x, **kw)
    y = torch.randn(cols.shape, dtype=torch.float64)
    torch.testing.assert_close((cols * y).sum(), (x * conv.col2im(y, c["size"], **kw)).sum())


def test_im2col_is_a_copy_not_a_view():
    """X_col owns its memory: the blow-up is real (and writing to it leaves the input alone)."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    cols = conv.im2col(x, 3)
    assert cols.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert cols.is_contiguous() and cols.numel() == 9 * 4
    torch.testing.assert_close(cols[0, :, 0], torch.tensor([0.0, 1, 2, 4, 5, 6, 8, 9, 10]))


# ----------------------------------------------------------------------------------------------
# Toeplitz (§3.1)
# ----------------------------------------------------------------------------------------------


def test_toeplitz_seed_example():
    """The 3 x 5 banded matrix of a 3-tap kernel on a length-5 input (§3.1)."""
    w0, w1, w2 = 2.0, 3.0, 5.0
    T = conv.toeplitz(torch.tensor([w0, w1, w2]), 5)
    expected = torch.tensor([[w0, w1, w2, 0, 0], [0, w0, w1, w2, 0], [0, 0, w0, w1, w2]])
    torch.testing.assert_close(T, expected)  # torch's cross-correlation: kernel not flipped
    # The textbook (flipped) convolution is the same matrix of the reversed kernel.
    flipped = conv.toeplitz(torch.tensor([w2, w1, w0]), 5)
    torch.testing.assert_close(flipped[0], torch.tensor([w2, w1, w0, 0, 0]))


@given(
    K=st.integers(1, 4),
    L=st.integers(1, 9),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    C_in=st.integers(1, 3),
    C_out=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES),
    single=st.booleans(),
)
def test_toeplitz_matches_conv1d(device, K, L, stride, padding, dilation, C_in, C_out, dtype, single):
    if dilation * (K - 1) + 1 > L + 2 * padding:
        L = dilation * (K - 1) + 1  # keep the kernel inside the padded input
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    if single:
        w, x = make((K,), dtype, device), make((L,), dtype, device)
        compare_with_grad(
            lambda w, x: conv.toeplitz(w, L, **kw) @ x,
            lambda w, x: F.conv1d(x.view(1, 1, L), w.view(1, 1, K), **kw).flatten(),
            [w, x],
            dtype,
        )
    else:
        w, x = make((C_out, C_in, K), dtype, device), make((C_in, L), dtype, device, noncontig=True)
        compare_with_grad(
            lambda w, x: conv.toeplitz(w, L, **kw) @ x.flatten(),
            lambda w, x: F.conv1d(x[None], w, **kw).flatten(),
            [w, x],
            dtype,
        )


def test_toeplitz_is_banded_and_sparse():
    """Row i holds the K taps starting at column i*stride; everything else is zero."""
    T = conv.toeplitz(torch.ones(3), 10, stride=2)
    assert T.shape == (4, 10)
    assert int((T != 0).sum()) == 4 * 3
    for i in range(4):
        assert torch.nonzero(T[i]).flatten().tolist() == [2 * i, 2 * i + 1, 2 * i + 2]


# ----------------------------------------------------------------------------------------------
# Depthwise-separable (§3.3)
# ----------------------------------------------------------------------------------------------


@given(
    C_in=st.integers(1, 4),
    M=st.integers(1, 2),
    C_out=st.integers(1, 4),
    K=st.integers(1, 3),
    H=st.integers(3, 6),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    bias=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    noncontig=st.booleans(),
)
def test_depthwise_separable_matches_torch(
    device, C_in, M, C_out, K, H, stride, padding, dilation, bias, dtype, noncontig
):
    H = max(H, dilation * (K - 1) + 1)
    x = make((2, C_in, H, H + 1), dtype, device, noncontig)
    dw = make((C_in * M, 1, K, K), dtype, device)
    pw = make((C_out, C_in * M, 1, 1), dtype, device)
    db = make((C_in * M,), dtype, device) if bias else None
    pb = make((C_out,), dtype, device) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation)

    def reference(x, dw, pw, db, pb):
        return F.conv2d(F.conv2d(x, dw, db, groups=C_in, **kw), pw, pb)

    compare_with_grad(
        lambda x, dw, pw, db, pb: conv.depthwise_separable_conv2d(x, dw, pw, db, pb, **kw),
        reference,
        [x, dw, pw, db, pb],
        dtype,
    )


@given(C_in=st.integers(1, 5), M=st.integers(1, 3), C_out=st.integers(1, 6), K=st.integers(1, 4))
def test_separable_weight_is_low_rank(C_in, M, C_out, K):
    """The dense equivalent weight reproduces the pair, and each input channel's slice has rank <= M."""
    dw = torch.randn(C_in * M, 1, K, K, dtype=torch.float64)
    pw = torch.randn(C_out, C_in * M, 1, 1, dtype=torch.float64)
    W = conv.depthwise_separable_weight(dw, pw, in_channels=C_in)  # (C_out, C_in, K, K)
    assert W.shape == (C_out, C_in, K, K)
    x = torch.randn(1, C_in, K + 2, K + 3, dtype=torch.float64)
    torch.testing.assert_close(
        conv.conv2d(x, W, padding=1), conv.depthwise_separable_conv2d(x, dw, pw, padding=1)
    )
    for c in range(C_in):
        assert torch.linalg.matrix_rank(W[:, c].reshape(C_out, K * K)) <= min(M, C_out, K * K)
    if M == 1:  # a generic dense weight's slice has full rank min(C_out, K^2); ours has rank 1
        generic = torch.randn(C_out, K * K, dtype=torch.float64)
        assert torch.linalg.matrix_rank(generic) == min(C_out, K * K)


# ----------------------------------------------------------------------------------------------
# gradcheck in float64
# ----------------------------------------------------------------------------------------------


def test_gradcheck(device):
    g = torch.Generator().manual_seed(0)

    def d(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device).requires_grad_()

    x, w, b = d(2, 4, 5, 6), d(6, 2, 2, 3), d(6)
    assert torch.autograd.gradcheck(
        lambda x, w, b: conv.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
        (x, w, b),
    )
    x1, w1 = d(2, 3, 7), d(2, 3, 3)
    assert torch.autograd.gradcheck(lambda x, w: conv.conv1d(x, w, stride=2, padding=2, dilation=2), (x1, w1))
    assert torch.autograd.gradcheck(lambda x: conv.im2col(x, (2, 3), 1, 1, (1, 2)), (x,))
    cols = d(1, 2 * 6, F.unfold(torch.zeros(1, 1, 5, 6), (2, 3), 1, 1, (1, 2)).shape[-1])
    assert torch.autograd.gradcheck(lambda y: conv.col2im(y, (5, 6), (2, 3), 1, 1, (1, 2)), (cols,))
    wt = d(2, 3, 3)
    assert torch.autograd.gradcheck(lambda w: conv.toeplitz(w, 6, stride=2, padding=1), (wt,))
    dw, pw = d(4, 1, 3, 3), d(3, 4, 1, 1)
    assert torch.autograd.gradcheck(
        lambda x, dw, pw: conv.depthwise_separable_conv2d(x, dw, pw, padding=1), (x, dw, pw)
    )


# ----------------------------------------------------------------------------------------------
# Counting: blow-up, parameters, FLOPs
# ----------------------------------------------------------------------------------------------


@given(case=conv_case(spatial=2))
def test_im2col_blowup_is_the_measured_ratio(case):
    c = case
    x = torch.zeros(c["N"], c["C_in"], *c["size"])
    kw = dict(kernel_size=c["kernel"], dilation=c["dilation"], padding=c["padding"], stride=c["stride"])
    measured = F.unfold(x, **kw).numel() / x.numel()
    assert conv.im2col_blowup(tuple(x.shape), **kw) == pytest.approx(measured)


def test_im2col_blowup_seed_exercise():
    """§3 exercise: input (1, 3, 8, 8), kernel (16, 3, 3, 3), stride 1, padding 1."""
    x = torch.randn(1, 3, 8, 8)
    cols = conv.im2col(x, 3, padding=1)
    assert tuple(cols.shape) == (1, 27, 64)  # X_col is 27 x 64 per sample
    assert conv.im2col_blowup(x.shape, 3, padding=1) == 9.0  # = K^2
    w = torch.randn(16, 3, 3, 3)
    assert conv.conv2d(x, w, padding=1).shape == (1, 16, 8, 8)


@pytest.mark.parametrize("K", [1, 3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_im2col_blowup_tends_to_k2_over_s2(K, stride):
    """Large images with 'same'-style padding: the ratio approaches K^2 / stride^2."""
    ratio = conv.im2col_blowup((1024, 1024), K, padding=K // 2, stride=stride)
    assert ratio == pytest.approx(K * K / stride**2, rel=0.01)


@given(
    C_in_g=st.integers(1, 8),
    C_out_g=st.integers(1, 8),
    groups=st.integers(1, 4),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    bias=st.booleans(),
)
def test_conv_parameter_count_matches_nn_conv2d(C_in_g, C_out_g, groups, kh, kw, bias):
    C_in, C_out = C_in_g * groups, C_out_g * groups
    layer = nn.Conv2d(C_in, C_out, (kh, kw), groups=groups, bias=bias, device="meta")
    expected = sum(p.numel() for p in layer.parameters())
    assert conv.conv_parameter_count(C_in, C_out, (kh, kw), groups=groups, bias=bias) == expected


@given(
    C_in=st.integers(1, 64),
    C_out=st.integers(1, 64),
    K=st.integers(1, 7),
    M=st.integers(1, 2),
    bias=st.booleans(),
)
def test_separable_parameter_count(C_in, C_out, K, M, bias):
    layers = [
        nn.Conv2d(C_in, C_in * M, K, groups=C_in, bias=bias, device="meta"),
        nn.Conv2d(C_in * M, C_out, 1, bias=bias, device="meta"),
    ]
    expected = sum(p.numel() for layer in layers for p in layer.parameters())
    assert conv.depthwise_separable_parameter_count(C_in, C_out, K, depth_multiplier=M, bias=bias) == expected
    if M == 1 and not bias:  # the MobileNet ratio 1/C_out + 1/K^2
        ratio = expected / conv.conv_parameter_count(C_in, C_out, K, bias=False)
        assert ratio == pytest.approx(1 / C_out + 1 / K**2)


@given(case=conv_case(spatial=2))
def test_conv_flops_match_flop_counter(case):
    c = case
    x = torch.zeros(c["N"], c["C_in"], *c["size"])
    w = torch.zeros(c["C_out"], c["C_in"] // c["groups"], *c["kernel"])
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
    with FlopCounterMode(display=False) as counter:
        F.conv2d(x, w, groups=c["groups"], **kw)
    assert conv.conv_flops(x.shape, w.shape, **kw) == counter.get_total_flops()


# ----------------------------------------------------------------------------------------------
# Errors: clear messages in torch's manner
# ----------------------------------------------------------------------------------------------

X = torch.randn(1, 4, 5, 5)
Wt = torch.randn(6, 4, 3, 3)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: conv.conv2d(X[0, 0], Wt),
            ValueError,
            r"conv2d: expected input to be 3-D or 4-D but got a 2-D",
        ),
        (lambda: conv.conv2d(X, Wt[0]), ValueError, r"conv2d: expected weight to be 4-D but got a 3-D"),
        (
            lambda: conv.conv2d(X, torch.randn(6, 3, 3, 3)),
            ValueError,
            r"conv2d: expected input of shape \(1, 4, 5, 5\) to have weight.shape\[1\] \* groups = "
            r"3 \* 1 = 3 channels but got 4",
        ),
        (
            lambda: conv.conv2d(X, torch.randn(5, 2, 3, 3), groups=2),
            ValueError,
            r"expected out_channels \(weight.shape\[0\] = 5\) to be divisible by groups = 2",
        ),
        (
            lambda: conv.conv2d(X, torch.randn(6, 4, 7, 7)),
            ValueError,
            r"conv2d: expected the \(dilated\) kernel \(7 x 7\) to fit in the padded input \(5 x 5\)",
        ),
        (lambda: conv.conv2d(X, Wt, dilation=3), ValueError, r"kernel \(7 x 7\) to fit in the padded input"),
        (
            lambda: conv.conv2d(X, Wt, stride=0),
            ValueError,
            r"conv2d: expected stride to be positive but got 0",
        ),
        (lambda: conv.conv2d(X, Wt, stride=(1, -1)), ValueError, r"expected stride to be positive"),
        (lambda: conv.conv2d(X, Wt, padding=-1), ValueError, r"expected padding to be non-negative"),
        (lambda: conv.conv2d(X, Wt, dilation=0), ValueError, r"expected dilation to be positive"),
        (
            lambda: conv.conv2d(X, Wt, stride=(1, 2, 3)),
            TypeError,
            r"expected stride to be an int or a tuple of 2",
        ),
        (
            lambda: conv.conv2d(X, Wt, stride=1.5),
            TypeError,
            r"expected stride to be an int or a tuple of 2 ints "
            r"but got float",
        ),
        (
            lambda: conv.conv2d(X, Wt, padding=True),
            TypeError,
            r"expected padding to be an int .* but got bool",
        ),
        (lambda: conv.conv2d(X, Wt, padding="full"), ValueError, r"expected padding to be 'valid', 'same'"),
        (
            lambda: conv.conv2d(X, Wt, padding="same", stride=2),
            ValueError,
            r"expected stride 1 with padding='same'",
        ),
        (
            lambda: conv.conv2d(X, Wt, torch.randn(5)),
            ValueError,
            r"expected bias of shape \(6,\) but got \(5,\)",
        ),
        (
            lambda: conv.conv2d(X, Wt.double()),
            TypeError,
            r"expected weight to have the dtype of input \(torch.float32\) but got torch.float64",
        ),
        (
            lambda: conv.conv2d(X.long(), Wt.long()),
            TypeError,
            r"expected input to have a floating-point dtype",
        ),
        (
            lambda: conv.conv2d(X.numpy(), Wt),
            TypeError,
            r"expected input to be a torch.Tensor but got ndarray",
        ),
        (lambda: conv.conv2d(X, Wt, groups=0), ValueError, r"conv2d: expected groups > 0 but got 0"),
        (lambda: conv.conv2d(X, Wt, groups=1.0), TypeError, r"expected groups to be an int but got float"),
        (lambda: conv.conv1d(X, Wt), ValueError, r"conv1d: expected input to be 2-D or 3-D but got a 4-D"),
        (
            lambda: conv.conv1d(X[0, :, 0], torch.randn(2, 4, 7)),
            ValueError,
            r"conv1d: expected the \(dilated\) kernel \(7\) to fit in the padded input \(5\)",
        ),
        (
            lambda: conv.conv1d(X[0, :, 0], torch.randn(2, 4, 3), stride=0),
            ValueError,
            r"conv1d: expected stride to be",
        ),
        (lambda: conv.im2col(X[0, 0], 3), ValueError, r"im2col: expected input to be 3-D or 4-D"),
        (lambda: conv.im2col(X, 6), ValueError, r"im2col: expected the \(dilated\) kernel \(6 x 6\)"),
        (lambda: conv.im2col(X, 0), ValueError, r"im2col: expected kernel_size to be positive"),
        (
            lambda: conv.col2im(torch.randn(1, 8, 9), (5, 5), 3),
            ValueError,
            r"col2im: expected size of dimension 1 of input to be divisible by kH\*kW = 9 but got 8",
        ),
        (
            lambda: conv.col2im(torch.randn(1, 9, 8), (5, 5), 3),
            ValueError,
            r"col2im: expected 9 columns \(the 3 x 3 sliding positions of output_size \(5, 5\)\)",
        ),
        (
            lambda: conv.col2im(torch.randn(9), (5, 5), 3),
            ValueError,
            r"col2im: expected input to be 2-D or 3-D",
        ),
        (
            lambda: conv.toeplitz(torch.randn(2, 3), 5),
            ValueError,
            r"toeplitz: expected weight to be 1-D or 3-D",
        ),
        (
            lambda: conv.toeplitz(torch.randn(6), 5),
            ValueError,
            r"toeplitz: expected the \(dilated\) kernel \(6\)",
        ),
        (
            lambda: conv.toeplitz(torch.randn(3), 5.0),
            TypeError,
            r"toeplitz: expected input_length to be an int",
        ),
        (
            lambda: conv.toeplitz(torch.randn(3), 5, stride=0),
            ValueError,
            r"toeplitz: expected stride to be "
            r"positive",
        ),
        (
            lambda: conv.toeplitz(torch.arange(3), 5),
            TypeError,
            r"toeplitz: expected weight to have a floating",
        ),
        (
            lambda: conv.depthwise_separable_conv2d(X, torch.randn(4, 2, 3, 3), torch.randn(6, 4, 1, 1)),
            ValueError,
            r"expected depthwise_weight of shape \(C_in \* M, 1, kH, kW\) but got \(4, 2, 3, 3\)",
        ),
        (
            lambda: conv.depthwise_separable_conv2d(X, torch.randn(4, 1, 3, 3), torch.randn(6, 5, 1, 1)),
            ValueError,
            r"expected pointwise_weight of shape \(C_out, 4, 1, 1\) but got \(6, 5, 1, 1\)",
        ),
        (
            lambda: conv.depthwise_separable_conv2d(X, torch.randn(6, 1, 3, 3), torch.randn(6, 6, 1, 1)),
            ValueError,
            r"depthwise_separable_conv2d: expected depthwise_weight.shape\[0\] to be a multiple "
            r"\(C_in \* M\) of the input's 4 channels but got 6",
        ),
        (
            lambda: conv.depthwise_separable_weight(
                torch.randn(6, 1, 3, 3), torch.randn(2, 6, 1, 1), in_channels=4
            ),
            ValueError,
            r"expected depthwise_weight.shape\[0\] \(6\) to be a multiple of in_channels",
        ),
        (
            lambda: conv.im2col_blowup((5,), 3),
            ValueError,
            r"im2col_blowup: expected input_size \(N, C, H, W\)",
        ),
        (
            lambda: conv.im2col_blowup((8, 8), 9),
            ValueError,
            r"im2col_blowup: expected the \(dilated\) kernel",
        ),
        (
            lambda: conv.conv_parameter_count(4, 6, 3, groups=4),
            ValueError,
            r"expected in_channels \(4\) and out_channels \(6\) divisible by groups but got groups = 4",
        ),
        (lambda: conv.conv_parameter_count(0, 6, 3), ValueError, r"expected in_channels to be positive"),
        (lambda: conv.conv_flops((1, 4, 5), (6, 4, 3, 3)), ValueError, r"conv_flops: expected input_size"),
        (lambda: conv.Conv2d(4, 6, 3, groups=4), ValueError, r"divisible by groups"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
