"""§4 Attention is a soft lookup: softmax(QKᵀ/√d_k)V in four matmul-shaped steps.

A query is compared with every key (a dot product), the scores are scaled and turned into a
probability distribution over the keys (a row-wise softmax), and the answer is the matching
blend of the values. Three functions compute the same thing three ways:

* :func:`attention_steps` keeps the four intermediates of §4.2 so the book can draw them;
* :func:`scaled_dot_product_attention` is the same computation as one call, a drop-in for
  ``torch.nn.functional.scaled_dot_product_attention``;
* :func:`tiled_attention` streams over blocks of keys with an online softmax (§4.4, the
  FlashAttention idea) and never holds the full L×S score matrix.

:class:`MultiHeadAttention` (§4.3) wraps them with the projections of
``torch.nn.MultiheadAttention`` and loads its ``state_dict``.

Shape letters follow the torch docs of ``scaled_dot_product_attention``: ``N`` batch, ``H``
heads, ``L`` target (query) length, ``S`` source (key) length, ``E`` query/key feature size,
``Ev`` value feature size. Any number of leading batch dimensions ``...`` is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from la_dl._checks import check_floating, check_positive_int, check_same, check_tensor
from la_dl.device import by_device, default_device, describe_device
from la_dl.measure import time_and_peak_memory

__all__ = [
    "AttentionSteps",
    "attention_steps",
    "scaled_dot_product_attention",
    "tiled_attention",
    "MultiHeadAttention",
    "dot_product_variance",
    "SoftmaxStatistics",
    "softmax_saturation",
    "DigitsLookup",
    "digits_lookup",
    "score_matrix_bytes",
    "measure_attention_cost",
]

_HALF = (torch.float16, torch.bfloat16)


class AttentionSteps(NamedTuple):
    """The four intermediates of §4.2, each of shape ``(..., L, S)`` except ``output``."""

    scores: torch.Tensor  # QKᵀ                            (..., L, S)
    scaled: torch.Tensor  # QKᵀ·scale, masked with -inf    (..., L, S)
    weights: torch.Tensor  # softmax(scaled), rows sum to 1 (..., L, S)
    output: torch.Tensor  # weights · V                    (..., L, Ev)


# ----------------------------------------------------------------------------------------
# Boundary checks
# ----------------------------------------------------------------------------------------


def _check_qkv(fn: str, query: object, key: object, value: object) -> None:
    """Q (..., L, E), K (..., S, E), V (..., S, Ev) with equal leading dims, dtype, device."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, fn, t)
        check_floating(name, fn, t)  # type: ignore[arg-type]
        if t.ndim < 2:  # type: ignore[union-attr]
            raise ValueError(
                f"{fn}: expected {name} to have at least 2 dimensions (..., length, features) "
                f"but got shape {tuple(t.shape)}"  # type: ignore[union-attr]
            )
        if t.shape[-2] == 0:  # type: ignore[union-attr]
            raise ValueError(f"{fn}: expected {name} to have length >= 1 but got shape {tuple(t.shape)}")  # type: ignore[union-attr]
    check_same(fn, query=query, key=key, value=value)  # type: ignore[arg-type]
    q, k, v = query, key, value
    if not (q.ndim == k.ndim == v.ndim):  # type: ignore[union-attr]
        raise ValueError(
            f"{fn}: expected query, key and value to have the same number of dimensions but got "
            f"shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"  # type: ignore[union-attr]
        )
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:  # type: ignore[union-attr]
        raise ValueError(
            f"{fn}: expected query, key and value to share their leading (batch, head) "
            f"dimensions but got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"  # type: ignore[union-attr]
        )
    if q.shape[-1] != k.shape[-1]:  # type: ignore[union-attr]
        raise ValueError(
            f"{fn}: expected query and key to have the same feature size E but got "
            f"{q.shape[-1]} and {k.shape[-1]}"  # type: ignore[union-attr]
        )
    if k.shape[-2] != v.shape[-2]:  # type: ignore[union-attr]
        raise ValueError(
            f"{fn}: expected key and value to have the same length S but got "
            f"{k.shape[-2]} and {v.shape[-2]}"  # type: ignore[union-attr]
        )


