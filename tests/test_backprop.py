"""la_dl.backprop against autograd: manual gradients must equal torch's (§2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from la_dl import backprop as bp

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-12, "atol": 1e-12}}

dims = st.integers(min_value=1, max_value=6)  # size-1 dims included
batch_shapes = st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=2)


def randn(*shape: int, dtype: torch.dtype, device: torch.device, noncontiguous: bool = False,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """A standard normal tensor; with ``noncontiguous`` a transposed view of the same values."""
    if noncontiguous and len(shape) >= 2:
        base = torch.randn(*shape[:-2], shape[-1], shape[-2], dtype=dtype, generator=generator)
        return base.to(device).transpose(-1, -2)  # same shape, not contiguous
    return torch.randn(*shape, dtype=dtype, generator=generator).to(device)


# --------------------------------------------------------------------------------------
# linear_forward / linear_backward
# --------------------------------------------------------------------------------------


@given(batch=batch_shapes, h_in=dims, h_out=dims, dtype=st.sampled_from(DTYPES),
       with_bias=st.booleans(), noncontiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_matches_autograd(device, batch, h_in, h_out, dtype, with_bias, noncontiguous, seed):
    g = torch.Generator().manual_seed(seed)
    x = randn(*batch, h_in, dtype=dtype, device=device, noncontiguous=noncontiguous, generator=g)
    weight = randn(h_out, h_in, dtype=dtype, device=device, noncontiguous=noncontiguous, generator=g)
    bias = randn(h_out, dtype=dtype, device=device, generator=g) if with_bias else None
    grad_out = randn(*batch, h_out, dtype=dtype, device=device, generator=g)

    out, cache = bp.linear_forward(x, weight, bias)
    grad_x, grad_w, grad_b = bp.linear_backward(grad_out, cache)

    leaves = [t.detach().clone().requires_grad_(True) for t in (x, weight)]
    b_leaf = bias.detach().clone().requires_grad_(True) if with_bias else None
    ref = F.linear(leaves[0], leaves[1], b_leaf)
    ref.backward(grad_out)

    torch.testing.assert_close(out, ref.detach(), **TOL[dtype])
    torch.testing.assert_close(grad_x, leaves[0].grad, **TOL[dtype])
    torch.testing.assert_close(grad_w, leaves[1].grad, **TOL[dtype])
    if with_bias:
        torch.testing.assert_close(grad_b, b_leaf.grad, **TOL[dtype])
    else:
        assert grad_b is None
    assert grad_x.shape == x.shape and grad_w.shape == weight.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3, 2), (5, 7, 4), (64, 37, 61), (3, 10, 9, 11)])
def test_linear_backward_bit_identical_on_cpu(dtype, shape):
    """Same GEMM kernels as autograd's linear backward, so the same bits (contiguous, CPU)."""
    *batch, h_in, h_out = shape
    x = torch.randn(*batch, h_in, dtype=dtype, requires_grad=True)
    w = torch.randn(h_out, h_in, dtype=dtype, requires_grad=True)
    b = torch.randn(h_out, dtype=dtype, requires_grad=True)
    out = F.linear(x, w, b)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    _, cache = bp.linear_forward(x.detach(), w.detach(), b.detach())
    grad_x, grad_w, grad_b = bp.linear_backward(grad_out, cache)
    assert torch.equal(grad_x, x.grad)
    assert torch.equal(grad_w, w.grad)
    assert torch.equal(grad_b, b.grad)


