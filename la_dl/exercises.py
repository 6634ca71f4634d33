"""Checks for the chapter's exercises: call ``check_…(answer)`` in the notebook.

Every check recomputes the right answer with torch's own building blocks (``nn.Linear``,
``F.unfold``, ``F.batch_norm``, ``torch.autograd``, ``FlopCounterMode``, …), never from a
stored number, and then

* prints one line starting with ``✓`` when the answer is right, or
* raises :class:`WrongAnswer` (an ``AssertionError``) whose message says *what* is off and
  gives a hint towards the fix (not just "False").

An answer of the wrong kind (a string where a number belongs, a tensor of the wrong shape)
raises ``TypeError``/``ValueError`` in the style of the rest of ``la_dl``.

Exercises are numbered across the book: 1–4 warm-up, 5–8 deeper, 9–12 code, 13–15
open-ended (the pages ``chapters/10_exercises*.ipynb``). Exercise 7 (a proof) and 13–14
(arguments) have no check; their worked solutions are in the book.

The last part of the module holds the pieces of the worked solutions that are too long for a
notebook cell: Exercise 9's toy task and model (:func:`which_comes_first`,
:class:`SequenceClassifier`) and Exercise 14's LoRA fit and spectrum measure
(:func:`fit_lora_adapter`, :func:`directions_for_energy`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from la_dl._checks import check_floating, check_ndim, check_positive_int, check_tensor
from la_dl.lora import LoRALinear
from la_dl.transformer import TransformerEncoder, TransformerEncoderLayer, sinusoidal_positional_encoding

__all__ = [
    "WrongAnswer",
    "check_orthogonal_layer",
    "check_mlp_shapes",
    "check_mlp_parameter_count",
    "check_multihead_parameter_counts",
    "check_norm_dims",
    "check_qk_statistics",
    "check_im2col",
    "check_residual_jacobian",
    "check_sequence_classifier",
    "check_lora_parameter_counts",
    "check_normalized",
    "check_bert_flops",
    "measure_encoder_flops",
    "check_conv3d_scaling",
    "which_comes_first",
    "SequenceClassifier",
    "fit_lora_adapter",
    "directions_for_energy",
]


class WrongAnswer(AssertionError):
    """A wrong answer to an exercise; the message explains what is off and hints at the fix."""


def _ok(exercise: str, message: str) -> None:
    print(f"✓ {exercise}: {message}")


def _wrong(exercise: str, message: str) -> WrongAnswer:
    return WrongAnswer(f"{exercise}: {message}")


def _number(fn: str, name: str, value: object) -> float:
    """A real number (int, float or 0-d tensor); bools and strings are rejected."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}: expected {name} to be a number but got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{fn}: expected {name} to be finite but got {value}")
    return float(value)


def _integer(fn: str, name: str, value: object) -> int:
    number = _number(fn, name, value)
    if number != int(number):
        raise ValueError(f"{fn}: expected {name} to be a whole number but got {value}")
    return int(number)


def _shape(fn: str, name: str, value: object) -> tuple[int, ...]:
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{fn}: expected {name} to be a tuple of ints but got {type(value).__name__}")
    return tuple(_integer(fn, f"{name}[{i}]", v) for i, v in enumerate(value))


