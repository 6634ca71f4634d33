"""Backprop by hand vs autograd (§2.2) on an MLP: time, and the gradients compared.

Both sides run the same forward (``la_dl.backprop.mlp_forward_with_cache``); then

* ``la_dl``: :func:`la_dl.backprop.mlp_backward`, the four steps of §2.1 layer by layer
  (``∂W = Δᵀ X``, ``∂b = Δᵀ 1``, ``∂X = Δ W``);
* ``torch``: ``out.backward(grad)``, autograd walking the graph the forward recorded.

Checks: the manual pass within 1.1x of autograd's time, and the gradients identical
(the largest difference over every ∂W, ∂b and ∂X is reported; the check is exact equality
in float64, where both sides perform the same products in the same order).
"""

from __future__ import annotations

import torch

from bench._harness import Check, Context, Result, compare
from la_dl.backprop import mlp_backward, mlp_forward_with_cache
from la_dl.flops import mlp_backward_cost

NAME = "backprop"
RATIO = 1.1


def _problem(B: int, sizes: tuple[int, ...], device: torch.device, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    weights = [(torch.randn(o, i, generator=g, dtype=torch.float64) / i**0.5).to(device, dtype)
               for i, o in zip(sizes[:-1], sizes[1:])]  # (H_out, H_in) each
    biases = [torch.zeros(o, device=device, dtype=dtype) for o in sizes[1:]]
    x = torch.randn(B, sizes[0], generator=g, dtype=torch.float64).to(device, dtype)  # (B, H_0)
    grad_out = torch.randn(B, sizes[-1], generator=g, dtype=torch.float64).to(device, dtype)
    return x, weights, biases, grad_out


def manual(x, weights, biases, grad_out):
    out, cache = mlp_forward_with_cache(x, weights, biases, "relu")
    grad_x, grad_w, grad_b = mlp_backward(grad_out, cache)
    return [grad_x, *grad_w, *grad_b]


def autograd(x, weights, biases, grad_out):
    leaves = [t.detach().requires_grad_() for t in (x, *weights, *biases)]
    x_, ws, bs = leaves[0], leaves[1:1 + len(weights)], leaves[1 + len(weights):]
    out, _ = mlp_forward_with_cache(x_, ws, bs, "relu")
    out.backward(grad_out)
    return [t.grad for t in leaves]


def max_gradient_difference(x, weights, biases, grad_out) -> float:
    """Largest |manual − autograd| over every gradient (∂X, each ∂W, each ∂b)."""
    pairs = zip(manual(x, weights, biases, grad_out), autograd(x, weights, biases, grad_out))
    return max((a - b).abs().max().item() for a, b in pairs)


def run(ctx: Context) -> list[Result]:
    B = ctx.pick(1024, 128)
    sizes = ctx.pick((1024, 1024, 1024, 10), (256, 256, 10))
    results = []
    for dtype in (torch.float32, torch.float64):
        args = _problem(B, sizes, ctx.device, dtype)
        diff = max_gradient_difference(*args)
        fns = {"la_dl": lambda args=args: manual(*args), "torch": lambda args=args: autograd(*args)}
        seconds, ratio = compare(fns, ctx)
        cost = mlp_backward_cost(B, sizes)
        name = str(dtype).removeprefix("torch.")
        checks = [Check("manual / autograd time (fwd+bwd)", ratio, "<=", RATIO)]
        if dtype == torch.float64:
            checks.append(Check("max |grad difference| (float64)", diff, "<=", 0.0, "identical"))
        results.append(Result(
            NAME, f"B={B}, widths {sizes} {name}", seconds, ratio=ratio,
            metrics={"backward GFLOP": cost.flops / 1e9, "max |grad diff|": diff}, checks=checks,
        ))
    return results