class _ManualLinear(torch.autograd.Function):
    """Routes autograd through la_dl's manual backward, so gradcheck tests *our* formulas."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        out, cache = bp.linear_forward(x, weight, bias)
        ctx.cache = cache
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return bp.linear_backward(grad_out, ctx.cache)


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 2), (2, 3, 5, 2)])
def test_linear_backward_gradcheck(device, shape):
    *batch, h_in, h_out = shape
    opts = {"dtype": torch.float64, "device": device, "requires_grad": True}
    x = torch.randn(*batch, h_in, **opts)
    w = torch.randn(h_out, h_in, **opts)
    b = torch.randn(h_out, **opts)
    assert torch.autograd.gradcheck(_ManualLinear.apply, (x, w, b))


def test_linear_backward_without_bias_returns_none(device):
    x = torch.randn(3, 4, device=device)
    w = torch.randn(2, 4, device=device)
    out, cache = bp.linear_forward(x, w)
    torch.testing.assert_close(out, x @ w.T)
    _, _, grad_b = bp.linear_backward(torch.ones_like(out), cache)
    assert grad_b is None


def test_weight_gradient_is_sum_of_outer_products(device):
    """∂L/∂W = ΔᵀX = Σ_b δ_b x_bᵀ: one rank-1 outer product per sample (§2.2)."""
    x = torch.randn(5, 3, dtype=torch.float64, device=device)
    w = torch.randn(4, 3, dtype=torch.float64, device=device)
    delta = torch.randn(5, 4, dtype=torch.float64, device=device)
    _, cache = bp.linear_forward(x, w)
    _, grad_w, _ = bp.linear_backward(delta, cache)
    outer = sum(torch.outer(delta[i], x[i]) for i in range(5))
    torch.testing.assert_close(grad_w, outer)
    for i in range(5):
        assert torch.linalg.matrix_rank(torch.outer(delta[i], x[i])) == 1


def test_adjoint_identity(device):
    """⟨W x, g⟩ = ⟨x, Wᵀ g⟩: the backward map of W is its transpose."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 6, dtype=torch.float64, generator=g).to(device)
    w = torch.randn(4, 6, dtype=torch.float64, generator=g).to(device)
    grad = torch.randn(1, 4, dtype=torch.float64, generator=g).to(device)
    out, cache = bp.linear_forward(x, w)
    grad_x, _, _ = bp.linear_backward(grad, cache)
    torch.testing.assert_close((out * grad).sum(), (x * grad_x).sum())
    torch.testing.assert_close(grad_x, grad @ w)


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------

TORCH_ACT = {
    "identity": lambda t: t,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
}


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), dtype=st.sampled_from(DTYPES),
       name=st.sampled_from(sorted(bp.ACTIVATIONS)), noncontiguous=st.booleans(),
       seed=st.integers(0, 2**16))
def test_activation_matches_autograd(device, shape, dtype, name, noncontiguous, seed):
    g = torch.Generator().manual_seed(seed)
    z = randn(*shape, dtype=dtype, device=device, noncontiguous=noncontiguous, generator=g) * 3
    grad_out = randn(*shape, dtype=dtype, device=device, generator=g)
    forward, backward = bp.ACTIVATIONS[name]
    out, cache = forward(z)
    grad_z = backward(grad_out, cache)

    leaf = z.detach().clone().requires_grad_(True)
    ref = TORCH_ACT[name](leaf)
    (ref_grad,) = torch.autograd.grad(ref, leaf, grad_out)
    torch.testing.assert_close(out, ref.detach(), **TOL[dtype])
    torch.testing.assert_close(grad_z, ref_grad, **TOL[dtype])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_approximations_match_torch(device, approximate, dtype):
    z = torch.linspace(-6, 6, 241, dtype=dtype, device=device)
    grad_out = torch.randn(241, dtype=dtype).to(device)
    out, cache = bp.gelu_forward(z, approximate=approximate)
    leaf = z.clone().requires_grad_(True)
    ref = F.gelu(leaf, approximate=approximate)
    (ref_grad,) = torch.autograd.grad(ref, leaf, grad_out)
    torch.testing.assert_close(out, ref.detach(), **TOL[dtype])
    torch.testing.assert_close(bp.gelu_backward(grad_out, cache), ref_grad, **TOL[dtype])


@pytest.mark.parametrize("name", ["relu", "sigmoid"])
def test_relu_sigmoid_backward_bit_identical_on_cpu(name):
    """These follow the exact arithmetic of torch's backward kernels."""
    z = torch.randn(1000, dtype=torch.float32)
    z[:10] = 0.0  # ReLU's kink: torch's subgradient is 0
    grad_out = torch.randn(1000)
    forward, backward = bp.ACTIVATIONS[name]
    out, cache = forward(z)
    leaf = z.clone().requires_grad_(True)
    (ref_grad,) = torch.autograd.grad(TORCH_ACT[name](leaf), leaf, grad_out)
    assert torch.equal(backward(grad_out, cache), ref_grad)


