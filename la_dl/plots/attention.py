"""Figures of §4: attention is a soft lookup."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from la_dl import attention
from la_dl.plots import figure
from la_dl.plots._style import BLUE, CMAP_DIVERGING, CMAP_SEQUENTIAL, GREEN, GREY, ORANGE, RED

__all__ = ["four_panels", "dot_product_variance", "softmax_saturation", "head_maps", "attention_cost"]


def _heatmap(ax, matrix: torch.Tensor, title: str, cmap: str, diverging: bool, **labels) -> None:
    data = matrix.detach().cpu().double()
    finite = data[torch.isfinite(data)]
    lim = finite.abs().max().item() if finite.numel() else 1.0
    kwargs = {"vmin": -lim, "vmax": lim} if diverging else {"vmin": 0.0, "vmax": max(lim, 1e-12)}
    im = ax.imshow(data.numpy(), cmap=cmap, aspect="auto", **kwargs)
    ax.set_title(title)
    ax.set(**labels)
    ax.grid(False)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)


@figure("s4_four_panels")
def four_panels(
    steps: attention.AttentionSteps | None = None,
    key_labels: Sequence[int] | None = None,
    query_labels: Sequence[int] | None = None,
) -> Figure:
    """QKᵀ, QKᵀ/√d_k, softmax weights and output, left to right, for one lookup (§4.2).

    By default: 6 query digits looked up in a library of 20 digit images (keys) whose values
    are their one-hot labels (:func:`la_dl.attention.digits_lookup`).
    """
    if steps is None:
        lib = attention.digits_lookup(n_queries=6, seed=1, keys_per_digit=2)
        steps = attention.attention_steps(lib.query, lib.key, lib.value)
        key_labels, query_labels = lib.key_labels.tolist(), lib.query_labels.tolist()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.1), gridspec_kw={"width_ratios": [4, 4, 4, 3]})
    L, S = steps.scores.shape[-2:]
    panels = [
        (steps.scores, "1. scores $QK^\\top$", CMAP_DIVERGING, True),
        (steps.scaled, "2. scaled $QK^\\top/\\sqrt{d_k}$", CMAP_DIVERGING, True),
        (steps.weights, "3. weights: softmax per row", CMAP_SEQUENTIAL, False),
        (steps.output, "4. output = weights $\\cdot V$", CMAP_SEQUENTIAL, False),
    ]
    for ax, (matrix, title, cmap, diverging) in zip(axes, panels):
        _heatmap(ax, matrix.reshape(-1, matrix.shape[-2], matrix.shape[-1])[0], title, cmap,
                 diverging)
    for ax in axes[:3]:
        ax.set_xlabel("key (library image)" + (", labelled by its digit" if key_labels else ""))
        if key_labels is not None:
            ax.set_xticks(range(S), [str(d) for d in key_labels], fontsize=7)
    axes[3].set_xlabel("value column (digit 0–9)")
    axes[3].set_xticks(range(steps.output.shape[-1]))
    for ax in axes:
        ax.set_ylabel("query digit" + (" (true label)" if query_labels else ""))
        if query_labels is not None:
            ax.set_yticks(range(L), [f"true {d}" for d in query_labels], fontsize=7)
    fig.tight_layout()
    return fig


@figure("s4_dot_product_variance")
def dot_product_variance(
    d_values: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    n_samples: int = 10_000,
    seed: int = 0,
    variances: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """Empirical Var(q·k) and Var(q·k/√d_k) against d_k, with the predictions d_k and 1."""
    if variances is None:
        gen = torch.Generator().manual_seed(seed)
        variances = {
            "raw": [attention.dot_product_variance(d, n_samples, 1.0, gen) for d in d_values],
            "scaled": [attention.dot_product_variance(d, n_samples, 1 / math.sqrt(d), gen)
                       for d in d_values],
        }
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(d_values, d_values, "-", color=GREY, lw=1, label="prediction $d_k$")
    ax.plot(d_values, [1.0] * len(d_values), "--", color=GREY, lw=1, label="prediction 1")
    ax.plot(d_values, variances["raw"], "o", color=RED, label="measured Var$(q\\cdot k)$")
    ax.plot(d_values, variances["scaled"], "s", color=BLUE,
            label="measured Var$(q\\cdot k/\\sqrt{d_k})$")
    ax.set(xscale="log", yscale="log", xlabel="$d_k$", ylabel="variance",
           title=f"Variance of a dot product of N(0,1) vectors ({n_samples:,} samples each)")
    ax.set_xscale("log", base=2)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


@figure("s4_softmax_saturation")
def softmax_saturation(
    d_values: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    n_keys: int = 16,
    seed: int = 0,
) -> Figure:
    """Entropy of the weights and size of the softmax Jacobian vs d_k, with and without √d_k."""
    gen = torch.Generator().manual_seed(seed)
    stats = {
        scaled: [attention.softmax_saturation(d, scaled, n_keys, generator=gen) for d in d_values]
        for scaled in (True, False)
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for scaled, color, marker, label in ((True, BLUE, "s", "scaled by $1/\\sqrt{d_k}$"),
                                         (False, RED, "o", "unscaled")):
        ax1.plot(d_values, [s.entropy for s in stats[scaled]], marker + "-", color=color, label=label)
        ax2.plot(d_values, [s.jacobian_norm for s in stats[scaled]], marker + "-", color=color,
                 label=label)
    ax1.axhline(math.log(n_keys), color=GREY, lw=1, ls="--", label=f"uniform: log {n_keys}")
    ax1.set(xlabel="$d_k$", ylabel="entropy (nats)", title="How spread out the weights are")
    ax2.set(xlabel="$d_k$", ylabel="$\\|\\mathrm{diag}(p) - pp^\\top\\|_F$",
            title="Gradient through the softmax")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.suptitle(f"Softmax over {n_keys} keys of random N(0,1) queries and keys", fontsize=10)
    fig.tight_layout()
    return fig


@figure("s4_head_maps")
def head_maps(
    weights: torch.Tensor | None = None,
    num_heads: int = 4,
    seq_len: int = 10,
    d_model: int | None = None,
) -> Figure:
    """One attention map per head: ``weights`` of shape (H, L, S) (§4.3).

    By default: :func:`example_head_weights`, a seeded random
    :class:`~la_dl.attention.MultiHeadAttention` (``d_model`` = 32 unless given) applied to
    sinusoidal positions plus noise, the layer the §4.3 notebook draws; each head's own
    projections give it its own pattern of relevance. Pass ``d_model`` with your own
    ``weights`` to have each title show ``d_k = d_model / H``.
    """
    if weights is None:
        d_model = d_model or 32
        weights = example_head_weights(num_heads, seq_len, d_model)
    H = weights.shape[0]
    fig, axes = plt.subplots(1, H, figsize=(min(2.6 * H + 0.6, 12), 2.8), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(weights[h].detach().cpu().numpy(), cmap=CMAP_SEQUENTIAL, vmin=0)
        ax.set_title(f"head {h + 1}" + (f" ($d_k$ = {d_model // H})" if d_model else ""), fontsize=9)
        ax.set(xlabel="key position", ylabel="query position" if h == 0 else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(False)
    fig.tight_layout()
    return fig


def example_head_weights(num_heads: int, seq_len: int, d_model: int = 32, seed: int = 0) -> torch.Tensor:
    """(H, L, L) weights of a seeded random float64 MultiHeadAttention on positions + noise.

    The input is ``sinusoidal_positional_encoding(seq_len, d_model) + 0.5·N(0, 1)`` noise drawn
    from its own generator; the layer is initialised right after ``torch.manual_seed(seed)``,
    exactly like an ``nn.MultiheadAttention`` created at that point (the §4.3 notebook checks
    that its maps equal these).
    """
    from la_dl.transformer import sinusoidal_positional_encoding

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mha = attention.MultiHeadAttention(d_model, num_heads, batch_first=True, dtype=torch.float64)
    noise = torch.randn(seq_len, d_model, generator=gen, dtype=torch.float64)  # (L, E)
    x = sinusoidal_positional_encoding(seq_len, d_model, dtype=torch.float64) + 0.5 * noise  # (L, E)
    with torch.no_grad():
        _, w = mha(x[None], x[None], x[None], average_attn_weights=False)  # (1, H, L, L)
    return w[0]  # (H, L, L)


@figure("s4_attention_cost")
def attention_cost(
    measurements: Mapping[str, Sequence[tuple[int, float, int | None]]] | None = None,
    device_name: str = "",
) -> Figure:
    """Measured time and peak extra memory vs sequence length n, one line per method (§4.4).

    ``measurements[method]`` is a list of ``(n, seconds, peak_bytes)``; by default they are
    taken now on the default device (8 heads, d = 64; n up to 1024 on a CPU, 8192 on a GPU).
    """
    if measurements is None:
        measurements, device_name = attention.measure_attention_cost()
    colors = {"naive": RED, "tiled": BLUE, "built-in": GREEN}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for method, points in measurements.items():
        ns = [p[0] for p in points]
        ax1.plot(ns, [p[1] * 1e3 for p in points], "o-", color=colors.get(method, ORANGE),
                 label=method)
        mem = [(n, p[2] / 2**20) for n, p in zip(ns, points) if p[2]]
        if mem:
            ax2.plot(*zip(*mem), "o-", color=colors.get(method, ORANGE), label=method)
    all_n = sorted({p[0] for pts in measurements.values() for p in pts})
    if all_n:
        ref = np.array(all_n, dtype=float)
        ax2.plot(ref, 4 * attention.score_matrix_bytes(1, heads=8) * ref**2 / 2**20, ":",
                 color=GREY, label="$4\\cdot$ score matrix ($\\propto n^2$)")
    ax1.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="ms per call",
            title="time (best of a few calls)")
    ax2.set(xscale="log", yscale="log", xlabel="sequence length n", ylabel="MiB",
            title="peak extra memory of one call")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    if device_name:
        fig.suptitle(device_name, fontsize=9, color=GREY)
    fig.tight_layout()
    return fig
