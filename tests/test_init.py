"""la_dl.init against torch.nn.init, and the theory of §7 on sampled networks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.init as tinit
from hypothesis import given
from hypothesis import strategies as st

from la_dl import init as I

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

weight_shapes = st.lists(st.integers(1, 5), min_size=2, max_size=4)  # (out, in, *kernel), size-1 dims


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _empty(shape, dtype, device, noncontiguous):
    if noncontiguous:  # a transposed view of the same shape
        return torch.empty(*shape[:-2], shape[-1], shape[-2], dtype=dtype, device=device).transpose(-1, -2)
    return torch.empty(*shape, dtype=dtype, device=device)


# --------------------------------------------------------------------------------------
# Same conventions, same random calls: the same numbers as torch.nn.init
# --------------------------------------------------------------------------------------

INITIALISERS = {
    "normal_": (I.normal_, tinit.normal_, {"mean": 0.5, "std": 2.0}),
    "xavier_normal_": (I.xavier_normal_, tinit.xavier_normal_, {"gain": 1.5}),
    "xavier_uniform_": (I.xavier_uniform_, tinit.xavier_uniform_, {"gain": 0.7}),
    "kaiming_normal_relu": (I.kaiming_normal_, tinit.kaiming_normal_, {"nonlinearity": "relu"}),
    "kaiming_normal_leaky_fan_out": (
        I.kaiming_normal_, tinit.kaiming_normal_, {"a": 0.2, "mode": "fan_out"}),
    "kaiming_uniform_relu": (I.kaiming_uniform_, tinit.kaiming_uniform_, {"nonlinearity": "relu"}),
    "kaiming_uniform_tanh_fan_out": (
        I.kaiming_uniform_, tinit.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "tanh"}),
}


@given(shape=weight_shapes, dtype=st.sampled_from(DTYPES), name=st.sampled_from(sorted(INITIALISERS)),
       noncontiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_initialisers_draw_the_same_numbers_as_torch(device, shape, dtype, name, noncontiguous, seed):
    mine, theirs, kwargs = INITIALISERS[name]
    a = _empty(shape, dtype, device, noncontiguous)
    b = _empty(shape, dtype, device, noncontiguous)
    out = mine(a, **kwargs, generator=_generator(device, seed))
    theirs(b, **kwargs, generator=_generator(device, seed))
    assert out is a  # in place, like torch.nn.init
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(INITIALISERS))
def test_initialisers_statistics_match_torch_on_large_draws(device, name):
    """Independent draws: mean, std and range of ours agree with torch's and with the formula."""
    mine, theirs, kwargs = INITIALISERS[name]
    shape = (256, 128, 2)  # fan_in = 256, fan_out = 512
    a = mine(torch.empty(*shape, device=device), **kwargs, generator=_generator(device, 1))
    b = theirs(torch.empty(*shape, device=device), **kwargs, generator=_generator(device, 2))
    fan_in, fan_out = 256, 512
    if name == "normal_":
        expected_mean, expected_std = 0.5, 2.0
    elif name.startswith("xavier"):
        expected_mean, expected_std = 0.0, kwargs["gain"] * math.sqrt(2 / (fan_in + fan_out))
    else:
        gain = tinit.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
        fan = fan_out if kwargs.get("mode") == "fan_out" else fan_in
        expected_mean, expected_std = 0.0, gain / math.sqrt(fan)
    n = a.numel()  # 65536 draws: the std estimate is good to ~1/√(2n) ≈ 0.3 %
    for t in (a, b):
        assert abs(t.mean().item() - expected_mean) < 5 * expected_std / math.sqrt(n)
        assert t.std().item() == pytest.approx(expected_std, rel=0.02)
    assert a.std().item() == pytest.approx(b.std().item(), rel=0.03)
    if "uniform" in name:
        bound = math.sqrt(3) * expected_std
        assert a.abs().max().item() <= bound
        assert a.abs().max().item() == pytest.approx(bound, rel=0.01)  # the range is filled