def _manual_activation(name: str):
    forward, backward = bp.ACTIVATIONS[name]

    class _Manual(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            out, cache = forward(z)
            ctx.cache = cache
            return out

        @staticmethod
        def backward(ctx, grad_out):
            return backward(grad_out, ctx.cache)

    return _Manual.apply


@pytest.mark.parametrize("name", sorted(bp.ACTIVATIONS))
def test_activation_gradcheck(device, name):
    z = torch.randn(3, 4, dtype=torch.float64, device=device)
    if name == "relu":
        z = z + 0.1 * z.sign()  # keep finite differences away from the kink
    assert torch.autograd.gradcheck(_manual_activation(name), (z.requires_grad_(True),))


# --------------------------------------------------------------------------------------
# A whole MLP
# --------------------------------------------------------------------------------------


@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=5), batch=st.integers(1, 4),
       dtype=st.sampled_from(DTYPES), name=st.sampled_from(sorted(bp.ACTIVATIONS)),
       with_bias=st.booleans(), noncontiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_mlp_backward_matches_autograd(device, widths, batch, dtype, name, with_bias, noncontiguous, seed):
    g = torch.Generator().manual_seed(seed)
    opts = {"dtype": dtype, "device": device, "generator": g}
    x = randn(batch, widths[0], noncontiguous=noncontiguous, **opts)
    weights = [randn(n_out, n_in, noncontiguous=noncontiguous, **opts)
               for n_in, n_out in zip(widths[:-1], widths[1:])]
    biases = [randn(n, **opts) for n in widths[1:]] if with_bias else None
    grad_out = randn(batch, widths[-1], **opts)

    out, cache = bp.mlp_forward_with_cache(x, weights, biases, activation=name)
    grad_x, grad_ws, grad_bs = bp.mlp_backward(grad_out, cache)

    x_leaf = x.detach().clone().requires_grad_(True)
    w_leaves = [w.detach().clone().requires_grad_(True) for w in weights]
    b_leaves = [b.detach().clone().requires_grad_(True) for b in biases] if with_bias else None
    b_leaves = b_leaves or [None] * len(weights)
    h = x_leaf
    for i, (w, b) in enumerate(zip(w_leaves, b_leaves)):
        h = F.linear(h, w, b)
        if i < len(weights) - 1:
            h = TORCH_ACT[name](h)
    h.backward(grad_out)

    tol = TOL[dtype]
    torch.testing.assert_close(out, h.detach(), **tol)
    torch.testing.assert_close(grad_x, x_leaf.grad, **tol)
    for mine, leaf in zip(grad_ws, w_leaves):
        torch.testing.assert_close(mine, leaf.grad, **tol)
    for mine, leaf in zip(grad_bs, b_leaves):
        if leaf is None:
            assert mine is None
        else:
            torch.testing.assert_close(mine, leaf.grad, **tol)


# --------------------------------------------------------------------------------------
# Gradient norms through depth and the operator-norm bound (§2.3)
# --------------------------------------------------------------------------------------


@given(depth=st.integers(1, 6), width=st.integers(1, 8), batch=st.integers(1, 4),
       name=st.sampled_from(sorted(bp.ACTIVATIONS)), scale=st.sampled_from([0.3, 1.0, 3.0]),
       seed=st.integers(0, 2**16))
def test_gradient_norms_match_autograd_and_obey_bound(device, depth, width, batch, name, scale, seed):
    g = torch.Generator().manual_seed(seed)
    opts = {"dtype": torch.float64, "generator": g}
    x = torch.randn(batch, width, **opts).to(device)
    weights = [(scale * torch.randn(width, width, **opts) / width**0.5).to(device) for _ in range(depth)]
    grad_out = torch.randn(batch, width, **opts).to(device)
    measured, bound = bp.gradient_norms_vs_bound(x, weights, grad_out, activation=name)
    assert measured.shape == bound.shape == (depth + 1,)

    # measured: the norms of autograd's gradients of every hidden layer
    hs = [x.clone().requires_grad_(True)]
    for w in weights:
        h = TORCH_ACT[name](hs[-1] @ w.T)
        h.retain_grad()
        hs.append(h)
    hs[-1].backward(grad_out)
    expected = torch.stack([torch.linalg.vector_norm(h.grad) for h in hs])
    torch.testing.assert_close(measured, expected)
    assert bool((measured <= bound * (1 + 1e-10)).all())
    torch.testing.assert_close(bound[-1], measured[-1])


