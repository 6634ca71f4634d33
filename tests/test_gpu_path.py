"""The GPU path: la_dl gives the CPU's answers on CUDA, and its half-precision paths work there.

* **Parity** (TF32 off, as in conftest): each public op runs on identical float32 inputs on
  the CPU and on the accelerator; outputs and gradients agree to float32 tolerance.
* **Half precision** (float16, bfloat16): each op runs on the accelerator in that dtype and
  matches (a) the torch built-in in the same dtype and (b) the float32 answer, to the
  dtype's tolerance; its gradients are finite and close to float32's.
* **FLOP counting**: on CUDA the fused attention kernels are counted by ``FlopCounterMode``,
  so torch's encoder layer matches :func:`la_dl.flops.matmul_flops` without forcing the
  math backend.

Skipped without CUDA. ``LA_DL_PARITY_DEVICE=cpu`` runs the same code with the CPU standing
in for the accelerator (a check of this file, not of a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from la_dl.attention import MultiHeadAttention, scaled_dot_product_attention, tiled_attention
from la_dl.backprop import mlp_backward, mlp_forward_with_cache
from la_dl.conv import conv1d, conv2d, depthwise_separable_conv2d, im2col
from la_dl.flops import EncoderConfig, count_matmul_flops, matmul_flops, torch_encoder
from la_dl.lora import LoRALinear
from la_dl.mlp import linear
from la_dl.norm import batch_norm, layer_norm, rms_norm
from la_dl.transformer import TransformerEncoderLayer

OTHER = os.environ.get("LA_DL_PARITY_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(OTHER is None, reason="needs CUDA (or LA_DL_PARITY_DEVICE=cpu)")

TOL = {
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float16: dict(rtol=1e-2, atol=1e-2),
    torch.bfloat16: dict(rtol=6e-2, atol=6e-2),
}


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# Each case: (la_dl function, torch built-in, the float64 CPU inputs). The two functions take
# the same positional tensors (and the same keyword arguments, baked in with a lambda).
Case = tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor], Callable[[], list[torch.Tensor]]]

CASES: dict[str, Case] = {
    "linear": (linear, F.linear, lambda: [_randn(5, 3, 16), _randn(8, 16, seed=1), _randn(8, seed=2)]),
    "conv1d": (
        lambda x, w, b: conv1d(x, w, b, padding=1),
        lambda x, w, b: F.conv1d(x, w, b, padding=1),
        lambda: [_randn(2, 3, 11), _randn(4, 3, 3, seed=1), _randn(4, seed=2)],
    ),
    "conv2d": (
        lambda x, w, b: conv2d(x, w, b, stride=2, padding=1),
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        lambda: [_randn(2, 3, 9, 9), _randn(4, 3, 3, 3, seed=1), _randn(4, seed=2)],
    ),
    "im2col": (
        lambda x: im2col(x, 3, padding=1),
        lambda x: F.unfold(x, 3, padding=1),
        lambda: [_randn(2, 3, 6, 6)],
    ),
    "depthwise_separable_conv2d": (
        lambda x, dw, pw: depthwise_separable_conv2d(x, dw, pw, padding=1),
        lambda x, dw, pw: F.conv2d(F.conv2d(x, dw, padding=1, groups=3), pw),
        lambda: [_randn(2, 3, 7, 7), _randn(3, 1, 3, 3, seed=1), _randn(5, 3, 1, 1, seed=2)],
    ),
    "scaled_dot_product_attention": (
        scaled_dot_product_attention,
        F.scaled_dot_product_attention,
        lambda: [_randn(2, 3, 7, 8), _randn(2, 3, 9, 8, seed=1), _randn(2, 3, 9, 8, seed=2)],
    ),
    "tiled_attention_causal": (
        lambda q, k, v: tiled_attention(q, k, v, block_size=4, is_causal=True),
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda: [_randn(2, 3, 10, 8), _randn(2, 3, 10, 8, seed=1), _randn(2, 3, 10, 8, seed=2)],
    ),
    "layer_norm": (
        lambda x, w, b: layer_norm(x, (16,), w, b),
        lambda x, w, b: F.layer_norm(x, (16,), w, b),
        lambda: [_randn(4, 5, 16) * 3 + 1, _randn(16, seed=1), _randn(16, seed=2)],
    ),
    "rms_norm": (
        lambda x, w: rms_norm(x, (16,), w, eps=1e-6),
        lambda x, w: F.rms_norm(x, (16,), w, eps=1e-6),
        lambda: [_randn(4, 5, 16) * 3 + 1, _randn(16, seed=1)],
    ),
    "batch_norm": (
        lambda x, w, b: batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        lambda: [_randn(8, 6, 3) * 2 + 1, _randn(6, seed=1), _randn(6, seed=2)],
    ),
}


def _on(tensors: list[torch.Tensor], device: str, dtype: torch.dtype, grad: bool) -> list[torch.Tensor]:
    return [t.to(device=device, dtype=dtype).requires_grad_(grad) for t in tensors]


def _forward_backward(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], seed: int = 3):
    """Output and the gradients of ``<output, g>`` for a fixed random ``g``."""
    out = fn(*inputs)
    g = _randn(*out.shape, seed=seed).to(out.device, out.dtype)
    grads = torch.autograd.grad(out, inputs, g)
    return out.detach(), [gr.detach() for gr in grads]


def _close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    tol = {k: v * scale for k, v in TOL[dtype].items()}
    torch.testing.assert_close(actual.cpu().double(), expected.cpu().double(), **tol)


def test_tf32_is_off_for_the_comparisons():
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False


@pytest.mark.parametrize("name", sorted(CASES))
def test_cpu_accelerator_parity_float32(name):
    ours, _, make = CASES[name]
    inputs = make()
    out_cpu, grads_cpu = _forward_backward(ours, _on(inputs, "cpu", torch.float32, True))
    out_acc, grads_acc = _forward_backward(ours, _on(inputs, OTHER, torch.float32, True))
    assert out_acc.device.type == torch.device(OTHER).type
    _close(out_acc, out_cpu, torch.float32)
    for g_acc, g_cpu in zip(grads_acc, grads_cpu):
        _close(g_acc, g_cpu, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", sorted(CASES))
def test_half_precision_on_the_accelerator(name, dtype):
    ours, builtin, make = CASES[name]
    inputs = make()
    out, grads = _forward_backward(ours, _on(inputs, OTHER, dtype, True))
    ref, ref_grads = _forward_backward(builtin, _on(inputs, OTHER, dtype, True))
    full, full_grads = _forward_backward(ours, _on(inputs, OTHER, torch.float32, True))
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    _close(out, ref, dtype, scale=2)  # both rounded to the same dtype, in different orders
    _close(out, full, dtype)
    for g, g_ref, g_full in zip(grads, ref_grads, full_grads):
        assert torch.isfinite(g).all()
        _close(g, g_ref, dtype, scale=4)
        _close(g, g_full, dtype, scale=4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_transformer_layer_matches_torch_on_the_accelerator(dtype):
    torch.manual_seed(0)
    reference = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    ours = TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    ours.load_state_dict(reference.state_dict())
    x = _randn(3, 7, 16)
    expected = reference.double()(x)
    reference.to(OTHER, dtype)
    ours.to(OTHER, dtype)
    with torch.no_grad():
        out = ours(x.to(OTHER, dtype))
        builtin = reference(x.to(OTHER, dtype))
    _close(out, expected, dtype, scale=2)
    _close(out, builtin, dtype, scale=2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_multihead_attention_matches_torch_on_the_accelerator(dtype):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, batch_first=True).to(OTHER, dtype)
    ours = MultiHeadAttention(16, 4, batch_first=True).to(OTHER, dtype)
    ours.load_state_dict(reference.state_dict())
    x = _randn(2, 6, 16).to(OTHER, dtype)
    with torch.no_grad():
        out, weights = ours(x, x, x)
        expected, expected_weights = reference(x, x, x)
    _close(out, expected, dtype, scale=2)
    _close(weights, expected_weights, dtype, scale=2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_lora_merge_in_half_precision(dtype):
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(32, 24), r=4, lora_alpha=8).to(OTHER, dtype)
    nn.init.normal_(layer.lora_B)  # B starts at zero: give the update something to merge
    x = _randn(5, 32).to(OTHER, dtype)
    with torch.no_grad():
        unmerged = layer(x)
        layer.merge()
        merged = layer(x)
    _close(merged, unmerged, dtype, scale=2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_manual_backprop_matches_autograd_on_the_accelerator(dtype):
    """Same gradients as autograd in float32; in half precision, as accurate as autograd's."""
    sizes = (12, 16, 8, 3)
    weights = [_randn(o, i, seed=s) / i**0.5 for s, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
    biases = [_randn(o, seed=10 + s) for s, o in enumerate(sizes[1:])]
    x, g = _randn(6, sizes[0], seed=20), _randn(6, sizes[-1], seed=21)
    leaves64 = _on([x, *weights, *biases], "cpu", torch.float64, True)  # the ground truth
    out64, _ = mlp_forward_with_cache(leaves64[0], leaves64[1:4], leaves64[4:], "relu")
    exact = torch.autograd.grad(out64, leaves64, g)
    leaves = _on([x, *weights, *biases], OTHER, dtype, True)
    out, cache = mlp_forward_with_cache(leaves[0], leaves[1:4], leaves[4:], "relu")
    with torch.no_grad():
        grad_x, grad_w, grad_b = mlp_backward(g.to(OTHER, dtype), cache)
    auto = torch.autograd.grad(out, leaves, g.to(OTHER, dtype))
    for mine, theirs, truth in zip([grad_x, *grad_w, *grad_b], auto, exact):
        assert mine.device.type == torch.device(OTHER).type and mine.dtype == dtype
        if dtype == torch.float32:
            _close(mine, theirs, dtype)
        else:  # rounding orders differ; both must be near the truth, relative to its size
            size = truth.abs().max().item()
            err_mine = (mine.double().cpu() - truth).abs().max().item()
            err_auto = (theirs.double().cpu() - truth).abs().max().item()
            assert err_mine <= 2 * err_auto + TOL[dtype]["atol"] * size


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_flop_counter_sees_fused_attention_on_cuda(dtype):
    if torch.device(OTHER).type != "cuda":
        pytest.skip("the fused SDPA kernels with FLOP formulas are CUDA's")
    config = EncoderConfig(num_layers=2, d_model=64, nhead=2, dim_feedforward=128)
    model = torch_encoder(config, device=OTHER, dtype=dtype).eval()
    x = torch.randn(2, 32, 64, device=OTHER, dtype=dtype)
    assert count_matmul_flops(model, x) == matmul_flops(config, 32, 2)