def _check_scale(fn: str, scale: object) -> None:
    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"{fn}: expected scale to be a float or None but got {type(scale).__name__}")


def _check_mask(fn: str, attn_mask: object, query: torch.Tensor, L: int, S: int) -> None:
    """A bool mask (True = may attend) or an additive float mask, broadcastable to (..., L, S)."""
    mask = check_tensor("attn_mask", fn, attn_mask)
    if mask.dtype != torch.bool and mask.dtype != query.dtype:
        raise TypeError(
            f"{fn}: expected attn_mask to be bool or to have the dtype of query ({query.dtype}) "
            f"but got {mask.dtype}"
        )
    if mask.device != query.device:
        raise ValueError(
            f"{fn}: expected attn_mask on the device of query ({query.device}) but got {mask.device}"
        )
    target = (*query.shape[:-2], L, S)
    try:
        broadcast = torch.broadcast_shapes(mask.shape, target)
    except RuntimeError:
        broadcast = None
    if broadcast != target:
        raise ValueError(
            f"{fn}: expected attn_mask to broadcast to {target} (..., L, S) but got shape "
            f"{tuple(mask.shape)}"
        )


def _check_block_size(fn: str, block_size: object) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise TypeError(f"{fn}: expected block_size to be an int but got {type(block_size).__name__}")
    if block_size <= 0:
        raise ValueError(f"{fn}: expected block_size > 0 but got {block_size}")
    return block_size


# ----------------------------------------------------------------------------------------
# The four steps (§4.2)
# ----------------------------------------------------------------------------------------


def attention_steps(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> AttentionSteps:
    r"""Scaled dot-product attention, keeping the four intermediates of §4.2.

    .. math::
        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

    1. ``scores  = Q Kᵀ``: every query against every key, shape ``(..., L, S)``;
    2. ``scaled  = scores · scale`` (default ``scale = 1/√E``), then the mask: positions
       that may not attend become ``-inf``, an additive float mask is added;
    3. ``weights = softmax(scaled)`` row by row: each row is a probability distribution over
       the keys; a row with every key masked is all zeros (torch's convention), not NaN;
    4. ``output  = weights · V``: each output row is a convex combination of value rows.

    Parameters mirror :func:`torch.nn.functional.scaled_dot_product_attention`: ``attn_mask``
    is bool (``True`` = may attend) or a float mask added to the scaled scores, broadcastable
    to ``(..., L, S)``; ``is_causal`` lets query ``i`` see keys ``0..i`` only (top-left
    aligned, as torch does). Half-precision inputs are computed in float32 and the results
    cast back, as torch's math path does.
    """
    return _attention_steps("attention_steps", query, key, value, attn_mask, is_causal, scale)


def _attention_steps(
    fn: str,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None,
    is_causal: bool,
    scale: float | None,
) -> AttentionSteps:
    """The body of :func:`attention_steps`; ``fn`` names the caller in error messages."""
    _check_qkv(fn, query, key, value)
    _check_scale(fn, scale)
    *_, L, E = query.shape
    S = key.shape[-2]
    if attn_mask is not None:
        if is_causal:
            raise ValueError(f"{fn}: expected attn_mask=None when is_causal=True but got a mask")
        _check_mask(fn, attn_mask, query, L, S)
    if is_causal:
        # Query i may look at keys 0..i: the lower triangle, top-left aligned.
        attn_mask = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()  # (L, S)

    out_dtype = query.dtype
    if out_dtype in _HALF:  # accumulate in float32, as torch's math path does
        query, key, value = query.float(), key.float(), value.float()
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.float()
    scale = 1.0 / math.sqrt(E) if scale is None else scale

    # Step 1: all pairwise dot products QKᵀ.
    scores = query @ key.transpose(-2, -1)  # (..., L, S)
    # Step 2: scale by 1/√d_k (keeps Var = 1, §4.2), then mask.
    scaled = scores * scale  # (..., L, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scaled = scaled.masked_fill(~attn_mask, float("-inf"))  # (..., L, S)
        else:
            scaled = scaled + attn_mask  # (..., L, S)
    # Step 3: row-wise softmax. A row with no visible key would be 0/0 = NaN; like torch we
    # return zeros there, and we clear it *before* the softmax so no NaN reaches a gradient.
    dead_row = (scaled == float("-inf")).all(dim=-1, keepdim=True)  # (..., L, 1)
    weights = torch.softmax(scaled.masked_fill(dead_row, 0.0), dim=-1)  # (..., L, S)
    weights = weights.masked_fill(dead_row, 0.0)  # (..., L, S)
    # Step 4: blend the values.
    output = weights @ value  # (..., L, Ev)

    return AttentionSteps(*(t.to(out_dtype) for t in (scores, scaled, weights, output)))


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    r"""softmax(QKᵀ·scale + mask)·V, a drop-in for ``F.scaled_dot_product_attention`` (§4.2).

    Shapes: ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)`` →
    ``(..., L, Ev)``. ``dropout_p`` zeroes each attention weight with that probability and
    rescales the survivors by ``1/(1 - dropout_p)`` (as torch does; pass ``0.0`` at eval
    time). Everything else is as in :func:`attention_steps`, whose four steps this is.
    """
    fn = "scaled_dot_product_attention"
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)):
        raise TypeError(f"{fn}: expected dropout_p to be a float but got {type(dropout_p).__name__}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{fn}: expected 0 <= dropout_p <= 1 but got {dropout_p}")
    steps = _attention_steps(fn, query, key, value, attn_mask, is_causal, scale)
    if dropout_p == 0.0:
        return steps.output

    weights = steps.weights.float() if query.dtype in _HALF else steps.weights  # (..., L, S)
    keep = torch.rand_like(weights) >= dropout_p  # (..., L, S)
    if dropout_p == 1.0:
        weights = torch.zeros_like(weights)
    else:
        weights = weights * keep / (1.0 - dropout_p)  # (..., L, S)
    value = value.float() if query.dtype in _HALF else value
    return (weights @ value).to(query.dtype)  # (..., L, Ev)


