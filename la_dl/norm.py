"""§6 Normalisation: standardise the activation matrix along different axes.

Every norm of §6 maps an activation ``x`` to ``x̂ = (x − μ) / sqrt(σ² + ε)`` and then applies a
learnable affine ``γ x̂ + β``. They differ only in the axis along which ``μ`` and ``σ²`` are
taken. For a 2-D activation matrix ``X`` of shape ``(N, C)`` (one row per sample):

* **BatchNorm** (§6.1): one ``μ, σ²`` per *column* (feature), averaged over the batch;
* **LayerNorm** (§6.1): one ``μ, σ²`` per *row* (sample), averaged over the features;
* **RMSNorm** (§6.2): per row, no mean at all: ``x̂ = x / RMS(x) · γ``.

Plain functions first (signatures of ``torch.nn.functional``), then the module forms that
load the ``state_dict`` of ``nn.BatchNorm1d/2d``, ``nn.LayerNorm`` and ``nn.RMSNorm``, then
the FLOP counts and the batch-size experiment the notebook uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from la_dl._checks import check_floating, check_positive_int, check_tensor

__all__ = [
    "standardise",
    "batch_norm",
    "layer_norm",
    "rms_norm",
    "BatchNorm",
    "LayerNorm",
    "RMSNorm",
    "norm_flops",
    "count_flops",
    "batch_mean_error",
    "digits_activations",
]

ShapeLike = Union[int, Sequence[int], torch.Size]


# --------------------------------------------------------------------------- helpers


def _opmath(dtype: torch.dtype) -> torch.dtype:
    """The dtype torch accumulates in: float32 for float16/bfloat16, else the dtype itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_input(fn: str, input: Any) -> torch.Tensor:
    check_tensor("input", fn, input)
    check_floating("input", fn, input)
    return input


def _check_param(fn: str, name: str, value: Any, shape: tuple[int, ...], input: torch.Tensor) -> None:
    """A weight/bias/running statistic: a floating tensor of ``shape`` on the input's device."""
    if value is None:
        return
    check_tensor(name, fn, value)
    check_floating(name, fn, value)
    if tuple(value.shape) != shape:
        raise ValueError(f"{fn}: expected {name} of shape {shape} but got {tuple(value.shape)}")
    if value.device != input.device:
        raise ValueError(
            f"{fn}: expected {name} on the device of input ({input.device}) but got {value.device}"
        )


