"""Widgets of §4: d_k and the √d_k scale, the number of heads, the sequence length."""

from __future__ import annotations

import math
from collections.abc import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from la_dl import attention
from la_dl.plots._style import BLUE, CMAP_SEQUENTIAL, GREY, ORANGE, RED
from la_dl.widgets import explorable

__all__ = ["scaling_explorer", "heads_explorer", "sequence_length_explorer"]


def scaling_explorer(
    d_values: Sequence[int] = (1, 4, 16, 64, 256, 1024), n_keys: int = 16, seed: int = 0
) -> W.VBox:
    """Pick d_k and switch the 1/√d_k scale on or off: the scores and one query's weights."""

    def draw(d_k: int, scaling: str):
        gen = torch.Generator().manual_seed(seed)
        q = torch.randn(64, d_k, generator=gen, dtype=torch.float64)  # (L, d_k)
        k = torch.randn(n_keys, d_k, generator=gen, dtype=torch.float64)  # (S, d_k)
        scale = 1 / math.sqrt(d_k) if scaling == "on" else 1.0
        steps = attention.attention_steps(q, k, k, scale=scale)
        w = steps.weights  # (L, S)
        entropy = -(w * w.clamp_min(1e-300).log()).sum(-1).mean().item()
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7, 2.8))
        ax1.hist(steps.scaled.flatten().numpy(), bins=30, color=BLUE if scaling == "on" else RED)
        ax1.set(xlabel="score fed to softmax", ylabel="count",
                title=f"std of the scores: {steps.scaled.std().item():.1f}")
        order = torch.argsort(w[0], descending=True)
        ax2.bar(range(n_keys), w[0, order].numpy(), color=BLUE if scaling == "on" else RED)
        ax2.set(ylim=(0, 1), xlabel="key (sorted)", ylabel="weight", title="weights of query 0")
        fig.tight_layout()
        summary = (f"d_k = {d_k}, scaling {scaling}: mean entropy <b>{entropy:.2f}</b> nats "
                   f"(uniform: {math.log(n_keys):.2f}); mean largest weight "
                   f"<b>{w.amax(-1).mean().item():.2f}</b>")
        return fig, summary

    return explorable(draw, {"d_k": list(d_values), "scaling": ["on", "off"]},
                      labels={"d_k": "d_k", "scaling": "1/√d_k scaling"},
                      initial={"d_k": 64, "scaling": "on"} if 64 in d_values else None,
                      title="Why divide by √d_k?")


def heads_explorer(
    head_counts: Sequence[int] = (1, 2, 4, 8), d_model: int = 32, seq_len: int = 10
) -> W.VBox:
    """Pick the number of heads h: one map per head, each in a d_model/h subspace."""
    from la_dl.plots.attention import example_head_weights

    def draw(heads: int):
        w = example_head_weights(heads, seq_len, d_model)  # (H, L, L)
        cols = min(heads, 4)
        rows = math.ceil(heads / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(7, 1.9 * rows + 0.3), squeeze=False)
        for h, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if h < heads:
                ax.imshow(w[h].numpy(), cmap=CMAP_SEQUENTIAL, vmin=0)
                ax.set_title(f"head {h + 1}", fontsize=8)
            else:
                ax.axis("off")
        fig.tight_layout()
        params = sum(p.numel() for p in attention.MultiHeadAttention(d_model, heads).parameters())
        summary = (f"h = {heads} heads of d_k = {d_model}/{heads} = <b>{d_model // heads}</b> "
                   f"dimensions each; parameters <b>{params:,}</b> = 4·d² + 4·d, the same for "
                   f"every h: the heads split d_model, they do not copy it")
        return fig, summary

    return explorable(draw, {"heads": list(head_counts)}, labels={"heads": "heads h"},
                      title="Multi-head attention: one map per subspace")


def sequence_length_explorer(
    lengths: Sequence[int] = (256, 512, 1024, 2048, 4096, 8192, 16384),
    heads: int = 8,
    head_dim: int = 64,
    block_size: int = 128,
) -> W.VBox:
    """Pick n: the memory the naive form needs (n² per head) against a tiled working set."""
    ns = np.array(lengths, dtype=float)

    def naive_bytes(n: float) -> float:
        return 3 * heads * n * n * 4  # scores, scaled scores, weights: float32 (H, n, n)

    def tiled_bytes(n: float) -> float:
        tile = heads * block_size * block_size * 4  # one (H, block, block) tile
        return 3 * tile + heads * n * head_dim * 4  # + the output (H, n, d)

    def draw(n: int):
        fig, ax = plt.subplots(figsize=(7, 2.8))
        ax.plot(ns, [naive_bytes(x) / 2**20 for x in ns], "o-", color=RED,
                label="naive: three (H, n, n) matrices")
        ax.plot(ns, [tiled_bytes(x) / 2**20 for x in ns], "s-", color=BLUE,
                label=f"tiled: (H, {block_size}, {block_size}) tiles + output")
        ax.plot([n, n], [tiled_bytes(n) / 2**20, naive_bytes(n) / 2**20], "-", color=ORANGE, lw=3)
        ax.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="MiB (float32)",
               title=f"{heads} heads, d = {head_dim}")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
        fig.tight_layout()
        flops = 4 * heads * n * n * head_dim
        summary = (f"n = {n}: naive <b>{naive_bytes(n) / 2**20:,.0f} MiB</b>, tiled "
                   f"<b>{tiled_bytes(n) / 2**20:,.1f} MiB</b> "
                   f"({naive_bytes(n) / tiled_bytes(n):,.0f}× less); both do "
                   f"{flops / 1e9:,.1f} GFLOP <span style='color:{GREY}'>(4·H·n²·d: "
                   f"QKᵀ and weights·V)</span>")
        return fig, summary

    return explorable(draw, {"n": list(lengths)}, labels={"n": "sequence length n"},
                      initial={"n": 2048} if 2048 in lengths else None,
                      title="The O(n²) memory of attention, and what tiling saves")