# ----------------------------------------------------------------------------------------
# Tiled attention with an online softmax (§4.4)
# ----------------------------------------------------------------------------------------


def tiled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    block_size: int = 128,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    r"""softmax(QKᵀ·scale)·V one block of keys at a time, never forming the L×S matrix (§4.4).

    The FlashAttention idea (Dao et al., 2022): cut the queries into blocks of
    ``block_size`` rows; for each query block, stream over blocks of ``block_size`` keys
    and values and keep, per query row, three running quantities:

    * ``m``: the largest score seen so far (for a stable exponential);
    * ``l``: the softmax denominator ``Σ_j exp(s_j - m)`` over the keys seen so far;
    * ``acc``: the unnormalised output ``Σ_j exp(s_j - m) v_j``.

    When a new block raises the maximum from ``m`` to ``m'``, the old sums are rescaled by
    ``exp(m - m')``, so after the last block ``acc / l`` is exactly
    ``softmax(s) V``: the same numbers, in a different order of additions. Memory: the
    working set of one step is a ``(..., block, block)`` score tile plus ``block``-row
    statistics, whatever L and S are; what grows is the output being assembled, ``L·Ev``
    per batch entry. So the extra memory is ``O(block² + L)``, linear in L, and the L×S
    matrix never exists. With ``is_causal`` the key loop stops at the diagonal, skipping the
    upper triangle entirely (about half the work).

    Shapes as :func:`scaled_dot_product_attention`; ``block_size`` need not divide L or S.
    Autograd works through the loop (it stores each tile for the backward pass; a real
    FlashAttention kernel recomputes them instead).
    """
    fn = "tiled_attention"
    _check_qkv(fn, query, key, value)
    _check_scale(fn, scale)
    block_size = _check_block_size(fn, block_size)
    *batch, L, E = query.shape
    S, Ev = key.shape[-2], value.shape[-1]
    out_dtype = query.dtype
    if out_dtype in _HALF:  # accumulate in float32
        query, key, value = query.float(), key.float(), value.float()
    scale = 1.0 / math.sqrt(E) if scale is None else scale

    query = query.reshape(-1, L, E) * scale  # (B, L, E)  scale once, not per tile
    key_t = key.reshape(-1, S, E).transpose(-2, -1)  # (B, E, S)
    value = value.reshape(-1, S, Ev)  # (B, S, Ev)

    out_blocks = []
    for q_start in range(0, L, block_size):
        q_end = min(q_start + block_size, L)
        q_blk = query[:, q_start:q_end]  # (B, Lb, E)
        m = torch.full(q_blk.shape[:-1], float("-inf"), dtype=query.dtype, device=query.device)
        l_sum = torch.zeros_like(m)  # (B, Lb)
        acc = query.new_zeros(*q_blk.shape[:-1], Ev)  # (B, Lb, Ev)
        # Causal: query i sees keys 0..i, so keys at or past q_end are never needed.
        k_stop = min(q_end, S) if is_causal else S
        for k_start in range(0, k_stop, block_size):
            k_end = min(k_start + block_size, k_stop)
            s = q_blk @ key_t[:, :, k_start:k_end]  # (B, Lb, Sb)  scaled scores of this tile
            if is_causal and k_end > q_start + 1:  # the tile touches the diagonal
                rows = torch.arange(q_start, q_end, device=s.device)[:, None]  # (Lb, 1)
                cols = torch.arange(k_start, k_end, device=s.device)[None, :]  # (1, Sb)
                s = s.masked_fill(cols > rows, float("-inf"))  # (B, Lb, Sb)
            m_new = torch.maximum(m, s.amax(dim=-1))  # (B, Lb)   new running max m'
            p = torch.exp(s - m_new[..., None])  # (B, Lb, Sb)  exp(s - m')
            correction = torch.exp(m - m_new)  # (B, Lb)   exp(m - m') rescales old sums
            l_sum = l_sum * correction + p.sum(dim=-1)  # (B, Lb)
            acc = acc * correction[..., None] + p @ value[:, k_start:k_end]  # (B, Lb, Ev)
            m = m_new
        out_blocks.append(acc / l_sum[..., None])  # (B, Lb, Ev)  softmax(s)V for this block
    out = torch.cat(out_blocks, dim=1)  # (B, L, Ev)
    return out.reshape(*batch, L, Ev).to(out_dtype)  # (..., L, Ev)