def _normalized_dims(fn: str, input: torch.Tensor, normalized_shape: ShapeLike) -> tuple[int, ...]:
    """Check that ``normalized_shape`` equals the trailing dims of ``input``; return those dims."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
        raise ValueError(
            f"{fn}: expected normalized_shape to be a non-empty sequence of positive ints "
            f"but got {normalized_shape!r}"
        )
    k = len(shape)
    if input.ndim < k or tuple(input.shape[-k:]) != shape:
        raise ValueError(
            f"{fn}: expected input with shape [*, {', '.join(map(str, shape))}] "
            f"(trailing dims equal to normalized_shape) but got {list(input.shape)}"
        )
    return tuple(range(-k, 0))


# --------------------------------------------------------------------------- functions


def standardise(input: torch.Tensor, dim: int | Sequence[int], eps: float = 1e-5) -> torch.Tensor:
    """The one formula of §6.1, along any axes: ``x̂ = (x − μ) / sqrt(σ² + ε)``.

    ``μ`` and the biased ``σ²`` are taken over ``dim`` (an int or a sequence of ints) and
    broadcast back, so the output has the input's shape. No ``γ``, ``β`` and no running
    statistics: this is the bare textbook step that every norm of §6 shares. On an ``(N, C)``
    matrix, ``dim=0`` standardises the columns (what :func:`batch_norm` does in training) and
    ``dim=1`` the rows (what :func:`layer_norm` does); on ``(B, C, H, W)`` feature maps the
    same two layers use ``dim=(0, 2, 3)`` and ``dim=(1, 2, 3)``.
    """
    fn = "standardise"
    _check_input(fn, input)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
        raise ValueError(f"{fn}: expected dim to be an int or a non-empty sequence of ints but got {dim!r}")
    if any(not -input.ndim <= d < input.ndim for d in dims):
        raise ValueError(f"{fn}: expected dims in [-{input.ndim}, {input.ndim}) but got {dim!r}")
    mean = input.mean(dims, keepdim=True)  # μ: 1 along dims, input's size elsewhere
    var = input.var(dims, correction=0, keepdim=True)  # biased σ², same shape as μ
    return (input - mean) / torch.sqrt(var + eps)  # x̂: input's shape


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """BatchNorm (§6.1): standardise each *column* (channel) over the batch.

    For input of shape ``(N, C, *)`` the statistics of channel ``c`` are taken over the batch
    and every spatial position, ``μ_c = mean(x[:, c])``, ``σ²_c = mean((x[:, c] − μ_c)²)``, and

        y = γ_c (x − μ_c) / sqrt(σ²_c + ε) + β_c.

    In training the batch statistics are used and the running estimates are updated in place
    exactly as torch does, with the *unbiased* variance ``σ²_c · n / (n − 1)``:

        running_mean ← (1 − momentum) · running_mean + momentum · μ_c
        running_var  ← (1 − momentum) · running_var  + momentum · σ²_c n / (n − 1).

    In evaluation the running estimates replace the batch statistics, so the output of one
    sample no longer depends on the rest of the batch. Same signature as ``F.batch_norm``.
    """
    fn = "batch_norm"
    _check_input(fn, input)
    if input.ndim < 2:
        raise ValueError(
            f"{fn}: expected input of shape (N, C) or (N, C, *) but got {list(input.shape)}"
        )
    C = input.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _check_param(fn, name, value, (C,), input)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: expected running_mean and running_var both given or both None")
    if not training and running_mean is None:
        raise ValueError(f"{fn}: expected running_mean and running_var in evaluation mode but got None")

    dims = (0, *range(2, input.ndim))  # every axis but the channel axis
    stat_shape = (1, C) + (1,) * (input.ndim - 2)  # broadcasts a (C,) vector over (N, C, *)
    x = input.to(_opmath(input.dtype))  # (N, C, *)
    if training:
        n = input.numel() // C  # values per channel
        if n <= 1:
            raise ValueError(
                f"{fn}: expected more than 1 value per channel when training but got input of "
                f"shape {list(input.shape)}"
            )
        mean = x.mean(dims)  # μ: (C,)
        var = (x - mean.view(stat_shape)).pow(2).mean(dims)  # biased σ²: (C,)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():  # the running estimates are state, not part of the graph
                unbiased = var * (n / (n - 1))
                running_mean.mul_(1 - momentum).add_(momentum * mean.to(running_mean.dtype))
                running_var.mul_(1 - momentum).add_(momentum * unbiased.to(running_var.dtype))
    else:
        mean = running_mean.to(x.dtype)  # (C,)
        var = running_var.to(x.dtype)  # (C,)

    x_hat = (x - mean.view(stat_shape)) * torch.rsqrt(var.view(stat_shape) + eps)  # (N, C, *)
    if weight is not None:
        x_hat = x_hat * weight.to(x.dtype).view(stat_shape)  # γ x̂
    if bias is not None:
        x_hat = x_hat + bias.to(x.dtype).view(stat_shape)  # + β
    return x_hat.to(input.dtype)


def layer_norm(
    input: torch.Tensor,
    normalized_shape: ShapeLike,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """LayerNorm (§6.1): standardise each *row* (sample) over its features.

    The statistics are taken over the trailing ``normalized_shape`` dims, of size ``D`` in all:
    ``μ = (1/D) Σ_i x_i``, ``σ² = (1/D) Σ_i (x_i − μ)²`` (biased), and

        y = γ (x − μ) / sqrt(σ² + ε) + β.

    No batch statistic appears, so each sample is normalised on its own: the same in training
    and evaluation, for any batch size and sequence length. Same signature as ``F.layer_norm``;
    float16/bfloat16 inputs are computed in float32 and cast back, as torch does.

    A constant row has σ² = 0: its output is β up to the rounding of μ, which ``1/sqrt(ε)``
    amplifies (about 1e-4 in float32 for values near 1); torch's Welford mean rounds differently.
    """
    fn = "layer_norm"
    _check_input(fn, input)
    dims = _normalized_dims(fn, input, normalized_shape)
    shape = tuple(input.shape[len(input.shape) - len(dims):])
    _check_param(fn, "weight", weight, shape, input)
    _check_param(fn, "bias", bias, shape, input)

    D = math.prod(shape)
    x = input.to(_opmath(input.dtype))  # (*, D)
    mean = x.mean(dims, keepdim=True)  # μ: (*, 1)
    var = torch.linalg.vector_norm(x - mean, dim=dims, keepdim=True).pow(2) / D  # σ² = ‖x − μ‖²/D: (*, 1)
    rstd = torch.rsqrt(var + eps)  # 1/sqrt(σ² + ε): (*, 1)
    # x̂ = x·rstd − μ·rstd: torch's CPU kernel order (one per-row scale and shift). Then γ x̂ + β.
    # The steps after the first run in place on x_hat, a tensor we just made: no extra (*, D)
    # temporaries, and autograd still records each step.
    x_hat = (x * rstd).sub_(mean * rstd)  # (*, D)
    if weight is not None:
        x_hat = x_hat.mul_(weight.to(x.dtype))  # γ x̂
    if bias is not None:
        x_hat = x_hat.add_(bias.to(x.dtype))  # + β
    return x_hat.to(input.dtype)


def rms_norm(
    input: torch.Tensor,
    normalized_shape: ShapeLike,
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """RMSNorm (§6.2): rescale each row by its root-mean-square; no mean is subtracted.

        y = x / RMS(x) · γ,   RMS(x) = sqrt((1/D) Σ_i x_i² + ε)

    over the trailing ``normalized_shape`` dims (``D`` values). ``eps=None`` means the machine
    epsilon of the compute dtype, as in ``F.rms_norm``. The order of operations is the
    built-in's, so float32/float64 results are bit-identical on the CPU: upcast
    float16/bfloat16 to float32, multiply by ``rsqrt(mean(x²) + ε)``, multiply by ``γ``
    (still in float32), cast back.
    """
    fn = "rms_norm"
    _check_input(fn, input)
    dims = _normalized_dims(fn, input, normalized_shape)
    shape = tuple(input.shape[len(input.shape) - len(dims):])
    _check_param(fn, "weight", weight, shape, input)

    x = input.to(_opmath(input.dtype))  # (*, D)
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    inv_rms = torch.rsqrt(x.pow(2).mean(dims, keepdim=True).add_(eps))  # 1/RMS(x): (*, 1)
    x_hat = x * inv_rms  # (*, D)
    if weight is not None:
        x_hat = x_hat * weight  # γ x̂, before the cast back (torch's order)
    return x_hat.to(input.dtype)


# --------------------------------------------------------------------------- modules


class BatchNorm(nn.Module):
    """Module form of :func:`batch_norm`; loads the ``state_dict`` of ``nn.BatchNorm1d/2d``.

    ``momentum=None`` uses the cumulative average ``1 / num_batches_tracked``, as torch does.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("num_features", "BatchNorm", num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        # Batch statistics in training, or whenever there are no running estimates (torch's rule).
        use_batch = self.training or self.running_mean is None
        return batch_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias,
            use_batch, momentum, self.eps,
        )


