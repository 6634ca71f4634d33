"""Widgets of §2: the shapes of backprop for a layer and a batch the reader chooses."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import torch
import torch.nn.functional as F

from la_dl import backprop
from la_dl.plots.backprop import outer_product_sum
from la_dl.widgets import explorable

__all__ = ["backprop_shapes_explorer"]


def backprop_shapes_explorer(
    batch_sizes: Sequence[int] = (1, 2, 4, 8),
    d_outs: Sequence[int] = (2, 3, 6),
    d_in: int = 5,
) -> W.VBox:
    """Pick a batch size B and a layer width d_out: ΔᵀX as B outer products, every shape listed.

    The summary checks la_dl's manual gradients against autograd on the same layer.
    """

    def draw(batch: int, d_out: int):
        fig = outer_product_sum(batch=batch, d_in=d_in, d_out=d_out, seed=batch * 10 + d_out,
                                max_terms=4, figsize=(7, 2.3))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, d_in, dtype=torch.float64, generator=g)
        weight = torch.randn(d_out, d_in, dtype=torch.float64, generator=g)
        bias = torch.randn(d_out, dtype=torch.float64, generator=g)
        z, cache = backprop.linear_forward(x, weight, bias)
        h, act_cache = backprop.relu_forward(z)
        grad_h = torch.randn_like(h)
        delta = backprop.relu_backward(grad_h, act_cache)
        grad_x, grad_w, grad_b = backprop.linear_backward(delta, cache)
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        F.relu(F.linear(*leaves)).backward(grad_h)
        err = max((mine - leaf.grad).abs().max().item()
                  for mine, leaf in zip((grad_x, grad_w, grad_b), leaves))
        rows = [
            ("X", x), ("W", weight), ("b", bias), ("Z = XWᵀ + 1bᵀ", z), ("Δ = ∂L/∂H ⊙ σ'(Z)", delta),
            ("∂L/∂W = ΔᵀX", grad_w), ("∂L/∂b = Δᵀ1", grad_b), ("∂L/∂X = ΔW", grad_x),
        ]
        cells = "".join(f"<td style='padding:0 8px'>{name}<br><code>{tuple(t.shape)}</code></td>"
                        for name, t in rows)
        summary = (
            f"<table><tr>{cells}</tr></table>"
            f"ReLU layer, B = {batch}: largest |la_dl − autograd| over all three gradients = "
            f"<b>{err:.1e}</b>"
        )
        return fig, summary

    return explorable(
        draw,
        {"batch": list(batch_sizes), "d_out": list(d_outs)},
        labels={"batch": "batch size B", "d_out": "layer width d_out"},
        title=f"Backprop through one layer (d_in = {d_in}): shapes and the outer-product sum",
    )