# ----------------------------------------------------------------------------------------
# The experiments of §4.2: why √d_k, and a real lookup
# ----------------------------------------------------------------------------------------


def dot_product_variance(
    d_k: int, n_samples: int = 20_000, scale: float = 1.0, generator: torch.Generator | None = None
) -> float:
    """Empirical variance of ``scale · q·k`` for ``q, k`` with i.i.d. N(0, 1) entries (§4.2).

    ``q·k = Σᵢ qᵢkᵢ`` is a sum of ``d_k`` independent terms of mean 0 and variance
    ``E[qᵢ²]E[kᵢ²] = 1``, so its variance is ``d_k``; scaling by ``1/√d_k`` brings it back to 1.
    """
    check_positive_int("d_k", "dot_product_variance", d_k)
    q = torch.randn(n_samples, d_k, generator=generator, dtype=torch.float64)  # (n, d_k)
    k = torch.randn(n_samples, d_k, generator=generator, dtype=torch.float64)  # (n, d_k)
    dots = scale * (q * k).sum(dim=-1)  # (n,)  one q·k per sample
    return dots.var().item()


class SoftmaxStatistics(NamedTuple):
    """Averages over query rows of :func:`softmax_saturation`."""

    entropy: float  # mean entropy of a weight row (nats); log S for a uniform row, 0 for one-hot
    max_weight: float  # mean of the largest weight of a row
    jacobian_norm: float  # mean ‖∂softmax/∂scores‖_F = ‖diag(p) − ppᵀ‖_F per row