def test_initialisers_fill_a_parameter_without_recording_a_graph(device):
    weight = torch.nn.Parameter(torch.empty(4, 3, device=device))
    out = I.kaiming_normal_(weight, nonlinearity="relu")
    assert out is weight and weight.requires_grad and weight.grad_fn is None
    (weight.sum() * 2).backward()  # the parameter is still a trainable leaf
    torch.testing.assert_close(weight.grad, torch.full_like(weight, 2.0))


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
     ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None)],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert I.calculate_gain(nonlinearity, param) == tinit.calculate_gain(nonlinearity, param)


@given(shape=weight_shapes)
def test_fans_match_torch(shape):
    t = torch.empty(*shape)
    assert I.fan_in_and_fan_out(t) == tinit._calculate_fan_in_and_fan_out(t)


def test_init_std_formulas():
    assert I.init_std("naive", 100, 50) == 1.0
    assert I.init_std("tiny", 100, 50) == I.TINY_STD
    assert I.init_std("xavier", 100, 50) == pytest.approx(math.sqrt(2 / 150))
    assert I.init_std("he", 100, 50) == pytest.approx(math.sqrt(2 / 100))


@pytest.mark.parametrize("init", I.INITS)
def test_init_weight_has_the_named_std(device, init):
    g = torch.Generator().manual_seed(0)
    w = I.init_weight(300, 200, init, scale=1.5, generator=g, device=device)
    assert w.shape == (300, 200) and w.device.type == device.type
    assert w.std().item() == pytest.approx(1.5 * I.init_std(init, 200, 300), rel=0.02)


# --------------------------------------------------------------------------------------
# §7.1 Var(y) = n_in · Var(W) · Var(x)
# --------------------------------------------------------------------------------------


@given(n_in=st.integers(1, 300), weight_std=st.sampled_from([0.01, 0.1, 1.0, 3.0]),
       input_std=st.sampled_from([0.5, 1.0, 2.0]), seed=st.integers(0, 2**16))
def test_output_variance_follows_the_rule(device, n_in, weight_std, input_std, seed):
    g = torch.Generator().manual_seed(seed)
    measured = I.output_variance(n_in, weight_std, input_std, generator=g, device=device)
    predicted = n_in * weight_std**2 * input_std**2
    # Relative sampling error of the estimate is about √(2/(n_in·n_out) + 2/(n_in·N) + 2/(n_out·N))
    # with n_out = N = 512; for n_in = 1 the first two dominate (~9 %): allow 5 standard errors.
    rel_se = math.sqrt(2 / (n_in * 512) * 2 + 2 / 512**2)
    assert abs(measured / predicted - 1) < 5 * rel_se


@pytest.mark.parametrize(("init", "nonlinearity", "expected"), [
    ("xavier", "linear", 1.0),  # n·(1/n) = 1
    ("he", "relu", 1.0),  # n·(2/n)·½ = 1
    ("he", "linear", math.sqrt(2)),  # He on a linear stack: √2 per layer
    ("xavier", "relu", math.sqrt(0.5)),  # Xavier under ReLU: the lost half is never restored
])
def test_per_layer_gain_of_the_variance_rule(init, nonlinearity, expected):
    g = torch.Generator().manual_seed(0)
    run = I.signal_propagation(4, 512, init, nonlinearity, batch_size=512, generator=g)
    per_layer = (run.activation_norms[-1] / run.activation_norms[1]) ** (1 / 3)
    assert per_layer.item() == pytest.approx(expected, rel=0.03)