class LayerNorm(nn.Module):
    """Module form of :func:`layer_norm`; loads the ``state_dict`` of ``nn.LayerNorm``."""

    def __init__(
        self,
        normalized_shape: ShapeLike,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if elementwise_affine and bias else None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """Module form of :func:`rms_norm`; loads the ``state_dict`` of ``nn.RMSNorm``."""

    def __init__(
        self, normalized_shape: ShapeLike, eps: float | None = None, elementwise_affine: bool = True
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)


# --------------------------------------------------------------------------- §6.2 FLOPs


def norm_flops(kind: str, d: int, elementwise_affine: bool = True) -> dict[str, int]:
    """Floating-point operations to normalise one row of ``d`` values (§6.2), step by step.

    A reduction over ``d`` values costs ``d`` (``d − 1`` additions and one division).

    ===========  =============================================  ===========================
    kind         steps                                          total (with γ, β)
    ===========  =============================================  ===========================
    ``layer``    μ, x−μ, (x−μ)², σ², rsqrt(σ²+ε), ·rstd, γ, β     7d + 2
    ``rms``      x², mean, rsqrt(·+ε), ·rstd, γ                   4d + 2
    ===========  =============================================  ===========================

    RMSNorm drops the mean, the centring and β: about 4/7 of LayerNorm's work, and one
    statistic per row instead of two. (FLOPs only: a fused LayerNorm kernel gathers μ and σ²
    in one Welford pass over the row, so the wall-clock gain depends on the kernel.)
    """
    check_positive_int("d", "norm_flops", d)
    if kind == "layer":
        steps = {"mean": d, "center": d, "square": d, "variance": d, "rsqrt": 2, "normalize": d}
        if elementwise_affine:
            steps |= {"gamma": d, "beta": d}
    elif kind == "rms":
        steps = {"square": d, "mean": d, "rsqrt": 2, "normalize": d}
        if elementwise_affine:
            steps |= {"gamma": d}
    else:
        raise ValueError(f"norm_flops: expected kind 'layer' or 'rms' but got {kind!r}")
    return steps


# FLOPs per element of the ops that do more than one: the 2-norm squares and adds each input.
_FLOPS_PER_ELEMENT = {torch.ops.aten.linalg_vector_norm: 2, torch.ops.aten.addcmul: 2}


class _FlopCounter(TorchDispatchMode):
    """Counts pointwise ops by output size and reductions by input size."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        per_element = _FLOPS_PER_ELEMENT.get(func.overloadpacket, 1)
        if torch.Tag.reduction in func.tags:
            self.total += per_element * args[0].numel()
        elif torch.Tag.pointwise in func.tags:
            self.total += per_element * out.numel()
        return out  # dtype casts (aten._to_copy) carry no pointwise tag: they are free


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run ``fn(*args, **kwargs)`` and count the FLOPs of its elementwise ops and reductions.

    ``torch.utils.flop_counter.FlopCounterMode`` counts matmuls only; the norms of §6 are all
    elementwise work, so this counter intercepts every aten op instead: a pointwise op costs
    one FLOP per output element (two for ``addcmul``), a reduction one per input element (two
    for the 2-norm). Dtype casts are free. It measures the code that actually runs:

    * ``rms_norm`` counts ``4D + 2`` per row, exactly :func:`norm_flops` ``("rms", D)``;
    * ``layer_norm`` counts ``8D + 5`` per row: torch's kernel order ``x·rstd − μ·rstd``
      centres once for σ² and again in the scale-and-shift (one extra ``D``), and forming
      ``σ² = ‖x − μ‖²/D`` and the per-row shift ``μ·rstd`` costs three more per row.
    """
    with _FlopCounter() as counter:
        fn(*args, **kwargs)
    return counter.total


# --------------------------------------------------------------------------- §6.1 experiment


def batch_mean_error(
    activations: torch.Tensor,
    batch_sizes: Sequence[int],
    n_trials: int = 200,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """How far BatchNorm's batch mean lands from the population mean, per batch size (§6.1).

    ``activations`` is an ``(N, C)`` matrix (a population of samples). For each batch size
    ``B``, ``n_trials`` batches of ``B`` rows are drawn without replacement; the error of a
    batch is the RMS over channels of ``(μ_batch − μ_population) / σ_population``. Returns the
    mean error per batch size, shape ``(len(batch_sizes),)``; it falls like ``1/sqrt(B)``.
    """
    fn = "batch_mean_error"
    check_tensor("activations", fn, activations)
    check_floating("activations", fn, activations)
    if activations.ndim != 2:
        raise ValueError(f"{fn}: expected activations of shape (N, C) but got {list(activations.shape)}")
    N, C = activations.shape
    for B in batch_sizes:
        check_positive_int("batch size", fn, B)
        if B > N:
            raise ValueError(f"{fn}: expected batch sizes <= N = {N} but got {B}")
    mu = activations.mean(0)  # (C,)
    sigma = activations.std(0, correction=0).clamp_min(1e-12)  # (C,)
    errors = []
    for B in batch_sizes:
        idx = torch.stack([torch.randperm(N, generator=generator)[:B] for _ in range(n_trials)])  # (T, B)
        batch_mu = activations[idx.to(activations.device)].mean(1)  # (T, C)
        err = ((batch_mu - mu) / sigma).pow(2).mean(1).sqrt()  # (T,)
        errors.append(err.mean())
    return torch.stack(errors)  # (len(batch_sizes),)


def digits_activations(
    width: int = 32, seed: int = 0, relu: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """A real activation matrix for §6: all 1,797 digit images through one linear layer.

    ``H = X Wᵀ + b`` with ``X`` the (1797, 64) pixel matrix of scikit-learn's bundled digits
    (scaled to [0, 1]) and ``W``, ``b`` drawn as ``nn.Linear(64, width)`` draws them (seeded,
    without touching the global generator).
    Rows are samples and columns are features, each with its own mean and scale: the matrix
    BatchNorm standardises by columns and LayerNorm by rows. ``relu=True`` returns
    ``max(H, 0)`` instead: non-negative activations, whose rows have clearly positive means.
    Returns ``(1797, width)`` float32.
    """
    from sklearn.datasets import load_digits

    check_positive_int("width", "digits_activations", width)
    x = torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32)  # (N, 64)
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(64)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    weight = (torch.rand(width, 64, generator=g) * 2 - 1) * bound  # W: (width, 64)
    bias = (torch.rand(width, generator=g) * 2 - 1) * bound  # b: (width,)
    h = x @ weight.T + bias  # H = X Wᵀ + b: (N, width)
    if relu:
        h = h.clamp_min(0)  # σ(H), still (N, width)
    return h.to(device) if device is not None else h