def softmax_saturation(
    d_k: int,
    scaled: bool = True,
    n_keys: int = 16,
    n_queries: int = 512,
    generator: torch.Generator | None = None,
) -> SoftmaxStatistics:
    """How peaked softmax(q·k [/√d_k]) is for random unit-variance q, k (§4.2).

    Without the scale the scores have standard deviation √d_k: for large d_k one score
    dominates, the row is nearly one-hot (entropy → 0) and the softmax Jacobian
    ``diag(p) − ppᵀ`` nearly vanishes, so almost no gradient reaches the scores.
    """
    fn = "softmax_saturation"
    check_positive_int("d_k", fn, d_k)
    q = torch.randn(n_queries, d_k, generator=generator, dtype=torch.float64)  # (L, d_k)
    k = torch.randn(n_keys, d_k, generator=generator, dtype=torch.float64)  # (S, d_k)
    scores = q @ k.T  # (L, S)
    if scaled:
        scores = scores / math.sqrt(d_k)
    p = torch.softmax(scores, dim=-1)  # (L, S)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)  # (L,)
    jac = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (L, S, S)  diag(p) − ppᵀ
    return SoftmaxStatistics(
        entropy=entropy.mean().item(),
        max_weight=p.amax(-1).mean().item(),
        jacobian_norm=torch.linalg.matrix_norm(jac).mean().item(),
    )


class DigitsLookup(NamedTuple):
    """A library of handwritten digits: keys are images, values are their one-hot labels."""

    query: torch.Tensor  # (L, 64) standardised images to look up
    key: torch.Tensor  # (S, 64) standardised images in the library
    value: torch.Tensor  # (S, 10) one-hot labels of the keys
    query_labels: torch.Tensor  # (L,) the true digit of each query
    key_labels: torch.Tensor  # (S,)


def digits_lookup(
    n_keys: int = 500,
    n_queries: int = 200,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    keys_per_digit: int | None = None,
) -> DigitsLookup:
    """The library metaphor of §4.1 on real data: scikit-learn's bundled 8×8 digits.

    Keys and queries are disjoint sets of images, each pixel standardised over the key set;
    the value of a key is its label as a one-hot row. Attention then returns, for each query
    image, a blend of labels weighted by similarity: a soft nearest-neighbour classifier.
    With ``keys_per_digit`` the library holds that many images of each digit, sorted by digit
    (``n_keys`` is then ``10 * keys_per_digit``), which makes small pictures readable.
    """
    from sklearn.datasets import load_digits

    fn = "digits_lookup"
    check_positive_int("n_keys", fn, n_keys)
    check_positive_int("n_queries", fn, n_queries)
    images, labels = load_digits(return_X_y=True)  # (1797, 64), (1797,)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    if keys_per_digit is not None:
        check_positive_int("keys_per_digit", fn, keys_per_digit)
        n_keys = 10 * keys_per_digit
        shuffled = torch.as_tensor(labels)[order]
        picked = torch.cat([order[shuffled == d][:keys_per_digit] for d in range(10)])  # by digit
        rest = order[~torch.isin(order, picked)]
        order = torch.cat([picked, rest])
    if n_keys + n_queries > len(labels):
        raise ValueError(
            f"{fn}: expected n_keys + n_queries <= {len(labels)} but got {n_keys + n_queries}"
        )
    x = torch.as_tensor(images, dtype=torch.float64)[order]  # (1797, 64)
    y = torch.as_tensor(labels)[order]  # (1797,)
    keys, queries = x[:n_keys], x[n_keys : n_keys + n_queries]  # (S, 64), (L, 64)
    # per pixel, over the library; a floor of 1 (pixels run 0..16) keeps the near-constant
    # border pixels from being blown up
    mean, std = keys.mean(0), keys.std(0).clamp_min(1.0)
    keys, queries = (keys - mean) / std, (queries - mean) / std
    values = torch.nn.functional.one_hot(y[:n_keys], 10).to(torch.float64)  # (S, 10)
    cast = {"device": device, "dtype": dtype}
    return DigitsLookup(queries.to(**cast), keys.to(**cast), values.to(**cast),
                        y[n_keys : n_keys + n_queries].to(device), y[:n_keys].to(device))