# --------------------------------------------------------------------------------------
# §7.2 σ_max of the product of Jacobians
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["linear", "relu", "tanh"])
def test_product_singular_values_equal_the_jacobian_of_the_network(device, nonlinearity):
    """Redraw the same weights and differentiate the whole network with autograd."""
    depth, width = 4, 6
    sigma = I.product_singular_values(depth, width, "he", nonlinearity, scale=0.9,
                                      generator=torch.Generator().manual_seed(5), device=device)
    g = torch.Generator().manual_seed(5)
    h0 = torch.randn(width, dtype=torch.float64, generator=g).to(device)
    weights = [I.init_weight(width, width, "he", 0.9, generator=g, dtype=torch.float64, device=device)
               for _ in range(depth)]
    act = {"linear": lambda t: t, "relu": torch.relu, "tanh": torch.tanh}[nonlinearity]
    for ell in range(1, depth + 1):
        def net(h, ell=ell):
            for w in weights[:ell]:
                h = act(w @ h)
            return h

        J = torch.autograd.functional.jacobian(net, h0)  # (n, n)
        torch.testing.assert_close(sigma[ell - 1], torch.linalg.svdvals(J)[0])
    assert sigma.shape == (depth,) and sigma.dtype == torch.float64


def _growth(sigma: torch.Tensor) -> float:
    """Geometric mean growth of σ_max per layer."""
    return (sigma[-1] / sigma[0]).item() ** (1 / (len(sigma) - 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_he_keeps_the_product_order_one_while_naive_explodes_and_tiny_vanishes(seed):
    depth, width = 30, 64
    run = {init: I.product_singular_values(depth, width, init, "relu",
                                           generator=torch.Generator().manual_seed(seed))
           for init in ("naive", "tiny", "he")}
    assert 0.1 < run["he"].min().item() and run["he"].max().item() < 30  # O(1) at every depth
    assert 0.9 < _growth(run["he"]) < 1.1
    assert run["naive"][-1].item() > 1e20 and _growth(run["naive"]) > 4  # ~ √(n/2) per layer
    assert run["tiny"][-1].item() < 1e-20 and _growth(run["tiny"]) < 0.25  # ~ 0.01·√(n/2)
    linear = I.product_singular_values(depth, width, "xavier", "linear",
                                       generator=torch.Generator().manual_seed(seed))
    assert 0.1 < linear.min().item() and linear.max().item() < 30  # Xavier is the linear stack's O(1)


# --------------------------------------------------------------------------------------
# §7.3 forward activations and backward gradients through depth
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("init", "nonlinearity"), [("he", "relu"), ("naive", "tanh"), ("tiny", "linear")])
def test_signal_propagation_equals_autograd(device, init, nonlinearity):
    depth, width, batch = 3, 5, 4
    run = I.signal_propagation(depth, width, init, nonlinearity, batch_size=batch,
                               generator=torch.Generator().manual_seed(9), device=device)
    g = torch.Generator().manual_seed(9)
    opts = {"dtype": torch.float64, "generator": g}
    hs = [torch.randn(batch, width, **opts).to(device).requires_grad_(True)]
    weights = [I.init_weight(width, width, init, generator=g, dtype=torch.float64, device=device)
               .requires_grad_(True) for _ in range(depth)]
    act = {"linear": lambda t: t, "relu": torch.relu, "tanh": torch.tanh}[nonlinearity]
    for w in weights:
        hs.append(act(hs[-1] @ w.T))
        hs[-1].retain_grad()
    grad_out = torch.randn(batch, width, **opts).to(device)
    hs[-1].backward(grad_out)

    def rms(t):
        return t.pow(2).mean().sqrt()

    torch.testing.assert_close(run.activation_norms, torch.stack([rms(h.detach()) for h in hs]))
    torch.testing.assert_close(run.gradient_norms, torch.stack([rms(h.grad) for h in hs]))
    torch.testing.assert_close(run.weight_gradient_norms, torch.stack([rms(w.grad) for w in weights]))


def test_six_layer_network_naive_explodes_tiny_vanishes_he_stays_flat():
    g = torch.Generator().manual_seed(0)
    runs = {init: I.signal_propagation(6, 256, init, "relu", generator=g) for init in ("naive", "tiny", "he")}
    he = runs["he"]
    assert ((he.activation_norms > 0.8) & (he.activation_norms < 1.25)).all()
    assert ((he.gradient_norms > 0.8) & (he.gradient_norms < 1.25)).all()
    # naive: ×√(n/2) ≈ 11.3 per layer; tiny: ×0.01·√(n/2) ≈ 0.113 per layer, both ways
    for run, factor in ((runs["naive"], math.sqrt(128)), (runs["tiny"], 0.01 * math.sqrt(128))):
        act_ratio = run.activation_norms[1:] / run.activation_norms[:-1]
        grad_ratio = run.gradient_norms[:-1] / run.gradient_norms[1:]
        torch.testing.assert_close(act_ratio, torch.full_like(act_ratio, factor), rtol=0.15, atol=0)
        torch.testing.assert_close(grad_ratio, torch.full_like(grad_ratio, factor), rtol=0.15, atol=0)


def test_experiments_run_in_float32_too(device):
    run = I.signal_propagation(3, 8, "he", batch_size=4, device=device, dtype=torch.float32)
    assert run.activation_norms.dtype == torch.float32 and run.activation_norms.device.type == device.type
    sigma = I.product_singular_values(3, 8, "xavier", device=device, dtype=torch.float32)
    assert sigma.dtype == torch.float32 and torch.isfinite(sigma).all()


# --------------------------------------------------------------------------------------
# Errors at the boundary
# --------------------------------------------------------------------------------------


def test_initialiser_errors():
    with pytest.raises(TypeError, match="xavier_normal_: expected tensor to be a torch.Tensor but got list"):
        I.xavier_normal_([[0.0]])
    with pytest.raises(TypeError, match="kaiming_normal_: expected tensor to have a floating-point dtype"):
        I.kaiming_normal_(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(
        ValueError, match=r"fan_in_and_fan_out: expected a weight with at least 2 dimensions .* \(5,\)"
    ):
        I.xavier_uniform_(torch.empty(5))
    with pytest.raises(
        ValueError, match="kaiming_normal_: expected mode to be 'fan_in' or 'fan_out' but got 'fan'"
    ):
        I.kaiming_normal_(torch.empty(3, 3), mode="fan")
    with pytest.raises(ValueError, match="calculate_gain: expected nonlinearity to be .* but got 'swish'"):
        I.kaiming_uniform_(torch.empty(3, 3), nonlinearity="swish")
    with pytest.raises(
        ValueError, match="calculate_gain: expected the negative slope to be a number but got True"
    ):
        I.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="normal_: expected std >= 0 but got -1"):
        I.normal_(torch.empty(2, 2), std=-1.0)
    with pytest.raises(TypeError, match="normal_: expected generator to be a torch.Generator but got int"):
        I.normal_(torch.empty(2, 2), generator=0)


def test_experiment_errors():
    with pytest.raises(
        ValueError, match=r"init_std: expected init to be one of \['naive', 'tiny', 'xavier', 'he'\]"
    ):
        I.init_std("orthogonal", 3, 3)
    with pytest.raises(ValueError, match="init_weight: expected init to be one of .* but got 'lecun'"):
        I.init_weight(3, 3, "lecun")
    with pytest.raises(ValueError, match="init_weight: expected scale > 0 but got 0"):
        I.init_weight(3, 3, "he", scale=0)
    with pytest.raises(ValueError, match="product_singular_values: expected depth > 0 but got 0"):
        I.product_singular_values(0, 4, "he")
    with pytest.raises(TypeError, match="product_singular_values: expected width to be an int but got float"):
        I.product_singular_values(3, 4.0, "he")
    with pytest.raises(
        ValueError, match="signal_propagation: expected nonlinearity to be one of .* but got 'elu'"
    ):
        I.signal_propagation(3, 4, "he", "elu")
    with pytest.raises(ValueError, match="signal_propagation: expected init to be one of .* but got 'He'"):
        I.signal_propagation(3, 4, "He")
    with pytest.raises(ValueError, match="signal_propagation: expected batch_size > 0 but got -2"):
        I.signal_propagation(3, 4, "he", batch_size=-2)
    with pytest.raises(ValueError, match="output_variance: expected n_in > 0 but got 0"):
        I.output_variance(0, 1.0)