def _dims(fn: str, name: str, value: object, ndim: int) -> tuple[int, ...]:
    """A set of dimensions of a ``ndim``-D tensor, negatives wrapped, sorted."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{fn}: expected {name} to be a tuple of dims but got {type(value).__name__}")
    dims = []
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"{fn}: expected {name} to hold ints but got {type(d).__name__}")
        if not -ndim <= d < ndim:
            raise ValueError(f"{fn}: expected the dims in {name} to lie in [-{ndim}, {ndim}) but got {d}")
        dims.append(d % ndim)
    if not dims:
        raise ValueError(f"{fn}: expected {name} to name at least one dim but got none")
    return tuple(sorted(set(dims)))


def _linears(sizes: Sequence[int], bias: bool = True) -> nn.Sequential:
    return nn.Sequential(*(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:])))


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- warm-up (1–4)


def check_orthogonal_layer(weight: torch.Tensor, atol: float = 1e-5) -> None:
    """Exercise 1: an orthogonal ``W`` (``WᵀW = I``) keeps ‖·‖₂ forward and backward.

    Checks that ``weight`` is square and orthogonal, then measures on random vectors that
    ``‖Wx‖ = ‖x‖`` (forward) and, with autograd, that the backward map ``g ↦ Wᵀg`` keeps
    ‖g‖ (backward).
    """
    fn, ex = "check_orthogonal_layer", "Exercise 1"
    check_tensor("weight", fn, weight)
    if weight.ndim != 2:
        raise ValueError(f"{fn}: expected weight to be a 2-D matrix but got shape {tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise TypeError(f"{fn}: expected weight to have a floating-point dtype but got {weight.dtype}")
    m, d = weight.shape
    if m != d:
        raise _wrong(ex, f"W has shape {(m, d)}; an orthogonal matrix is square. A tall W with "
                         "orthonormal columns keeps norms forward, but Wᵀ maps R^m onto a "
                         f"{d}-dim space and shrinks gradients outside it.")
    W = weight.detach().to(torch.float64)
    gap = (W.T @ W - torch.eye(d, dtype=W.dtype, device=W.device)).abs().max().item()
    if gap > atol:
        raise _wrong(ex, f"WᵀW differs from I by up to {gap:.2e}. Build W from a QR "
                         "decomposition, e.g. torch.linalg.qr(torch.randn(d, d)).Q.")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, d, generator=g, dtype=W.dtype).to(W.device).requires_grad_(True)  # (B, d)
    upstream = torch.randn(8, m, generator=g, dtype=W.dtype).to(W.device)  # ∂L/∂h: (B, m)
    h = x @ W.T  # (B, m)
    (grad_x,) = torch.autograd.grad(h, x, upstream)  # Wᵀ g per row: (B, d)
    forward = (h.norm(dim=1) / x.norm(dim=1) - 1).abs().max().item()
    backward = (grad_x.norm(dim=1) / upstream.norm(dim=1) - 1).abs().max().item()
    if max(forward, backward) > 1e-6:  # WᵀW within atol of I, yet the norms drift measurably
        raise _wrong(ex, f"the norms changed by up to {max(forward, backward):.1e} (relative)")
    _ok(ex, "WᵀW = I, and on 8 random vectors ‖Wx‖ = ‖x‖ and ‖Wᵀg‖ = ‖g‖ to 1e-6")


def check_mlp_shapes(shapes: Sequence[Sequence[int]], sizes: Sequence[int] = (100, 256, 128, 10)) -> None:
    """Exercise 2: the weight shapes of an MLP with layer widths ``sizes``, as ``(out, in)``."""
    fn, ex = "check_mlp_shapes", "Exercise 2"
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence):
        raise TypeError(
            f"{fn}: expected shapes to be a list of (out, in) tuples but got {type(shapes).__name__}"
        )
    got = [_shape(fn, f"shapes[{i}]", s) for i, s in enumerate(shapes)]
    expected = [tuple(layer.weight.shape) for layer in _linears(sizes)]
    if len(got) != len(expected):
        raise _wrong(ex, f"{len(sizes)} widths {tuple(sizes)} make {len(expected)} weight matrices, "
                         f"but you gave {len(got)}.")
    for i, (g, e) in enumerate(zip(got, expected)):
        if g == e:
            continue
        if g == e[::-1]:
            raise _wrong(ex, f"layer {i + 1}: you wrote {g}; W maps R^{e[1]} to R^{e[0]}, so it has "
                             f"{e[0]} rows (one per neuron): {e}. (X Wᵀ then needs X with {e[1]} columns.)")
        raise _wrong(ex, f"layer {i + 1}: expected a matrix from {e[1]} inputs to {e[0]} outputs "
                         f"but got {g}.")
    _ok(ex, "weight shapes " + ", ".join(f"{s[0]}×{s[1]}" for s in expected))


def check_mlp_parameter_count(count: int, sizes: Sequence[int] = (100, 256, 128, 10)) -> None:
    """Exercise 2: the total number of parameters (weights and biases) of the MLP ``sizes``."""
    fn, ex = "check_mlp_parameter_count", "Exercise 2"
    count = _integer(fn, "count", count)
    expected = _count(_linears(sizes))
    weights_only = _count(_linears(sizes, bias=False))
    if count == expected:
        _ok(ex, f"{expected:,} parameters ({weights_only:,} weights + {expected - weights_only} biases)")
        return
    if count == weights_only:
        raise _wrong(ex, f"{count:,} counts the weights only; every neuron also has a bias "
                         f"({expected - weights_only} of them in all).")
    raise _wrong(ex, f"expected the sum over layers of d_out·d_in + d_out but got {count:,} "
                     f"({'too many' if count > expected else 'too few'}).")


def check_multihead_parameter_counts(split: int, full: int, d_model: int = 512, num_heads: int = 8) -> None:
    """Exercise 3: projection parameters (no biases) of multi-head attention.

    ``split``: each head works in ``d_k = d_model / h`` dims (the standard design);
    ``full``: each head gets its own full ``d_model``-dim projections.
    """
    fn, ex = "check_multihead_parameter_counts", "Exercise 3"
    split, full = _integer(fn, "split", split), _integer(fn, "full", full)
    mha = nn.MultiheadAttention(d_model, num_heads, bias=False)
    expected_split = _count(mha)  # W^Q, W^K, W^V (d_model × d_model each) and W^O
    heads_wide = [nn.Linear(d_model, num_heads * d_model, bias=False) for _ in range(3)]
    out = nn.Linear(num_heads * d_model, d_model, bias=False)  # W^O: h·d_model → d_model
    expected_full = sum(_count(m) for m in (*heads_wide, out))
    if split != expected_split:
        hint = (" That is Q, K, V only: add W^O." if split == 3 * d_model**2 else
                " Hint: the h heads' W_i^Q together form one d_model × d_model matrix.")
        raise _wrong(ex, f"with d_k = d_model/h the four projections hold {expected_split:,} "
                         f"numbers, not {split:,}.{hint}")
    if full != expected_full:
        raise _wrong(ex, f"with d_k = d_model per head, each of Q, K, V maps d_model → h·d_model and "
                         f"W^O maps h·d_model → d_model; you gave {full:,}.")
    _ok(ex, f"{split:,} vs {full:,} parameters: full-width heads cost {full // split}× (= h) more")


def check_norm_dims(batch_norm_dims: Iterable[int], layer_norm_dims: Iterable[int]) -> None:
    """Exercise 4: the dims of a ``(B, C, H, W)`` feature map that BatchNorm and LayerNorm average over.

    Each answer is tested by behaviour: standardising a random map over those dims must equal
    ``F.batch_norm(training=True)``, respectively ``F.layer_norm(x, (C, H, W))``.
    """
    fn, ex = "check_norm_dims", "Exercise 4"
    bn = _dims(fn, "batch_norm_dims", batch_norm_dims, 4)
    ln = _dims(fn, "layer_norm_dims", layer_norm_dims, 4)
    x = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def standardise(dims: tuple[int, ...]) -> torch.Tensor:
        mu = x.mean(dims, keepdim=True)
        var = x.var(dims, keepdim=True, correction=0)
        return (x - mu) / torch.sqrt(var + 1e-5)

    reference_bn = F.batch_norm(x, None, None, training=True, eps=1e-5)
    reference_ln = F.layer_norm(x, x.shape[1:], eps=1e-5)
    if not torch.allclose(standardise(bn), reference_bn):
        hint = ("the channel dim 1 must not be averaged: BatchNorm keeps one μ, σ² per channel"
                if 1 in bn else "every statistic is shared by all samples and all positions of a channel")
        raise _wrong(ex, f"BatchNorm over dims {bn} does not match F.batch_norm: {hint}.")
    if not torch.allclose(standardise(ln), reference_ln):
        hint = ("dim 0 is the batch: LayerNorm never mixes samples" if 0 in ln else
                "in a CNN LayerNorm takes one μ, σ² per sample over all of its C·H·W values")
        raise _wrong(ex, f"LayerNorm over dims {ln} does not match F.layer_norm(x, (C, H, W)): {hint}.")
    _ok(ex, f"BatchNorm averages over dims {bn} (B, H, W), LayerNorm over {ln} (C, H, W)")


# --------------------------------------------------------------------------- deeper (5–8)


def check_qk_statistics(mean: float, variance: float, scaled_variance: float, d_k: int = 64) -> None:
    """Exercise 5: mean and variance of one entry of ``QKᵀ`` (i.i.d. N(0,1) entries), and the
    variance after dividing by ``√d_k``."""
    fn, ex = "check_qk_statistics", "Exercise 5"
    mean, variance = _number(fn, "mean", mean), _number(fn, "variance", variance)
    scaled_variance = _number(fn, "scaled_variance", scaled_variance)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(200_000, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(200_000, d_k, generator=g, dtype=torch.float64)
    dots = (q * k).sum(1)  # 200,000 samples of q·k
    if abs(mean) > 1e-9:
        raise _wrong(ex, f"each term q_i k_i has mean E[q_i]E[k_i] = 0, so q·k has mean 0, not {mean:g} "
                         f"(a simulation gives {dots.mean().item():.3f}).")
    if abs(variance - d_k) > 1e-9:
        raise _wrong(ex, f"q·k is a sum of d_k = {d_k} independent terms of variance "
                         f"E[q_i²]E[k_i²] = 1; you gave {variance:g} "
                         f"(a simulation gives {dots.var().item():.1f}).")
    if abs(scaled_variance - 1) > 1e-9:
        raise _wrong(ex, f"Var(q·k/√d_k) = Var(q·k)/d_k; you gave {scaled_variance:g}.")
    _ok(ex, f"E[q·k] = 0, Var(q·k) = d_k = {d_k}, and dividing by √d_k brings it to 1")


def check_im2col(shape: Sequence[int], blowup: float, input_shape: Sequence[int] = (1, 3, 8, 8),
                 kernel_size: int = 3, padding: int = 1, stride: int = 1) -> None:
    """Exercise 6: the shape of ``X_col`` and its size relative to the input (im2col, §3.2).

    ``shape`` may be ``(C·K·K, L)`` or, as ``F.unfold`` returns it, ``(N, C·K·K, L)``.
    """
    fn, ex = "check_im2col", "Exercise 6"
    got = _shape(fn, "shape", shape)
    blowup = _number(fn, "blowup", blowup)
    x = torch.zeros(*input_shape)
    cols = F.unfold(x, kernel_size, padding=padding, stride=stride)  # (N, C·K·K, L)
    expected = tuple(cols.shape)
    if got not in (expected, expected[1:]):
        if got in (expected[::-1], expected[1:][::-1]):
            raise _wrong(ex, f"{got} is X_col transposed: each *column* holds one patch of "
                             f"C·K·K = {expected[1]} values, one column per output position.")
        raise _wrong(ex, f"expected C·K·K = {expected[1]} rows and one column per output position "
                         f"(L = {expected[2]}, padding keeps 8×8) but got {got}.")
    ratio = cols.numel() / x.numel()
    if not math.isclose(blowup, ratio, rel_tol=1e-6):
        padded = (input_shape[2] + 2 * padding) * (input_shape[3] + 2 * padding) * input_shape[1]
        hint = (" You divided by the padded input; the question compares with the original."
                if math.isclose(blowup, cols.numel() / padded, rel_tol=1e-6) else "")
        raise _wrong(ex, f"X_col holds {cols.numel():,} numbers and the input {x.numel():,}; you "
                         f"gave a factor {blowup:g}.{hint}")
    _ok(ex, f"X_col is {expected[1]}×{expected[2]}, {ratio:g}× the input (K² = {kernel_size**2})")


def check_residual_jacobian(jacobian: torch.Tensor, block: nn.Module, x: torch.Tensor) -> None:
    """Exercise 8: the Jacobian of ``y = x + F(x)`` at ``x`` is ``I + J_F`` (shape ``(d, d)``).

    ``block`` is ``F`` (the residual branch); ``x`` a vector of length ``d``.
    """
    fn, ex = "check_residual_jacobian", "Exercise 8"
    check_tensor("jacobian", fn, jacobian)
    check_tensor("x", fn, x)
    if not isinstance(block, nn.Module) and not callable(block):
        raise TypeError(f"{fn}: expected block to be callable but got {type(block).__name__}")
    if x.ndim != 1:
        raise ValueError(f"{fn}: expected x to be a vector of shape (d,) but got {tuple(x.shape)}")
    d = x.shape[0]
    if tuple(jacobian.shape) != (d, d):
        raise ValueError(f"{fn}: expected jacobian of shape ({d}, {d}) but got {tuple(jacobian.shape)}")
    x0 = x.detach()
    J_F = torch.autograd.functional.jacobian(block, x0)  # (d, d)
    J_y = torch.autograd.functional.jacobian(lambda v: v + block(v), x0)  # (d, d)
    J = jacobian.detach().to(J_y.dtype)
    if torch.allclose(J, J_y, atol=1e-5, rtol=1e-4):
        _ok(ex, "∂y/∂x = I + J_F: the identity is the shortcut the gradient always takes")
        return
    if torch.allclose(J, J_F, atol=1e-5, rtol=1e-4):
        raise _wrong(ex, "this is J_F, the Jacobian of the branch alone; the skip path x ↦ x adds I.")
    if torch.allclose(J, J_y.T, atol=1e-5, rtol=1e-4):
        raise _wrong(ex, "this is the transpose: J_ij = ∂y_i/∂x_j (row i belongs to output i).")
    raise _wrong(ex, f"expected I + J_F but the largest difference is {(J - J_y).abs().max().item():.2e}.")


# --------------------------------------------------------------------------- code (9–12)


def check_sequence_classifier(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                              min_accuracy: float = 0.9, min_layers: int = 2) -> float:
    """Exercise 9: a multi-layer Transformer encoder classifying sequences.

    The model must contain a ``TransformerEncoder`` (la_dl's or torch's) of at least
    ``min_layers`` layers and reach ``min_accuracy`` on ``(inputs, targets)``, evaluated in
    ``eval()`` mode without gradients. Returns the accuracy.
    """
    fn, ex = "check_sequence_classifier", "Exercise 9"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: expected model to be an nn.Module but got {type(model).__name__}")
    check_tensor("inputs", fn, inputs)
    check_tensor("targets", fn, targets)
    if targets.ndim != 1 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"{fn}: expected targets of shape ({inputs.shape[0]},) but got {tuple(targets.shape)}"
        )
    encoders = [m for m in model.modules() if isinstance(m, (TransformerEncoder, nn.TransformerEncoder))]
    if not encoders:
        raise _wrong(ex, "the model has no TransformerEncoder; build it from "
                         "la_dl.transformer.TransformerEncoderLayer and TransformerEncoder.")
    layers = max(e.num_layers for e in encoders)
    if layers < min_layers:
        raise _wrong(ex, f"the encoder has {layers} layer; the exercise asks for at least {min_layers}.")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(inputs)
    model.train(was_training)
    if logits.shape[:1] != targets.shape or logits.ndim != 2:
        raise ValueError(f"{fn}: expected the model to return logits of shape ({targets.shape[0]}, classes) "
                         f"but got {tuple(logits.shape)}")
    accuracy = (logits.argmax(1) == targets).float().mean().item()
    if accuracy < min_accuracy:
        raise _wrong(ex, f"accuracy {accuracy:.2f} is below {min_accuracy:.2f}. Train longer, check that "
                         "positions are encoded (the task depends on order) and that you pool the tokens.")
    _ok(ex, f"a {layers}-layer encoder reaches accuracy ≥ {min_accuracy:.2f}")
    return accuracy


def check_lora_parameter_counts(full: int, lora: int, sizes: Sequence[int] = (64, 128, 128, 5),
                                r: int = 4, train_head: bool = True) -> None:
    """Exercise 10: trainable parameters of full fine-tuning vs LoRA of rank ``r``.

    The model is the MLP of linear layers ``sizes``. Full fine-tuning trains every weight and
    bias. LoRA freezes them and trains ``A`` (``r × d_in``) and ``B`` (``d_out × r``) on each
    hidden layer; with ``train_head=True`` (the usual recipe when the new task has new
    classes) the last layer is a fresh head that trains in full, otherwise it gets LoRA too.
    """
    fn, ex = "check_lora_parameter_counts", "Exercise 10"
    full, lora = _integer(fn, "full", full), _integer(fn, "lora", lora)
    layers = list(_linears(sizes))
    adapted, head = (layers[:-1], [layers[-1]]) if train_head else (layers, [])
    expected_full = sum(_count(layer) for layer in layers)
    expected_lora = (sum(r * (layer.in_features + layer.out_features) for layer in adapted)
                     + sum(_count(layer) for layer in head))
    biases = sum(layer.out_features for layer in adapted)
    if full != expected_full:
        hint = " Count the biases too." if full == expected_full - sum(x.out_features for x in layers) else ""
        raise _wrong(ex, f"full fine-tuning trains every weight and bias: expected {expected_full:,}, "
                         f"got {full:,}.{hint}")
    if lora != expected_lora:
        if lora == expected_lora + biases:
            hint = " The adapted layers' biases are frozen under LoRA."
        elif train_head and lora == expected_lora - _count(layers[-1]):
            hint = " The fresh head trains in full: add its weights and biases."
        else:
            hint = " Each adapted layer adds A (r × d_in) and B (d_out × r)."
        raise _wrong(ex, f"rank-{r} LoRA trains r·(d_in + d_out) per adapted layer"
                         f"{' plus the head' if train_head else ''}; got {lora:,}.{hint}")
    _ok(ex, f"{full:,} vs {lora:,} trainable parameters ({full / lora:.1f}× fewer with LoRA)")


def check_normalized(kind: str, output: torch.Tensor, input: torch.Tensor | None = None,
                     atol: float = 1e-2) -> None:
    """Exercise 11: ``output`` is ``input`` (an ``(N, D)`` activation matrix) after a norm.

    ``kind`` is ``"batch"`` (columns mean 0, variance 1), ``"layer"`` (rows mean 0, variance 1)
    or ``"rms"`` (rows of mean square 1). With ``input``, the output is also compared with
    ``F.batch_norm``/``F.layer_norm``/``F.rms_norm`` (no affine).
    """
    fn, ex = "check_normalized", "Exercise 11"
    if kind not in ("batch", "layer", "rms"):
        raise ValueError(f"{fn}: expected kind 'batch', 'layer' or 'rms' but got {kind!r}")
    check_tensor("output", fn, output)
    if output.ndim != 2:
        raise ValueError(f"{fn}: expected output of shape (N, D) but got {tuple(output.shape)}")
    y = output.detach().to(torch.float64)
    col_mean, col_var = y.mean(0).abs().max().item(), (y.var(0, correction=0) - 1).abs().max().item()
    row_mean, row_var = y.mean(1).abs().max().item(), (y.var(1, correction=0) - 1).abs().max().item()
    row_ms = (y.pow(2).mean(1) - 1).abs().max().item()
    columns_ok, rows_ok = col_mean < atol and col_var < atol, row_mean < atol and row_var < atol
    name = {"batch": "BatchNorm", "layer": "LayerNorm", "rms": "RMSNorm"}[kind]
    if kind == "batch" and not columns_ok:
        extra = " Your rows are standardised instead: that is LayerNorm." if rows_ok else ""
        raise _wrong(ex, f"{name} makes every column (feature) mean 0, variance 1; the worst column is off "
                         f"by {max(col_mean, col_var):.2e}.{extra}")
    if kind == "layer" and not rows_ok:
        extra = " Your columns are standardised instead: that is BatchNorm." if columns_ok else ""
        raise _wrong(ex, f"{name} makes every row (sample) mean 0, variance 1; the worst row is off by "
                         f"{max(row_mean, row_var):.2e}.{extra}")
    if kind == "rms" and row_ms > atol:
        raise _wrong(ex, f"RMSNorm rescales every row to mean square 1; the worst row is off by "
                         f"{row_ms:.2e}.")
    if input is not None:
        check_tensor("input", fn, input)
        if input.shape != output.shape:
            raise ValueError(
                f"{fn}: expected input of shape {tuple(output.shape)} but got {tuple(input.shape)}"
            )
        x = input.detach().to(torch.float64)
        reference = {
            "batch": lambda: F.batch_norm(x, None, None, training=True),
            "layer": lambda: F.layer_norm(x, x.shape[1:]),
            "rms": lambda: F.rms_norm(x, x.shape[1:]),
        }[kind]()
        gap = (reference - y).abs().max().item()
        if gap > atol:
            raise _wrong(ex, f"the statistics look right but the output differs from torch's {name} of "
                             f"the input by {gap:.2e}: normalise the input itself, without an affine.")
    _ok(ex, f"{name} output has the statistics it should")


def check_bert_flops(counts: Mapping[str, float], seq_len: int, d_model: int = 128, nhead: int = 2,
                     dim_feedforward: int = 512, num_layers: int = 2, batch_size: int = 1,
                     rtol: float = 1e-6) -> None:
    """Exercise 12: matmul FLOPs of a BERT encoder by component, against ``FlopCounterMode``.

    ``counts`` maps ``"attention"`` (Q, K, V, output projections and the two n×n products)
    and ``"ffn"`` (both linear layers) to FLOPs for one forward pass of ``num_layers`` layers
    on ``batch_size × seq_len`` tokens (defaults: BERT-tiny). The reference is measured by
    running torch's ``nn.TransformerEncoderLayer`` (math attention path) under
    ``torch.utils.flop_counter.FlopCounterMode`` and reading its per-module totals.
    """
    fn, ex = "check_bert_flops", "Exercise 12"
    if not isinstance(counts, Mapping):
        raise TypeError(f"{fn}: expected counts to be a dict but got {type(counts).__name__}")
    missing = {"attention", "ffn"} - set(counts)
    if missing:
        raise ValueError(
            f"{fn}: expected counts to have keys 'attention' and 'ffn' but it lacks {sorted(missing)}"
        )
    attention = _number(fn, "counts['attention']", counts["attention"])
    ffn = _number(fn, "counts['ffn']", counts["ffn"])
    measured = measure_encoder_flops(seq_len, d_model, nhead, dim_feedforward, num_layers, batch_size)
    for name, got in (("attention", attention), ("ffn", ffn)):
        want = measured[name]
        if not math.isclose(got, want, rel_tol=rtol):
            hint = (" A multiply-add is 2 FLOPs." if math.isclose(got * 2, want, rel_tol=rtol) else
                    " Remember QKᵀ and (weights)V: 2·n²·d each." if name == "attention" else "")
            raise _wrong(ex, f"{name}: FlopCounterMode measures {want:,.0f} FLOPs at n = {seq_len}, you "
                             f"gave {got:,.0f}.{hint}")
    _ok(ex, f"attention and FFN FLOPs at n = {seq_len} match FlopCounterMode")


def measure_encoder_flops(seq_len: int, d_model: int = 128, nhead: int = 2, dim_feedforward: int = 512,
                          num_layers: int = 2, batch_size: int = 1) -> dict[str, int]:
    """Matmul FLOPs of a torch Transformer encoder by component, measured with ``FlopCounterMode``.

    Returns ``{"attention": …, "ffn": …, "total": …}``. Torch's fused paths hide FLOPs from
    the counter (see :mod:`la_dl.flops`), so the layer runs in training mode (dropout 0, no
    fused encoder kernel) with the math SDPA backend: QKᵀ and (weights)V are plain ``bmm`` s.
    """
    layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
    x = torch.randn(batch_size, seq_len, d_model)
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        encoder(x)
    per_module = counter.get_flop_counts()
    attention = sum(sum(per_module.get(f"TransformerEncoder.layers.{i}.self_attn", {}).values())
                    for i in range(num_layers))
    ffn = sum(sum(per_module.get(f"TransformerEncoder.layers.{i}.linear{j}", {}).values())
              for i in range(num_layers) for j in (1, 2))
    return {"attention": int(attention), "ffn": int(ffn), "total": int(counter.get_total_flops())}


# --------------------------------------------------------------------------- open-ended (15)


def check_conv3d_scaling(param_ratio: float, flop_ratio: float, kernel_size: int = 3, depth: int = 16,
                         channels: int = 8, size: int = 16) -> None:
    """Exercise 15: how parameters and FLOPs grow from a 2-D conv on ``size²`` to a 3-D conv on
    ``depth × size²`` (same channels, kernel ``K`` in every dim, 'same' padding, no bias).

    The reference counts ``nn.Conv2d``/``nn.Conv3d`` weights and measures both convolutions
    with ``FlopCounterMode``.
    """
    fn, ex = "check_conv3d_scaling", "Exercise 15"
    param_ratio, flop_ratio = _number(fn, "param_ratio", param_ratio), _number(fn, "flop_ratio", flop_ratio)
    K, C, pad = kernel_size, channels, kernel_size // 2
    conv2 = nn.Conv2d(C, C, K, padding=pad, bias=False)
    conv3 = nn.Conv3d(C, C, K, padding=pad, bias=False)
    flops = []
    for conv, x in ((conv2, torch.zeros(1, C, size, size)), (conv3, torch.zeros(1, C, depth, size, size))):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            conv(x)
        flops.append(counter.get_total_flops())
    want_params, want_flops = _count(conv3) / _count(conv2), flops[1] / flops[0]
    if not math.isclose(param_ratio, want_params, rel_tol=1e-6):
        raise _wrong(ex, f"a 3-D kernel has C_out·C_in·K³ weights against C_out·C_in·K²; the ratio is not "
                         f"{param_ratio:g}. (It does not depend on the input size.)")
    if not math.isclose(flop_ratio, want_flops, rel_tol=1e-6):
        hint = (" That is the per-position cost only; there are also D times more output positions."
                if math.isclose(flop_ratio, K, rel_tol=1e-6) else
                " Each output voxel costs K× more and there are D× more of them.")
        raise _wrong(ex, f"FlopCounterMode measures a ratio of {want_flops:g}, you gave "
                         f"{flop_ratio:g}.{hint}")
    _ok(ex, f"parameters grow {want_params:g}× (K), FLOPs {want_flops:g}× (K·D)")


# --------------------------------------------------------------------------- worked solutions (9, 14)


def which_comes_first(n: int, length: int = 10, vocab: int = 8,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exercise 9's toy task: does token 0 come before token 1?

    Draws ``n`` sequences of ``length`` tokens. Every sequence holds exactly one ``0`` and one
    ``1`` at two random places; all other places hold fillers from ``2 … vocab − 1``. The label
    is 1 when the ``0`` comes first. Only the *order* of the two tokens decides the label, so a
    model without positional information cannot beat a coin toss (§5).

    Returns ``(tokens, labels)``: ``(n, length)`` and ``(n,)`` int64 tensors on the CPU.
    """
    fn = "which_comes_first"
    n, length, vocab = (check_positive_int(name, fn, v) for name, v in
                        (("n", n), ("length", length), ("vocab", vocab)))
    if length < 2 or vocab < 3:
        raise ValueError(f"{fn}: expected length ≥ 2 and vocab ≥ 3 (two marked tokens and a filler) "
                         f"but got length={length}, vocab={vocab}")
    tokens = torch.randint(2, vocab, (n, length), generator=generator)  # (n, length) fillers
    where = torch.stack([torch.randperm(length, generator=generator)[:2] for _ in range(n)])  # (n, 2)
    rows = torch.arange(n)
    tokens[rows, where[:, 0]], tokens[rows, where[:, 1]] = 0, 1  # place the two marked tokens
    return tokens, (where[:, 0] < where[:, 1]).long()  # label 1: the 0 comes first