# ----------------------------------------------------------------------------------------
# Measuring the O(n²) cost (§4.4)
# ----------------------------------------------------------------------------------------


def score_matrix_bytes(n: int, heads: int = 8, element_size: int = 4, batch: int = 1) -> int:
    """Bytes of one ``(batch, heads, n, n)`` score matrix: what the naive form must store."""
    return batch * heads * n * n * element_size


def measure_attention_cost(
    sizes: Sequence[int] | None = None,
    device: torch.device | str | None = None,
    cpu_threads: int | None = 1,
) -> tuple[dict[str, list[tuple[int, float, int | None]]], str]:
    """``(n, seconds, peak_bytes)`` of naive, tiled and built-in attention for each n (§4.4).

    One batch entry, 8 heads, d_k = 64, float32; ``sizes`` default to n = 256…1024 on a CPU
    and 1024…8192 on an accelerator. Times and peaks come from :func:`la_dl.measure.time_and_peak_memory`
    (``peak_bytes`` is ``None`` where the platform cannot measure it). Also returns a
    description of the device. On a CPU the timings run on ``cpu_threads`` threads
    (``None``: torch's setting). One thread by default: on a machine shared with other
    processes, a loop of many small multi-threaded ops (the tiled form) stalls at every
    thread barrier and its time says more about the neighbours than about the algorithm.
    """
    import torch.nn.functional as F  # the built-in, only as the yardstick of this measurement

    device = torch.device(device) if device is not None else default_device()
    sizes = sizes or by_device([256, 512, 1024], [1024, 2048, 4096, 8192], device)
    methods = {"naive": scaled_dot_product_attention, "tiled": tiled_attention,
               "built-in": F.scaled_dot_product_attention}
    cost: dict[str, list[tuple[int, float, int | None]]] = {name: [] for name in methods}
    threads = torch.get_num_threads()
    if device.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    try:
        with torch.no_grad():
            for n in sizes:
                q, k, v = (torch.randn(1, 8, n, 64, device=device) for _ in range(3))  # (N, H, L, E)
                for name, fn in methods.items():
                    seconds, peak = time_and_peak_memory(
                        lambda fn=fn, q=q, k=k, v=v: fn(q, k, v), device, 1)
                    cost[name].append((n, seconds, peak))
    finally:
        torch.set_num_threads(threads)
    where = describe_device(device)
    if device.type == "cpu" and cpu_threads is not None:
        where += f" (timed on {cpu_threads} thread{'s' if cpu_threads > 1 else ''})"
    return cost, where


