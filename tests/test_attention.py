"""la_dl.attention against F.scaled_dot_product_attention and nn.MultiheadAttention (§4)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from la_dl.attention import (
    MultiHeadAttention,
    attention_steps,
    digits_lookup,
    dot_product_variance,
    scaled_dot_product_attention,
    score_matrix_bytes,
    softmax_saturation,
    tiled_attention,
)

# The `device` fixture is parametrised per test, not per example: that is what we want.
HYP = settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ]
)
TOL = {
    torch.float64: {"atol": 1e-10, "rtol": 1e-8},
    torch.float32: {"atol": 2e-5, "rtol": 2e-4},
}


def _randn(shape, dtype, device, gen, contiguous=True):
    """Standard normal draws; non-contiguous = a transposed view of the last two dims."""
    if contiguous or len(shape) < 2:
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
    else:
        t = torch.randn((*shape[:-2], shape[-1], shape[-2]), generator=gen, dtype=torch.float64)
        t = t.transpose(-2, -1)
    return t.to(device=device, dtype=dtype)


@st.composite
def attention_problems(draw, masks=True):
    """Shapes (..., L, E), (..., S, E), (..., S, Ev) with 0-2 batch dims and a mask kind."""
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    L, S = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    E, Ev = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    mask = draw(st.sampled_from(["none", "bool", "float", "causal"] if masks else ["none", "causal"]))
    mask_shape = draw(st.sampled_from([(L, S), (*batch, L, S), (1, L, S)]))
    if len(mask_shape) > len(batch) + 2:
        mask_shape = (L, S)
    scale = draw(st.sampled_from([None, 0.3, 1.0, 2.5]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    contiguous = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return batch, L, S, E, Ev, mask, mask_shape, scale, dtype, contiguous, seed


def _make(problem, device, requires_grad=True):
    batch, L, S, E, Ev, mask, mask_shape, scale, dtype, contiguous, seed = problem
    gen = torch.Generator().manual_seed(seed)
    q = _randn((*batch, L, E), dtype, device, gen, contiguous)
    k = _randn((*batch, S, E), dtype, device, gen, contiguous)
    v = _randn((*batch, S, Ev), dtype, device, gen, contiguous)
    attn_mask = None
    if mask == "bool":  # random pattern: some rows may be fully masked
        attn_mask = (torch.rand(mask_shape, generator=gen) < 0.7).to(device)
    elif mask == "float":
        attn_mask = torch.randn(mask_shape, generator=gen, dtype=torch.float64)
        attn_mask = attn_mask.masked_fill(torch.rand(mask_shape, generator=gen) < 0.2, -math.inf)
        attn_mask = attn_mask.to(device=device, dtype=dtype)
    tensors = [t.detach().requires_grad_(requires_grad) for t in (q, k, v)]
    return tensors, {"attn_mask": attn_mask, "is_causal": mask == "causal", "scale": scale}


def _outputs_and_grads(fn, tensors, kwargs, seed=0):
    out = fn(*tensors, **kwargs)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    grads = torch.autograd.grad(out, tensors, grad_out.to(out.device))
    return out, grads


def _assert_matches_builtin(fn, problem, device, **extra):
    tensors, kwargs = _make(problem, device)
    ref_tensors = [t.detach().clone().requires_grad_() for t in tensors]
    ours = dict(kwargs)
    if fn is tiled_attention:  # tiled_attention takes no attn_mask (only is_causal)
        assert ours.pop("attn_mask") is None
    out, grads = _outputs_and_grads(lambda *a, **k: fn(*a, **ours, **extra), tensors, kwargs)
    ref, ref_grads = _outputs_and_grads(F.scaled_dot_product_attention, ref_tensors, kwargs)
    tol = TOL[out.dtype]
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, **tol)
    for g, r, name in zip(grads, ref_grads, "qkv"):
        torch.testing.assert_close(g, r, **tol, msg=lambda m, name=name: f"grad {name}: {m}")
        assert torch.isfinite(g).all()


# ---------------------------------------------------------------------------------------
# Outputs and gradients equal the built-in
# ---------------------------------------------------------------------------------------


@HYP
@given(problem=attention_problems())
def test_sdpa_matches_builtin(problem, device):
    _assert_matches_builtin(scaled_dot_product_attention, problem, device)


@HYP
@given(problem=attention_problems(masks=False), block_size=st.integers(1, 10))
def test_tiled_matches_builtin_for_every_block_size(problem, block_size, device):
    # block sizes 1..10 on lengths 1..9: dividing, not dividing, larger than the sequence
    _assert_matches_builtin(tiled_attention, problem, device, block_size=block_size)


@HYP
@given(problem=attention_problems())
def test_steps_are_the_four_panels(problem, device):
    (q, k, v), kwargs = _make(problem, device, requires_grad=False)
    steps = attention_steps(q, k, v, **kwargs)
    scale = kwargs["scale"] if kwargs["scale"] is not None else 1 / math.sqrt(q.shape[-1])
    tol = TOL[q.dtype]
    torch.testing.assert_close(steps.scores, torch.einsum("...le,...se->...ls", q, k), **tol)
    visible = steps.scaled > -math.inf
    torch.testing.assert_close(steps.scaled[visible], (steps.scores * scale)[visible]
                               + (kwargs["attn_mask"].expand_as(visible)[visible]
                                  if kwargs["attn_mask"] is not None
                                  and kwargs["attn_mask"].dtype != torch.bool else 0), **tol)
    # weights: a probability distribution on each row (all zeros on a fully masked row)
    assert (steps.weights >= 0).all()
    row_sums = steps.weights.sum(-1)
    dead = (~visible).all(-1)
    torch.testing.assert_close(row_sums, (~dead).to(row_sums.dtype), **tol)
    assert (steps.weights[~visible] == 0).all()
    torch.testing.assert_close(steps.output, F.scaled_dot_product_attention(q, k, v, **kwargs), **tol)


def test_causal_mask_is_top_left_aligned(device):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, n, 4, generator=gen).to(device) for n in (3, 5, 5))
    steps = attention_steps(q, k, v, is_causal=True)
    allowed = torch.ones(3, 5, dtype=torch.bool, device=device).tril()
    assert ((steps.weights > 0) == allowed).all()
    torch.testing.assert_close(tiled_attention(q, k, v, block_size=2, is_causal=True),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))


# ---------------------------------------------------------------------------------------
# gradcheck in float64
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_gradcheck_sdpa(mask, device):
    problem = ((2,), 4, 5, 3, 2, mask, (4, 5), None, torch.float64, False, 7)
    tensors, kwargs = _make(problem, device)
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, **kwargs),
                                    tensors)


@pytest.mark.parametrize("is_causal", [False, True])
def test_gradcheck_tiled(is_causal, device):
    problem = ((2,), 5, 7, 3, 2, "none", (5, 7), 0.7, torch.float64, False, 3)
    tensors, _ = _make(problem, device)
    assert torch.autograd.gradcheck(
        lambda q, k, v: tiled_attention(q, k, v, block_size=3, is_causal=is_causal), tensors
    )


def test_gradcheck_steps(device):
    problem = ((), 3, 4, 2, 2, "none", (3, 4), None, torch.float64, True, 11)
    tensors, kwargs = _make(problem, device)
    # a finite additive mask: a -inf entry in `scaled` has no finite-difference derivative
    kwargs["attn_mask"] = torch.randn(3, 4, dtype=torch.float64, device=device)
    for i in range(4):
        assert torch.autograd.gradcheck(lambda q, k, v, i=i: attention_steps(q, k, v, **kwargs)[i],
                                        tensors)


# ---------------------------------------------------------------------------------------
# Edge cases: masked rows, huge logits, half precision, dropout
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_gives_zeros_not_nan(kind, device):
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, 4, 5, generator=gen, dtype=torch.float64).to(device)
               .requires_grad_() for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool, device=device)
    mask[2] = False
    if kind == "float":
        mask = torch.zeros(4, 4, dtype=torch.float64, device=device).masked_fill(~mask, -math.inf)
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out[:, 2] == 0).all() and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[:, 2] == 0).all()
    assert torch.isfinite(k.grad).all() and torch.isfinite(v.grad).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, tiled_attention])
def test_stable_for_huge_logits(fn, device):
    # scores of order 1e6: a naive exp overflows; subtracting the row max does not
    gen = torch.Generator().manual_seed(2)
    q = (1e3 * torch.randn(2, 6, 8, generator=gen)).to(device)
    k = (1e3 * torch.randn(2, 6, 8, generator=gen)).to(device)
    v = torch.randn(2, 6, 3, generator=gen).to(device)
    out = fn(q, k, v)
    assert torch.isfinite(out).all()
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fn", [scaled_dot_product_attention, tiled_attention])
def test_half_precision_accumulates_in_float32(fn, dtype, device):
    gen = torch.Generator().manual_seed(3)
    # long rows of near-equal scores: accumulating in half precision would lose digits
    q, k, v = (torch.randn(2, n, 16, generator=gen).to(device, dtype) for n in (8, 300, 300))
    out = fn(q, k, v)
    assert out.dtype == dtype
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    eps = torch.finfo(dtype).eps
    # within a few output roundings of the float64 result
    torch.testing.assert_close(out.double(), exact, atol=4 * eps, rtol=4 * eps)


def test_dropout(device):
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 5, 4, generator=gen).to(device) for _ in range(3))
    assert (scaled_dot_product_attention(q, k, v, dropout_p=1.0) == 0).all()
    torch.manual_seed(0)
    draws = torch.stack([scaled_dot_product_attention(q, k, v, dropout_p=0.5) for _ in range(4000)])
    # inverted dropout is unbiased: the mean over many draws approaches the exact output
    torch.testing.assert_close(draws.mean(0), scaled_dot_product_attention(q, k, v),
                               atol=0.05, rtol=0.0)
    assert (draws.std(0) > 0).all()


# ---------------------------------------------------------------------------------------
# MultiHeadAttention loads nn.MultiheadAttention
# ---------------------------------------------------------------------------------------


@HYP
@given(
    N=st.integers(1, 3), L=st.integers(1, 6), S=st.integers(1, 6),
    heads=st.sampled_from([1, 2, 4]), head_dim=st.integers(1, 4),
    batch_first=st.booleans(), bias=st.booleans(), masks=st.sampled_from(["none", "attn", "both"]),
    need_weights=st.booleans(), average=st.booleans(), seed=st.integers(0, 2**16),
)
def test_mha_matches_torch(N, L, S, heads, head_dim, batch_first, bias, masks, need_weights,
                           average, seed, device):
    E = heads * head_dim
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, heads, bias=bias, batch_first=batch_first,
                                dtype=torch.float64).to(device)
    if bias:  # torch starts biases at zero; make them matter
        with torch.no_grad():
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
    ours = MultiHeadAttention(E, heads, bias=bias, batch_first=batch_first,
                              dtype=torch.float64).to(device)
    ours.load_state_dict(ref.state_dict())
    gen = torch.Generator().manual_seed(seed)
    shape = (lambda n: (N, n, E)) if batch_first else (lambda n: (n, N, E))
    query = torch.randn(shape(L), generator=gen, dtype=torch.float64).to(device)
    memory = torch.randn(shape(S), generator=gen, dtype=torch.float64).to(device)  # cross-attn
    kwargs = {}
    if masks in ("attn", "both"):
        kwargs["attn_mask"] = torch.rand(L, S, generator=gen).to(device) < 0.3  # True = blocked
        kwargs["attn_mask"][:, 0] = False  # keep one key per row (torch gives NaN otherwise)
    if masks == "both":
        kwargs["key_padding_mask"] = torch.zeros(N, S, dtype=torch.bool, device=device)
        kwargs["key_padding_mask"][:, S - 1] = S > 1
    kwargs.update(need_weights=need_weights, average_attn_weights=average)
    out, w = ours(query, memory, memory, **kwargs)
    ref_out, ref_w = ref(query, memory, memory, **kwargs)
    torch.testing.assert_close(out, ref_out, **TOL[torch.float64])
    if need_weights:
        torch.testing.assert_close(w, ref_w, **TOL[torch.float64])
    else:
        assert w is None and ref_w is None
    out.sum().backward()
    ref_out.sum().backward()
    for (name, p), (_, r) in zip(ours.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, r.grad, **TOL[torch.float64], msg=name)


def test_mha_float_mask_and_eval_dropout(device):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True).to(device).eval()
    ours = MultiHeadAttention(8, 2, dropout=0.5, batch_first=True).to(device).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 8, device=device)
    mask = torch.randn(5, 5, device=device)
    torch.testing.assert_close(ours(x, x, x, attn_mask=mask)[0], ref(x, x, x, attn_mask=mask)[0],
                               **TOL[torch.float32])
    mask3 = torch.randn(2 * 2, 5, 5, device=device)
    torch.testing.assert_close(ours(x, x, x, attn_mask=mask3)[1], ref(x, x, x, attn_mask=mask3)[1],
                               **TOL[torch.float32])


def test_mha_parameter_count_equals_torch():
    assert (sum(p.numel() for p in MultiHeadAttention(64, 8).parameters())
            == sum(p.numel() for p in nn.MultiheadAttention(64, 8).parameters()) == 4 * 64 * 65)


# ---------------------------------------------------------------------------------------
# Clear errors at the boundary
# ---------------------------------------------------------------------------------------

q3, k3, v3 = torch.zeros(2, 4, 8), torch.zeros(2, 5, 8), torch.zeros(2, 5, 6)


@pytest.mark.parametrize("fn", [attention_steps, scaled_dot_product_attention, tiled_attention])
@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((q3.numpy(), k3, v3), TypeError, "expected query to be a torch.Tensor but got ndarray"),
        ((q3.long(), k3, v3), TypeError, "expected query to have a floating-point dtype"),
        ((q3, k3.double(), v3), TypeError, r"expected key to have the dtype of query"),
        ((torch.zeros(8), k3, v3), ValueError, "expected query to have at least 2 dimensions"),
        ((q3, torch.zeros(2, 5, 7), v3), ValueError, "same feature size E but got 8 and 7"),
        ((q3, k3, torch.zeros(2, 6, 6)), ValueError, "same length S but got 5 and 6"),
        ((q3, torch.zeros(3, 5, 8), v3), ValueError, "share their leading .batch, head. dim"),
        ((q3, k3[0], v3), ValueError, "same number of dimensions"),
        ((q3[:, :0], k3, v3), ValueError, "expected query to have length >= 1"),
    ],
)
def test_bad_inputs(fn, args, error, match):
    with pytest.raises(error, match=f"{fn.__name__}: .*{match}"):
        fn(*args)


@pytest.mark.parametrize("fn", [attention_steps, scaled_dot_product_attention])
def test_bad_masks(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected attn_mask to broadcast to \(2, 4, 5\)"):
        fn(q3, k3, v3, attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=f"{name}: expected attn_mask to be bool or to have the dtype"):
        fn(q3, k3, v3, attn_mask=torch.ones(4, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match=f"{name}: expected attn_mask to be a torch.Tensor"):
        fn(q3, k3, v3, attn_mask=[[True]])
    with pytest.raises(ValueError, match=f"{name}: expected attn_mask=None when is_causal=True"):
        fn(q3, k3, v3, attn_mask=torch.ones(4, 5, dtype=torch.bool), is_causal=True)
    with pytest.raises(TypeError, match=f"{name}: expected scale to be a float or None"):
        fn(q3, k3, v3, scale="1")


def test_bad_scalar_arguments():
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: expected 0 <= dropout_p"):
        scaled_dot_product_attention(q3, k3, v3, dropout_p=1.5)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: expected dropout_p to be"):
        scaled_dot_product_attention(q3, k3, v3, dropout_p=None)
    with pytest.raises(ValueError, match="tiled_attention: expected block_size > 0 but got 0"):
        tiled_attention(q3, k3, v3, block_size=0)
    with pytest.raises(TypeError, match="tiled_attention: expected block_size to be an int"):
        tiled_attention(q3, k3, v3, block_size=2.0)


def test_mha_errors():
    with pytest.raises(ValueError, match="MultiHeadAttention: expected embed_dim divisible by "
                                         "num_heads but got embed_dim=10, num_heads=4"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="MultiHeadAttention: expected num_heads to be a positive"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="MultiHeadAttention: expected 0 <= dropout < 1"):
        MultiHeadAttention(8, 2, dropout=1.0)
    mha = MultiHeadAttention(8, 2, batch_first=True)
    x = torch.zeros(2, 5, 8)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: expected query of shape \(N, L, 8\)"):
        mha(torch.zeros(2, 5, 6), x, x)
    with pytest.raises(ValueError, match=r"expected key and value with the batch size of query"):
        mha(x, torch.zeros(3, 5, 8), torch.zeros(3, 5, 8))
    with pytest.raises(ValueError, match=r"MultiHeadAttention: expected attn_mask of shape \(5, 5\)"):
        mha(x, x, x, attn_mask=torch.zeros(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected key_padding_mask of shape \(2, 5\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(5, dtype=torch.bool))
    with pytest.raises(TypeError, match="MultiHeadAttention: expected key_padding_mask to be a torch"):
        mha(x, x, x, key_padding_mask=[0])


# ---------------------------------------------------------------------------------------
# Cost measurement helpers (used by the notebook and bench/bench_attention.py)
# ---------------------------------------------------------------------------------------


def test_score_matrix_bytes():
    assert score_matrix_bytes(100, heads=8) == torch.empty(1, 8, 100, 100).nbytes
    assert score_matrix_bytes(8192, heads=8) == 2 * 2**30  # the 2 GiB of §4.4


# ---------------------------------------------------------------------------------------
# The experiments of §4.2
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("d_k", [1, 16, 256])
def test_dot_product_variance_is_d_k(d_k):
    gen = torch.Generator().manual_seed(0)
    raw = dot_product_variance(d_k, 40_000, generator=gen)
    scaled = dot_product_variance(d_k, 40_000, scale=1 / math.sqrt(d_k), generator=gen)
    assert abs(raw / d_k - 1) < 0.05 and abs(scaled - 1) < 0.05


def test_softmax_saturation():
    gen = torch.Generator().manual_seed(0)
    scaled = softmax_saturation(1024, True, n_keys=16, generator=gen)
    unscaled = softmax_saturation(1024, False, n_keys=16, generator=gen)
    assert unscaled.entropy < 0.3 < 2.0 < scaled.entropy < math.log(16)
    assert 1 / 16 < scaled.max_weight < unscaled.max_weight <= 1
    assert unscaled.jacobian_norm < scaled.jacobian_norm / 3
    # the Jacobian norm is that of autograd's softmax Jacobian, averaged over the rows
    g = torch.Generator().manual_seed(5)
    one = softmax_saturation(4, True, n_keys=3, n_queries=1, generator=g)
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(1, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g,
                                                                              dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), (q @ k.T / 2)[0])
    assert abs(one.jacobian_norm - torch.linalg.matrix_norm(J).item()) < 1e-12
    with pytest.raises(ValueError, match="softmax_saturation: expected d_k > 0"):
        softmax_saturation(0)


def test_digits_lookup_is_a_soft_nearest_neighbour():
    lib = digits_lookup(n_keys=300, n_queries=100, seed=0)
    assert lib.query.shape == (100, 64) and lib.key.shape == (300, 64)
    assert lib.value.shape == (300, 10)
    assert (lib.value.sum(-1) == 1).all() and (lib.value.argmax(-1) == lib.key_labels).all()
    torch.testing.assert_close(lib.key.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    out = scaled_dot_product_attention(lib.query, lib.key, lib.value)
    torch.testing.assert_close(out.sum(-1), torch.ones(100))  # a blend of one-hot rows
    assert (out.argmax(-1) == lib.query_labels).float().mean() > 0.8
    with pytest.raises(ValueError, match=r"digits_lookup: expected n_keys \+ n_queries <= 1797"):
        digits_lookup(n_keys=1500, n_queries=500)