class SequenceClassifier(nn.Module):
    """Exercise 9's model: a multi-layer Transformer encoder with a classification head.

    ``logits = W_head · mean_t Encoder(E[tokens] + PE)_t + b_head``: embed the tokens, add the
    sinusoidal positional encodings of §5, run ``num_layers`` post-norm encoder layers
    (``la_dl.transformer``, FFN width ``2·d_model``, no dropout), average over the tokens and
    map the average to ``num_classes`` logits. With ``positions=False`` the encodings are zero
    and the whole model is invariant to permuting the tokens.
    """

    def __init__(self, vocab: int = 8, d_model: int = 32, nhead: int = 4, num_layers: int = 2,
                 length: int = 10, num_classes: int = 2, positions: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        pe = sinusoidal_positional_encoding(length, d_model)  # (L, E)
        self.register_buffer("pe", pe if positions else torch.zeros_like(pe))
        layer = TransformerEncoderLayer(d_model, nhead, 2 * d_model, dropout=0.0, batch_first=True)
        self.encoder = TransformerEncoder(layer, num_layers)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` of shape ``(N, L)`` (integers below ``vocab``) → logits ``(N, num_classes)``."""
        check_tensor("tokens", "SequenceClassifier", tokens)
        check_ndim("tokens", "SequenceClassifier", tokens, 2)
        h = self.encoder(self.embed(tokens) + self.pe)  # (N, L, E)
        return self.head(h.mean(1))  # mean over tokens, then (N, num_classes)


def fit_lora_adapter(weight: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, r: int,
                     steps: int = 300, lr: float = 1e-2) -> float:
    """Exercise 14: fit a rank-``r`` LoRA adapter to a regression task; return the error left.

    The frozen base layer has weight ``W₀`` (``weight``, ``(d_out, d_in)``, no bias). Only
    ``A`` and ``B`` train, by ``steps`` steps of Adam on the mean squared error of
    ``X(W₀ + (α/r)BA)ᵀ`` against ``Y`` (§8). Returns the remaining error relative to not
    adapting at all, ``‖XW'ᵀ − Y‖_F / ‖XW₀ᵀ − Y‖_F``: near 0 when a rank-``r`` update
    suffices, near 1 when it captures little of the change.
    """
    fn = "fit_lora_adapter"
    for name, t in (("weight", weight), ("inputs", inputs), ("targets", targets)):
        check_tensor(name, fn, t)
        check_floating(name, fn, t)
        check_ndim(name, fn, t, 2)
    r, steps = check_positive_int("r", fn, r), check_positive_int("steps", fn, steps)
    d_out, d_in = weight.shape
    if inputs.shape[1] != d_in or targets.shape != (inputs.shape[0], d_out):
        raise ValueError(f"{fn}: expected inputs (N, {d_in}) and targets (N, {d_out}) but got "
                         f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    base = nn.Linear(d_in, d_out, bias=False, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        base.weight.copy_(weight)  # W₀
    adapted = LoRALinear(base, r=r)  # freezes W₀; A random, B = 0
    optimizer = torch.optim.Adam([adapted.lora_A, adapted.lora_B], lr=lr)
    for _ in range(steps):
        loss = F.mse_loss(adapted(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        unadapted = (inputs @ weight.T - targets).norm()  # (N, d_out) residual before adapting
        return ((adapted(inputs) - targets).norm() / unadapted).item()


def directions_for_energy(delta: torch.Tensor, share: float = 0.9) -> int:
    """Exercise 14: the fewest singular directions that hold ``share`` of ``‖ΔW‖_F²``.

    With singular values ``σ₁ ≥ σ₂ ≥ …`` of ``ΔW``, ``‖ΔW‖_F² = Σ σᵢ²``; the answer is the
    smallest ``k`` with ``σ₁² + … + σ_k² ≥ share · Σ σᵢ²`` (§8). A rank-``r`` update needs at most
    ``r``; an update spread like a random matrix needs most of its dimensions.
    """
    fn = "directions_for_energy"
    check_tensor("delta", fn, delta)
    check_floating("delta", fn, delta)
    check_ndim("delta", fn, delta, 2)
    share = _number(fn, "share", share)
    if not 0 < share <= 1:
        raise ValueError(f"{fn}: expected 0 < share ≤ 1 but got {share}")
    energy = torch.linalg.svdvals(delta.detach().double()).pow(2).cumsum(0)  # σ₁² + … + σ_k²
    return int((energy < share * energy[-1]).sum().item()) + 1