# ----------------------------------------------------------------------------------------
# Multi-head attention (§4.3)
# ----------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    r"""Concat(head₁, …, head_h) Wᴼ with headᵢ = Attention(XWᵢᵠ, XWᵢᴷ, XWᵢⱽ) (§4.3).

    Mirrors :class:`torch.nn.MultiheadAttention` (same constructor arguments, parameter
    names and ``forward`` signature), so ``load_state_dict`` of a torch module works and
    gives its outputs. The packed ``in_proj_weight`` of shape ``(3·E, E)`` stacks
    ``W^Q; W^K; W^V``; each of them, read ``E/h`` rows at a time, projects the embedding
    onto one head's ``d_k = E/h``-dimensional subspace: the heads live in a direct sum.

    Masks follow ``nn.MultiheadAttention`` (not ``scaled_dot_product_attention``): in a bool
    ``attn_mask`` or ``key_padding_mask``, ``True`` means *may not attend*.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        fn = "MultiHeadAttention"
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{fn}: expected {name} to be a positive int but got {value!r}")
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"{fn}: expected embed_dim divisible by num_heads but got embed_dim={embed_dim}, "
                f"num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{fn}: expected 0 <= dropout < 1 but got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        factory = {"device": device, "dtype": dtype}
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections and zero biases, as ``nn.MultiheadAttention`` does."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _merged_mask(
        self,
        attn_mask: torch.Tensor | None,
        key_padding_mask: torch.Tensor | None,
        N: int,
        L: int,
        S: int,
        dtype: torch.dtype,
    ) -> torch.Tensor | None:
        """Both masks as one additive float mask of shape (N, H, L, S), or None."""
        fn = "MultiHeadAttention"
        H = self.num_heads
        merged = None
        if attn_mask is not None:
            check_tensor("attn_mask", fn, attn_mask)
            if attn_mask.shape not in ((L, S), (N * H, L, S)):
                raise ValueError(
                    f"{fn}: expected attn_mask of shape {(L, S)} or {(N * H, L, S)} but got "
                    f"{tuple(attn_mask.shape)}"
                )
            merged = _as_additive(attn_mask, dtype).reshape(-1, H if attn_mask.ndim == 3 else 1, L, S)
        if key_padding_mask is not None:
            check_tensor("key_padding_mask", fn, key_padding_mask)
            if key_padding_mask.shape != (N, S):
                raise ValueError(
                    f"{fn}: expected key_padding_mask of shape {(N, S)} but got "
                    f"{tuple(key_padding_mask.shape)}"
                )
            padding = _as_additive(key_padding_mask, dtype)[:, None, None, :]  # (N, 1, 1, S)
            merged = padding if merged is None else merged + padding  # (N, H, L, S)
        return merged

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(output, weights)`` for inputs ``(N, L, E)`` if ``batch_first`` else ``(L, N, E)``.

        ``weights`` is ``(N, L, S)`` averaged over heads, ``(N, H, L, S)`` with
        ``average_attn_weights=False``, or ``None`` with ``need_weights=False``. As in torch,
        ``is_causal`` is only a hint: pass the causal mask itself as ``attn_mask``.
        """
        fn = "MultiHeadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_tensor(name, fn, t)
            if t.ndim != 3 or t.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"{fn}: expected {name} of shape (N, L, {self.embed_dim}) or "
                    f"(L, N, {self.embed_dim}) but got {tuple(t.shape)}"
                )
        if not self.batch_first:  # torch's default layout is (L, N, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        N, L, E = query.shape
        S = key.shape[1]
        H, D = self.num_heads, self.head_dim
        if key.shape[0] != N or value.shape[:2] != key.shape[:2]:
            raise ValueError(
                f"{fn}: expected key and value with the batch size of query ({N}) and one "
                f"length S but got key {tuple(key.shape)}, value {tuple(value.shape)}"
            )

        # Project onto the h subspaces: W^Q, W^K, W^V are the three blocks of in_proj_weight.
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)  # each (E, E)
        b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
        q = _project(query, w_q, b_q).view(N, L, H, D).transpose(1, 2)  # (N, H, L, D)
        k = _project(key, w_k, b_k).view(N, S, H, D).transpose(1, 2)  # (N, H, S, D)
        v = _project(value, w_v, b_v).view(N, S, H, D).transpose(1, 2)  # (N, H, S, D)

        mask = self._merged_mask(attn_mask, key_padding_mask, N, L, S, q.dtype)  # (N|1, H|1, L, S)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            weights = attention_steps(q, k, v, attn_mask=mask).weights  # (N, H, L, S)
            if dropout_p > 0.0:
                weights = nn.functional.dropout(weights, p=dropout_p)
            heads = weights @ v  # (N, H, L, D)
        else:
            weights = None
            heads = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)

        # Concat(head_1..head_h) W^O: put the heads side by side, then mix them.
        concat = heads.transpose(1, 2).reshape(N, L, E)  # (N, L, E)
        out = _project(concat, self.out_proj.weight, self.out_proj.bias)  # (N, L, E)
        if not self.batch_first:
            out = out.transpose(0, 1)  # (L, N, E)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return out, weights


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x Wᵀ + b, the linear map of §1 (``weight`` is (out, in) as in ``nn.Linear``)."""
    out = x @ weight.transpose(0, 1)  # (..., out)
    return out if bias is None else out + bias


def _as_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """nn.MultiheadAttention's convention: a bool ``True`` forbids, a float mask is added."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)
