"""la_dl.mlp against torch: F.linear on drawn shapes and dtypes, the matmul chain, collapse."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from la_dl import mlp

DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12),
            torch.bfloat16: dict(rtol=2e-2, atol=2e-2), torch.float16: dict(rtol=2e-3, atol=2e-3)}[dtype]


shapes = st.tuples(
    st.lists(st.integers(1, 5), min_size=0, max_size=2),  # leading batch dims (none = one vector)
    st.integers(1, 17),  # in_features
    st.integers(1, 13),  # out_features
    st.booleans(),  # bias
    st.booleans(),  # non-contiguous input
)


@given(shape=shapes, dtype=st.sampled_from(DTYPES))
def test_linear_equals_F_linear_outputs_and_gradients(device, shape, dtype):
    lead, d_in, d_out, with_bias, transposed = shape
    if transposed:  # a non-contiguous view with the same values
        x = torch.randn(d_in, *lead, device=device, dtype=dtype).movedim(0, -1)
    else:
        x = torch.randn(*lead, d_in, device=device, dtype=dtype)
    w = torch.randn(d_out, d_in, device=device, dtype=dtype)
    b = torch.randn(d_out, device=device, dtype=dtype) if with_bias else None
    leaves = [t.detach().requires_grad_() for t in (x, w) + ((b,) if with_bias else ())]
    ref_leaves = [t.detach().clone().requires_grad_() for t in leaves]

    ours = mlp.linear(*leaves)
    ref = F.linear(*ref_leaves)
    torch.testing.assert_close(ours, ref, **_tol(dtype))
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    for a, r in zip(leaves, ref_leaves):
        torch.testing.assert_close(a.grad, r.grad, **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_linear_half_precision(device, dtype):
    if device.type == "cpu" and dtype == torch.float16:
        pytest.importorskip("torch", minversion="2.1")
    x = torch.randn(7, 16, device=device).to(dtype)
    w = torch.randn(5, 16, device=device).to(dtype)
    b = torch.randn(5, device=device).to(dtype)
    torch.testing.assert_close(mlp.linear(x, w, b).float(), F.linear(x, w, b).float(), **_tol(dtype))


def test_linear_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlp.linear, (x, w, b))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((torch.randn(3, 4), torch.randn(5, 3)), ValueError, "last dimension to equal weight's in_features 3"),
        ((torch.randn(3, 4), torch.randn(5)), ValueError, "expected weight to be 2-D"),
        ((torch.randn(3, 4), torch.randn(5, 4), torch.randn(4)), ValueError, r"bias of shape \(5,\)"),
        ((torch.randn(3, 4), torch.randn(5, 4, dtype=torch.float64)), TypeError, "dtype"),
        ((torch.ones(3, 4, dtype=torch.long), torch.ones(5, 4, dtype=torch.long)), TypeError, "floating"),
        (([[1.0]], torch.randn(1, 1)), TypeError, "torch.Tensor"),
        ((torch.tensor(1.0), torch.randn(1, 1)), ValueError, "at least 1-D"),
    ],
)
def test_linear_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        mlp.linear(*args)


def test_linear_device_mismatch():
    if not torch.cuda.is_available():
        x, w = torch.randn(2, 3), torch.randn(4, 3, device="meta")
    else:
        x, w = torch.randn(2, 3), torch.randn(4, 3, device="cuda")
    with pytest.raises(ValueError, match="device"):
        mlp.linear(x, w)


@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    batch=st.integers(1, 6),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "identity"]),
)
def test_mlp_forward_equals_torch_stack(device, sizes, batch, activation):
    x = torch.randn(batch, sizes[0], device=device, dtype=torch.float64)
    layers = [torch.nn.Linear(a, b, dtype=torch.float64).to(device) for a, b in zip(sizes, sizes[1:])]
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda z: z}[activation]
    ref = x
    for i, layer in enumerate(layers):
        ref = layer(ref)
        if i < len(layers) - 1:
            ref = act(ref)
    ours = mlp.mlp_forward(x, [l.weight for l in layers], [l.bias for l in layers], activation)
    torch.testing.assert_close(ours, ref)


@given(sizes=st.lists(st.integers(1, 8), min_size=2, max_size=6), batch=st.integers(1, 5))
def test_linear_stack_collapses_to_one_matrix(sizes, batch):
    weights = [torch.randn(b, a, dtype=torch.float64) for a, b in zip(sizes, sizes[1:])]
    biases = [torch.randn(b, dtype=torch.float64) for b in sizes[1:]]
    x = torch.randn(batch, sizes[0], dtype=torch.float64)
    W = mlp.collapse_linear(weights)
    assert W.shape == (sizes[-1], sizes[0])
    torch.testing.assert_close(mlp.mlp_forward(x, weights, None, "identity"), x @ W.T)
    Wb, b = mlp.collapse_affine(weights, biases)
    torch.testing.assert_close(mlp.mlp_forward(x, weights, biases, "identity"), x @ Wb.T + b)


def test_relu_breaks_the_collapse():
    torch.manual_seed(0)
    weights = [torch.randn(16, 8, dtype=torch.float64), torch.randn(4, 16, dtype=torch.float64)]
    x = torch.randn(32, 8, dtype=torch.float64)
    W = mlp.collapse_linear(weights)
    gap = (mlp.mlp_forward(x, weights, None, "relu") - x @ W.T).abs().max()
    assert gap > 1.0
    # ... and no single matrix fits it: the least-squares best one leaves a residual.
    target = mlp.mlp_forward(x, weights, None, "relu")
    best = torch.linalg.lstsq(x, target).solution
    assert (x @ best - target).norm() / target.norm() > 0.1


def test_collapse_bad_chain():
    with pytest.raises(ValueError, match=r"weights\[1\] to take 4 inputs"):
        mlp.collapse_linear([torch.randn(4, 3), torch.randn(2, 5)])
    with pytest.raises(ValueError, match="at least one"):
        mlp.collapse_linear([])
    with pytest.raises(ValueError, match="one bias per weight"):
        mlp.collapse_affine([torch.randn(4, 3)], [])


def test_mlp_forward_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        mlp.mlp_forward(torch.randn(2, 3), [torch.randn(4, 3)], None, "swishy")
    with pytest.raises(ValueError, match="one bias per weight"):
        mlp.mlp_forward(torch.randn(2, 3), [torch.randn(4, 3)], [None, None])


def test_mlp_module_matches_nn_sequential():
    torch.manual_seed(0)
    model = mlp.MLP([6, 5, 3], activation="tanh")
    ref = torch.nn.Sequential(model.layers[0], torch.nn.Tanh(), model.layers[1])
    x = torch.randn(4, 6)
    torch.testing.assert_close(model(x), ref(x))
    with pytest.raises(ValueError, match="at least two sizes"):
        mlp.MLP([3])


def test_arithmetic_intensity():
    # B = 1: a matrix-vector product is memory bound, below 0.5 FLOP per byte in float32.
    assert mlp.arithmetic_intensity(1, 4096, 4096) < 0.5
    # Square GEMM of side n: 2n³ / (4 · 3n²) = n/6 FLOP/byte.
    assert mlp.arithmetic_intensity(1200, 1200, 1200) == pytest.approx(200)


def test_gemm_throughput_reports_consistent_numbers(device):
    points = mlp.gemm_throughput([1, 64], 32, 48, device=device, repeats=2, min_time=0.001)
    assert [p.batch for p in points] == [1, 64]
    for p in points:
        assert p.seconds > 0
        assert p.gflops == pytest.approx(2 * p.batch * 32 * 48 / p.seconds / 1e9)
        assert p.us_per_row == pytest.approx(p.seconds / p.batch * 1e6)
    assert points[1].intensity > points[0].intensity


def test_digits_classifier_learns():
    torch.manual_seed(0)
    x, y, xt, yt = mlp.load_digits("cpu")
    assert x.shape[1] == 64 and x.shape[0] + xt.shape[0] == 1797
    model = mlp.MLP([64, 32, 10])
    losses = mlp.train_classifier(model, x, y, epochs=60)
    assert losses[-1] < losses[0] / 5
    assert (model(xt).argmax(1) == yt).float().mean() > 0.9