def test_bound_is_tight_for_orthogonal_layers(device):
    """‖ΔQ‖ = ‖Δ‖ for orthogonal Q: with no nonlinearity the bound holds with equality."""
    g = torch.Generator().manual_seed(0)
    weights = [torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=g))[0].to(device)
               for _ in range(4)]
    x = torch.randn(3, 5, dtype=torch.float64, generator=g).to(device)
    grad_out = torch.randn(3, 5, dtype=torch.float64, generator=g).to(device)
    measured, bound = bp.gradient_norms_vs_bound(x, weights, grad_out)
    torch.testing.assert_close(measured, bound)
    torch.testing.assert_close(measured, measured[-1].expand(5))


# --------------------------------------------------------------------------------------
# The Jacobian
# --------------------------------------------------------------------------------------


@given(n_in=st.integers(1, 5), n_out=st.integers(1, 5), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_jacobian_of_linear_map_is_w(device, n_in, n_out, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_out, n_in, dtype=dtype, generator=g).to(device)
    x = torch.randn(n_in, dtype=dtype, generator=g).to(device)
    J = bp.jacobian(lambda v: w @ v, x)
    assert J.shape == (n_out, n_in)
    torch.testing.assert_close(J, w, **TOL[dtype])


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=2), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_jacobian_matches_torch(device, shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, dtype=dtype, generator=g).to(device)
    w = torch.randn(4, x.numel(), dtype=dtype, generator=g).to(device)

    def f(v):
        return torch.tanh(w @ v.reshape(-1)).reshape(2, 2) * v.sum()

    J = bp.jacobian(f, x)
    ref = torch.autograd.functional.jacobian(f, x)
    assert J.shape == (2, 2, *shape)
    torch.testing.assert_close(J, ref, **TOL[dtype])


def test_jacobian_chain_rule_and_vjp(device):
    """J of a composition is the product of Jacobians, and Jᵀ ∇_y L is the backprop gradient."""
    g = torch.Generator().manual_seed(1)
    w1 = torch.randn(4, 3, dtype=torch.float64, generator=g).to(device)
    w2 = torch.randn(2, 4, dtype=torch.float64, generator=g).to(device)
    x = torch.randn(3, dtype=torch.float64, generator=g).to(device)
    J1 = bp.jacobian(lambda v: torch.tanh(w1 @ v), x)
    J2 = bp.jacobian(lambda v: w2 @ v, torch.tanh(w1 @ x))
    J = bp.jacobian(lambda v: w2 @ torch.tanh(w1 @ v), x)
    torch.testing.assert_close(J, J2 @ J1)
    grad_y = torch.randn(2, dtype=torch.float64, generator=g).to(device)
    leaf = x.clone().requires_grad_(True)
    (w2 @ torch.tanh(w1 @ leaf)).backward(grad_y)
    torch.testing.assert_close(J.T @ grad_y, leaf.grad)


def test_jacobian_of_constant_function_is_zero(device):
    x = torch.randn(3, device=device)
    J = bp.jacobian(lambda v: torch.ones(2, device=device), x)
    assert J.shape == (2, 3) and not J.any()


# --------------------------------------------------------------------------------------
# Errors at the boundary
# --------------------------------------------------------------------------------------


def test_linear_forward_errors():
    x, w, b = torch.randn(2, 3), torch.randn(4, 3), torch.randn(4)
    with pytest.raises(
        ValueError, match=r"linear_forward: expected x of shape \(\*, 3\) .* but got \(2, 5\)"
    ):
        bp.linear_forward(torch.randn(2, 5), w, b)
    with pytest.raises(ValueError, match=r"linear_forward: expected weight to be 2-D but got a 1-D"):
        bp.linear_forward(x, torch.randn(3), b)
    with pytest.raises(ValueError, match=r"linear_forward: expected bias of shape \(4,\) but got \(3,\)"):
        bp.linear_forward(x, w, torch.randn(3))
    with pytest.raises(TypeError, match="linear_forward: expected x to be a torch.Tensor but got list"):
        bp.linear_forward([[1.0, 2.0, 3.0]], w, b)
    with pytest.raises(TypeError, match="linear_forward: expected x to have a floating-point dtype"):
        bp.linear_forward(torch.ones(2, 3, dtype=torch.int64), w, b)
    with pytest.raises(
        TypeError, match=r"linear_forward: expected weight to have the dtype of x \(torch.float32\)"
    ):
        bp.linear_forward(x, w.double(), b)
    with pytest.raises(ValueError, match="linear_forward: expected x to be at least 1-D"):
        bp.linear_forward(torch.tensor(1.0), w, b)


