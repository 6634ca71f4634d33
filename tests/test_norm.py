"""la_dl.norm against F.batch_norm, F.layer_norm, F.rms_norm and the nn modules (§6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from la_dl.norm import (
    BatchNorm,
    LayerNorm,
    RMSNorm,
    batch_mean_error,
    batch_norm,
    count_flops,
    digits_activations,
    layer_norm,
    norm_flops,
    rms_norm,
    standardise,
)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# Half-precision outputs are rounded once from float32 on both sides; allow a couple of ulps.
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-5, atol=2e-5),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
}
GRAD_TOL = {
    torch.float64: dict(rtol=1e-9, atol=1e-9),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float16: dict(rtol=1e-2, atol=1e-2),
    torch.bfloat16: dict(rtol=5e-2, atol=5e-2),
}

dims = st.integers(1, 5)


def _tensor(shape, dtype, device, seed, contiguous=True, constant_rows=False):
    """A random tensor; optionally a transposed (non-contiguous) view, optionally constant rows."""
    g = torch.Generator().manual_seed(seed)
    if contiguous or len(shape) < 2:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5
    else:  # same values layout-wise, but a view whose last two dims are swapped
        swapped = (*shape[:-2], shape[-1], shape[-2])
        x = (torch.randn(swapped, generator=g, dtype=torch.float64) * 2 + 0.5).transpose(-1, -2)
    if constant_rows:
        x = x[..., :1].expand(shape).contiguous() if contiguous else x[..., :1].expand(shape)
    return x.to(device=device, dtype=dtype)


def _input_grad_tol(x, reduce_dims, upstream, dtype):
    """Tolerance of ∂L/∂x for a standardising norm.

    The input gradient subtracts means of g and of g·x̂ over the normalised values, so the
    rounding of g is amplified by 1/σ (large when the values nearly coincide, e.g. two values).
    """
    inv_std = (x.double().var(reduce_dims, correction=0) + 1e-5).rsqrt().max().item()
    tol = dict(GRAD_TOL[dtype])
    tol["atol"] *= max(1.0, upstream.abs().max().item()) * max(1.0, inv_std)
    return tol


def _grads(fn, inputs, upstream):
    inputs = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    out = fn(*inputs)
    out.backward(upstream)
    return out, [t.grad if t is not None else None for t in inputs]


# --------------------------------------------------------------------------- layer_norm


@given(
    lead=st.lists(dims, max_size=2),
    norm=st.lists(dims, min_size=1, max_size=2),
    dtype=st.sampled_from(DTYPES),
    affine=st.booleans(),
    contiguous=st.booleans(),
    constant=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_matches_torch(device, lead, norm, dtype, affine, contiguous, constant, seed):
    shape = (*lead, *norm)
    x = _tensor(shape, dtype, device, seed, contiguous, constant)
    constant = constant or math.prod(norm) == 1  # a row of one value is constant too
    w = _tensor(norm, dtype, device, seed + 1) if affine else None
    b = _tensor(norm, dtype, device, seed + 2) if affine else None
    upstream = _tensor(shape, dtype, device, seed + 3)

    ours, g_ours = _grads(lambda *t: layer_norm(t[0], norm, *t[1:]), [x, w, b], upstream)
    ref, g_ref = _grads(lambda *t: F.layer_norm(t[0], norm, *t[1:]), [x, w, b], upstream)
    assert ours.dtype == dtype and ours.shape == x.shape
    tol = dict(TOL[dtype])
    if constant:
        # σ² = 0: the rounding of μ (about one ulp of x) is multiplied by 1/sqrt(ε) ≈ 316.
        ulp = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).eps
        tol["atol"] = max(tol["atol"], 4 * ulp * x.abs().max().item() / math.sqrt(1e-5))
    torch.testing.assert_close(ours, ref, **tol)
    grad_x, grad_w, grad_b = g_ours
    ref_x, ref_w, ref_b = g_ref
    if not constant:  # a constant row's input gradient is (1/sqrt(ε))-amplified rounding
        reduce_dims = tuple(range(-len(norm), 0))
        torch.testing.assert_close(grad_x, ref_x, **_input_grad_tol(x, reduce_dims, upstream, dtype))
    if affine:
        torch.testing.assert_close(grad_b, ref_b, **GRAD_TOL[dtype])
        w_tol = dict(GRAD_TOL[dtype])
        if constant:  # ∂L/∂γ = Σ_rows g·x̂ carries x̂'s amplified rounding, once per row
            rows = x.numel() // math.prod(norm)
            w_tol["atol"] = max(w_tol["atol"], tol["atol"] * rows * upstream.abs().max().item())
        torch.testing.assert_close(grad_w, ref_w, **w_tol)


def test_layer_norm_constant_row_gives_bias(device):
    x = torch.full((3, 7), 2.5, device=device)
    b = torch.arange(7.0, device=device)
    torch.testing.assert_close(layer_norm(x, 7, torch.ones(7, device=device), b), b.expand(3, 7))


@given(lead=st.lists(dims, max_size=2), d=dims, seed=st.integers(0, 2**16))
def test_layer_norm_gradcheck(lead, d, seed):
    x = _tensor((*lead, d), torch.float64, "cpu", seed).requires_grad_()
    w = _tensor((d,), torch.float64, "cpu", seed + 1).requires_grad_()
    b = _tensor((d,), torch.float64, "cpu", seed + 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: layer_norm(x, [d], w, b), (x, w, b))


def test_layer_norm_rows_are_standardised(device):
    x = torch.randn(64, 32, device=device, dtype=torch.float64) * 5 + 3
    y = layer_norm(x, [32], eps=0.0)
    torch.testing.assert_close(y.mean(-1), torch.zeros(64, device=device, dtype=torch.float64))
    torch.testing.assert_close(y.var(-1, correction=0), torch.ones(64, device=device, dtype=torch.float64))


# --------------------------------------------------------------------------- rms_norm


@given(
    lead=st.lists(dims, max_size=2),
    norm=st.lists(dims, min_size=1, max_size=2),
    dtype=st.sampled_from(DTYPES),
    affine=st.booleans(),
    eps=st.sampled_from([None, 1e-6, 1e-2]),
    contiguous=st.booleans(),
    constant=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_rms_norm_matches_torch(device, lead, norm, dtype, affine, eps, contiguous, constant, seed):
    shape = (*lead, *norm)
    x = _tensor(shape, dtype, device, seed, contiguous, constant)
    w = _tensor(norm, dtype, device, seed + 1) if affine else None
    upstream = _tensor(shape, dtype, device, seed + 3)

    ours, g_ours = _grads(lambda x, w: rms_norm(x, norm, w, eps), [x, w], upstream)
    ref, g_ref = _grads(lambda x, w: F.rms_norm(x, norm, w, eps), [x, w], upstream)
    if device.type == "cpu":
        # Same order of operations as the built-in: bit for bit, half precision included.
        assert torch.equal(ours, ref)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    for a, r in zip(g_ours, g_ref):
        if a is not None:
            torch.testing.assert_close(a, r, **GRAD_TOL[dtype])


@given(lead=st.lists(dims, max_size=2), d=dims, seed=st.integers(0, 2**16))
def test_rms_norm_gradcheck(lead, d, seed):
    x = _tensor((*lead, d), torch.float64, "cpu", seed).requires_grad_()
    w = _tensor((d,), torch.float64, "cpu", seed + 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: rms_norm(x, [d], w, 1e-6), (x, w))


def test_rms_norm_rows_have_unit_rms_and_keep_their_mean_sign(device):
    x = torch.randn(50, 16, device=device, dtype=torch.float64) + 4.0
    y = rms_norm(x, 16, eps=0.0)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(50, device=device, dtype=torch.float64))
    assert (y.mean(-1) > 0).all()  # no mean subtraction: a shifted row stays shifted


# --------------------------------------------------------------------------- batch_norm


@given(
    n=dims,
    c=dims,
    spatial=st.lists(st.integers(1, 4), max_size=2),
    dtype=st.sampled_from(DTYPES),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.sampled_from([0.1, 0.5, 1.0]),
    contiguous=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_matches_torch(
    device, n, c, spatial, dtype, training, affine, momentum, contiguous, seed
):
    shape = (n, c, *spatial)
    if training and math.prod(shape) // c == 1:
        n += 1  # torch refuses one value per channel in training (tested below)
        shape = (n, c, *spatial)
    x = _tensor(shape, dtype, device, seed, contiguous)
    # Running statistics and affine parameters stay float32 for half inputs, as in AMP.
    pdtype = torch.float64 if dtype == torch.float64 else torch.float32
    w = _tensor((c,), pdtype, device, seed + 1) if affine else None
    b = _tensor((c,), pdtype, device, seed + 2) if affine else None
    rm_ours = _tensor((c,), pdtype, device, seed + 4)
    rv_ours = _tensor((c,), pdtype, device, seed + 5).abs() + 0.5
    rm_ref, rv_ref = rm_ours.clone(), rv_ours.clone()
    upstream = _tensor(shape, dtype, device, seed + 3)

    ours, g_ours = _grads(
        lambda x, w, b: batch_norm(x, rm_ours, rv_ours, w, b, training, momentum), [x, w, b], upstream
    )
    ref, g_ref = _grads(
        lambda x, w, b: F.batch_norm(x, rm_ref, rv_ref, w, b, training, momentum), [x, w, b], upstream
    )
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    torch.testing.assert_close(rm_ours, rm_ref, **TOL[torch.float32])
    torch.testing.assert_close(rv_ours, rv_ref, **TOL[torch.float32])
    grad_x, grad_w, grad_b = g_ours
    ref_x, ref_w, ref_b = g_ref
    if training:
        reduce_dims = (0, *range(2, x.ndim))
        torch.testing.assert_close(grad_x, ref_x, **_input_grad_tol(x, reduce_dims, upstream, dtype))
    else:  # running statistics: ∂L/∂x = g·γ/sqrt(running_var + ε), no cancellation
        torch.testing.assert_close(grad_x, ref_x, **GRAD_TOL[dtype])
    if affine:
        torch.testing.assert_close(grad_w, ref_w, **GRAD_TOL[dtype])
        torch.testing.assert_close(grad_b, ref_b, **GRAD_TOL[dtype])


def test_batch_norm_running_stats_use_unbiased_variance(device):
    x = torch.tensor([[1.0], [3.0]], device=device)  # mean 2, biased var 1, unbiased var 2
    rm, rv = torch.zeros(1, device=device), torch.ones(1, device=device)
    batch_norm(x, rm, rv, training=True, momentum=1.0)
    assert rm.item() == 2.0 and rv.item() == 2.0


@given(n=st.integers(2, 6), c=dims, seed=st.integers(0, 2**16))
def test_batch_norm_gradcheck(n, c, seed):
    x = _tensor((n, c, 3), torch.float64, "cpu", seed).requires_grad_()
    w = _tensor((c,), torch.float64, "cpu", seed + 1).requires_grad_()
    b = _tensor((c,), torch.float64, "cpu", seed + 2).requires_grad_()
    for training in (True, False):
        rm, rv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
        assert torch.autograd.gradcheck(
            lambda x, w, b, t=training, rm=rm, rv=rv: batch_norm(x, rm.clone(), rv.clone(), w, b, t),
            (x, w, b),
        )


def test_batch_norm_columns_are_standardised(device):
    x = torch.randn(256, 8, device=device, dtype=torch.float64) * torch.arange(1.0, 9.0, device=device)
    y = batch_norm(x, None, None, training=True, eps=0.0)
    torch.testing.assert_close(y.mean(0), torch.zeros(8, device=device, dtype=torch.float64))
    torch.testing.assert_close(y.var(0, correction=0), torch.ones(8, device=device, dtype=torch.float64))


@pytest.mark.parametrize("shape, dims, other", [((64, 8), 0, "batch"), ((64, 8), 1, "layer"),
                                                 ((4, 3, 5, 5), (0, 2, 3), "batch"),
                                                 ((4, 3, 5, 5), (1, 2, 3), "layer")])
def test_standardise_is_batch_norm_or_layer_norm_by_axis(device, shape, dims, other):
    x = torch.randn(*shape, device=device, dtype=torch.float64).mT * 3 + 1  # non-contiguous
    x = x.mT
    expected = (batch_norm(x, None, None, training=True) if other == "batch"
                else layer_norm(x, x.shape[1:]))
    torch.testing.assert_close(standardise(x, dims), expected)
    assert standardise(x, dims).shape == x.shape


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize(
    "torch_cls, shape",
    [(nn.BatchNorm1d, (6, 4)), (nn.BatchNorm1d, (5, 4, 3)), (nn.BatchNorm2d, (3, 4, 2, 5))],
)
def test_batch_norm_module_loads_torch_state(device, torch_cls, shape, momentum):
    ref = torch_cls(4, momentum=momentum).to(device)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
    ours = BatchNorm(4, momentum=momentum).to(device)
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # training steps update the running statistics identically
        x = torch.randn(shape, generator=g).to(device) * 3 + 1
        torch.testing.assert_close(ours(x), ref(x))
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_batch_norm_module_without_running_stats(device):
    ref = nn.BatchNorm1d(3, track_running_stats=False).to(device).eval()
    ours = BatchNorm(3, track_running_stats=False).to(device).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(7, 3, device=device)
    torch.testing.assert_close(ours(x), ref(x))


def test_layer_and_rms_norm_modules_load_torch_state(device):
    x = torch.randn(2, 5, 3, 4, device=device)
    for ref, ours in [
        (nn.LayerNorm([3, 4]), LayerNorm([3, 4])),
        (nn.LayerNorm(4, bias=False), LayerNorm(4, bias=False)),
        (nn.LayerNorm(4, elementwise_affine=False), LayerNorm(4, elementwise_affine=False)),
        (nn.RMSNorm([3, 4], eps=1e-6), RMSNorm([3, 4], eps=1e-6)),
        (nn.RMSNorm(4), RMSNorm(4)),
    ]:
        ref.to(device)
        with torch.no_grad():
            for p in ref.parameters():
                p.uniform_(-2, 2)
        ours.to(device).load_state_dict(ref.state_dict())
        torch.testing.assert_close(ours(x), ref(x))


# --------------------------------------------------------------------------- FLOPs, experiment


@pytest.mark.parametrize("d", [1, 7, 64])
def test_flop_counts(d):
    x, w, b = torch.randn(5, d), torch.randn(d), torch.randn(d)
    rms = sum(norm_flops("rms", d).values())
    layer = sum(norm_flops("layer", d).values())
    assert rms == 4 * d + 2 and layer == 7 * d + 2
    assert sum(norm_flops("layer", d, elementwise_affine=False).values()) == 5 * d + 2
    assert count_flops(rms_norm, x, [d], w) == 5 * rms
    # la_dl.layer_norm follows torch's kernel order: one extra pass plus three per-row ops.
    assert count_flops(layer_norm, x, [d], w, b) == 5 * (layer + d + 3)
    assert count_flops(rms_norm, x.half(), [d], w.half()) == 5 * rms  # casts are free


def test_batch_mean_error_falls_like_inverse_sqrt_batch():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(4000, 16, generator=g, dtype=torch.float64) * 3 + 1
    sizes = [4, 16, 64, 256]
    err = batch_mean_error(acts, sizes, n_trials=200, generator=g)
    assert err.shape == (4,) and (err[1:] < err[:-1]).all()
    logs = torch.log(torch.tensor(sizes, dtype=torch.float64))
    fit = torch.linalg.lstsq(torch.stack([logs, torch.ones(4, dtype=torch.float64)], 1), err.log()[:, None])
    assert abs(fit.solution[0, 0].item() + 0.5) < 0.05
    # Without replacement from a finite population: 1/sqrt(B) up to the finite-population factor.
    expected = torch.tensor([math.sqrt((1 - b / 4000) / b) for b in sizes], dtype=torch.float64)
    torch.testing.assert_close(err, expected, rtol=0.1, atol=0)


# --------------------------------------------------------------------------- errors


def test_errors():
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="layer_norm: expected input to be a torch.Tensor but got list"):
        layer_norm([[1.0]], [1])
    with pytest.raises(TypeError, match="rms_norm: expected input to have a floating-point dtype"):
        rms_norm(torch.ones(2, 3, dtype=torch.long), [3])
    with pytest.raises(ValueError, match=r"layer_norm: expected input with shape \[\*, 4\] .* got \[4, 3\]"):
        layer_norm(x, [4])
    with pytest.raises(ValueError, match=r"rms_norm: expected input with shape \[\*, 2, 4, 3\]"):
        rms_norm(x, [2, 4, 3])
    with pytest.raises(ValueError, match="layer_norm: expected normalized_shape to be a non-empty"):
        layer_norm(x, [])
    with pytest.raises(ValueError, match=r"layer_norm: expected weight of shape \(3,\) but got \(4,\)"):
        layer_norm(x, [3], torch.ones(4))
    with pytest.raises(TypeError, match="rms_norm: expected weight to be a torch.Tensor"):
        rms_norm(x, [3], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel when training"):
        batch_norm(torch.randn(1, 3), torch.zeros(3), torch.ones(3), training=True)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        BatchNorm(3).train()(torch.randn(1, 3, 1))
    with pytest.raises(ValueError, match=r"batch_norm: expected input of shape \(N, C\)"):
        batch_norm(torch.randn(3), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected running_mean of shape \(3,\) but got \(4,\)"):
        batch_norm(x, torch.zeros(4), torch.ones(4))
    with pytest.raises(ValueError, match="batch_norm: expected running_mean and running_var in evaluation"):
        batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="batch_norm: expected running_mean and running_var both"):
        batch_norm(x, torch.zeros(3), None, training=True)
    with pytest.raises(TypeError, match="standardise: expected input to have a floating-point dtype"):
        standardise(torch.ones(2, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="standardise: expected dim to be an int or a non-empty"):
        standardise(x, ())
    with pytest.raises(ValueError, match=r"standardise: expected dims in \[-2, 2\) but got 2"):
        standardise(x, 2)
    with pytest.raises(ValueError, match="norm_flops: expected kind 'layer' or 'rms' but got 'batch'"):
        norm_flops("batch", 8)
    with pytest.raises(ValueError, match="norm_flops: expected d > 0 but got 0"):
        norm_flops("rms", 0)
    with pytest.raises(ValueError, match=r"batch_mean_error: expected activations of shape \(N, C\)"):
        batch_mean_error(torch.randn(5), [2])
    with pytest.raises(ValueError, match="batch_mean_error: expected batch sizes <= N = 5 but got 6"):
        batch_mean_error(torch.randn(5, 2), [6])


def test_batch_norm_allows_batch_of_one_in_eval_and_with_spatial_dims():
    # One sample is fine when each channel still has several values, or in evaluation.
    x = torch.randn(1, 3, 4)
    torch.testing.assert_close(
        batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True)
    )
    x = torch.randn(1, 3)
    torch.testing.assert_close(
        batch_norm(x, torch.zeros(3), torch.ones(3)), F.batch_norm(x, torch.zeros(3), torch.ones(3))
    )


@pytest.mark.parametrize("fn", [layer_norm, rms_norm])
def test_weight_on_other_device_is_rejected(fn):
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    with pytest.raises(ValueError, match="expected weight on the device of input"):
        fn(torch.randn(2, 3), [3], torch.ones(3, device="cuda"))


def test_digits_activations():
    state = torch.random.get_rng_state()
    h = digits_activations(16, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched
    assert h.shape == (1797, 16) and h.dtype == torch.float32
    assert torch.equal(h, digits_activations(16, seed=3))
    relu = digits_activations(16, seed=3, relu=True)
    assert torch.equal(relu, h.clamp_min(0))
    # Features have their own offsets: the column means spread far more than the row means.
    assert h.mean(0).std() > 2 * h.mean(1).std()