def test_linear_backward_errors():
    _, cache = bp.linear_forward(torch.randn(2, 3), torch.randn(4, 3))
    with pytest.raises(
        ValueError, match=r"linear_backward: expected grad_output of .* shape \(2, 4\) but got \(2, 3\)"
    ):
        bp.linear_backward(torch.randn(2, 3), cache)
    with pytest.raises(TypeError, match="linear_backward: expected cache to be the LinearCache"):
        bp.linear_backward(torch.randn(2, 4), (torch.randn(2, 3), torch.randn(4, 3)))
    with pytest.raises(TypeError, match="linear_backward: expected grad_output to have the dtype of weight"):
        bp.linear_backward(torch.randn(2, 4, dtype=torch.float64), cache)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "gelu", "identity"])
def test_activation_errors(name):
    forward, backward = bp.ACTIVATIONS[name]
    _, cache = forward(torch.randn(2, 3))
    with pytest.raises(
        ValueError, match=rf"{name}_backward: expected grad_output of the forward output's shape \(2, 3\)"
    ):
        backward(torch.randn(3, 2), cache)
    with pytest.raises(TypeError, match=rf"{name}_forward: expected x to be a torch.Tensor but got float"):
        forward(1.0)
    with pytest.raises(
        TypeError, match=rf"{name}_backward: expected grad_output to have a floating-point dtype"
    ):
        backward(torch.ones(2, 3, dtype=torch.int64), cache)


def test_activation_cache_errors():
    with pytest.raises(TypeError, match="tanh_backward: expected cache to be a torch.Tensor but got tuple"):
        bp.tanh_backward(torch.randn(2), (1, 2))
    with pytest.raises(TypeError, match="relu_backward: expected cache to have the dtype of grad_output"):
        bp.relu_backward(torch.randn(2), torch.randn(2, dtype=torch.float64))
    with pytest.raises(
        ValueError, match="gelu_forward: expected approximate to be 'none' or 'tanh' but got 'erf'"
    ):
        bp.gelu_forward(torch.randn(2), approximate="erf")


def test_mlp_errors():
    x, w = torch.randn(2, 3), [torch.randn(4, 3), torch.randn(2, 4)]
    with pytest.raises(ValueError, match=r"mlp_forward_with_cache: expected activation to be one of \["):
        bp.mlp_forward_with_cache(x, w, activation="swish")
    with pytest.raises(
        ValueError, match=r"mlp_forward_with_cache: expected one bias per weight \(2\) but got 1"
    ):
        bp.mlp_forward_with_cache(x, w, [torch.randn(4)])
    with pytest.raises(TypeError, match="mlp_forward_with_cache: expected weights to be a non-empty list"):
        bp.mlp_forward_with_cache(x, [])
    with pytest.raises(
        ValueError, match=r"linear_forward: expected x of shape \(\*, 5\) .* but got \(2, 4\)"
    ):
        bp.mlp_forward_with_cache(x, [torch.randn(4, 3), torch.randn(2, 5)])
    with pytest.raises(TypeError, match="mlp_backward: expected cache to be the MLPCache"):
        bp.mlp_backward(torch.randn(2, 2), [])
    _, cache = bp.mlp_forward_with_cache(x, w)
    with pytest.raises(
        ValueError, match=r"linear_backward: expected grad_output .* shape \(2, 2\) but got \(2, 3\)"
    ):
        bp.mlp_backward(torch.randn(2, 3), cache)


def test_gradient_norms_and_jacobian_errors():
    x, w = torch.randn(2, 3), [torch.randn(3, 3)]
    with pytest.raises(
        ValueError, match=r"gradient_norms_vs_bound: expected grad_output of .* \(2, 3\) but got \(2, 2\)"
    ):
        bp.gradient_norms_vs_bound(x, w, torch.randn(2, 2))
    with pytest.raises(TypeError, match="jacobian: expected f to be callable but got int"):
        bp.jacobian(3, x)
    with pytest.raises(TypeError, match="jacobian: expected f to return a torch.Tensor but got float"):
        bp.jacobian(lambda v: 1.0, x)
