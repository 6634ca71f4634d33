"""§1 The network is the matmul chain.

A neuron is an inner product plus a nonlinearity, ``h = σ(wᵀx + b)``; stacking ``m``
neurons gives a layer ``h = σ(Wx + b)`` with ``W ∈ R^{m×d}``; stacking ``B`` samples as
the rows of ``X ∈ R^{B×d}`` turns the layer into one GEMM, ``H = σ(XWᵀ + 1bᵀ)``.

Without ``σ`` a stack of layers collapses to a single matrix (:func:`collapse_linear`);
:func:`gemm_throughput` measures why batching matters on real hardware.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from la_dl._checks import check_linear_args, check_ndim, check_tensor
from la_dl.device import default_device, synchronize

__all__ = [
    "linear",
    "mlp_forward",
    "collapse_linear",
    "collapse_affine",
    "arithmetic_intensity",
    "gemm_throughput",
    "GemmMeasurement",
    "ACTIVATIONS",
    "MLP",
    "load_digits",
    "train_classifier",
]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda z: z,
    "relu": lambda z: z.clamp_min(0),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A layer without its nonlinearity: ``Y = X Wᵀ + 1 bᵀ`` (§1.3), like ``F.linear``.

    ``input`` is ``(*, in_features)`` (one sample or a batch stacked as rows),
    ``weight`` is ``(out_features, in_features)`` (one neuron per row),
    ``bias`` is ``(out_features,)``. Returns ``(*, out_features)``.
    """
    check_linear_args("linear", input, weight, bias)

    out = input @ weight.T  # (*, out_features): every sample against every neuron
    if bias is not None:
        out = out + bias  # broadcast 1 bᵀ over the rows
    return out


def _activation(activation: str | Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"mlp_forward: expected activation to be a callable or one of {sorted(ACTIVATIONS)} "
            f"but got {activation!r}"
        )
    return ACTIVATIONS[activation]


def mlp_forward(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None,
    activation: str | Callable[[torch.Tensor], torch.Tensor] = "relu",
) -> torch.Tensor:
    """The matmul chain ``H_ℓ = σ(H_{ℓ-1} W_ℓᵀ + 1 b_ℓᵀ)`` with ``H_0 = x`` (§1.2–1.3).

    ``σ`` follows every layer except the last, whose output (the logits) stays linear.
    ``biases`` may be ``None`` (no biases) or hold ``None`` entries.
    """
    if len(weights) == 0:
        raise ValueError("mlp_forward: expected at least one weight matrix but got none")
    if biases is None:
        biases = [None] * len(weights)
    if len(biases) != len(weights):
        raise ValueError(
            f"mlp_forward: expected one bias per weight ({len(weights)}) but got {len(biases)}"
        )
    sigma = _activation(activation)
    h = x
    for layer, (weight, bias) in enumerate(zip(weights, biases)):
        h = linear(h, weight, bias)  # (*, d_ℓ)
        if layer < len(weights) - 1:
            h = sigma(h)
    return h


def _check_chain(fn: str, weights: Sequence[torch.Tensor]) -> None:
    if len(weights) == 0:
        raise ValueError(f"{fn}: expected at least one weight matrix but got none")
    for i, w in enumerate(weights):
        check_tensor(f"weights[{i}]", fn, w)
        check_ndim(f"weights[{i}]", fn, w, 2)
    for i in range(1, len(weights)):
        if weights[i].shape[1] != weights[i - 1].shape[0]:
            raise ValueError(
                f"{fn}: expected weights[{i}] to take {weights[i - 1].shape[0]} inputs "
                f"(the outputs of weights[{i - 1}]) but got shape {tuple(weights[i].shape)}"
            )


def collapse_linear(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The single matrix ``W = W_L ⋯ W_2 W_1`` that a stack of linear layers equals (§1.2).

    Without a nonlinearity, ``W_L(⋯(W_1 x)) = (W_L ⋯ W_1) x``: depth buys nothing.
    """
    _check_chain("collapse_linear", weights)
    product = weights[0]  # (d_1, d_0)
    for w in weights[1:]:
        product = w @ product  # (d_ℓ, d_0)
    return product


def collapse_affine(
    weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collapse affine layers ``x ↦ W_ℓ x + b_ℓ`` into one ``x ↦ W x + b``.

    ``W = W_L ⋯ W_1`` and ``b = Σ_ℓ (W_L ⋯ W_{ℓ+1}) b_ℓ``: biases do not save depth either.
    """
    _check_chain("collapse_affine", weights)
    if len(biases) != len(weights):
        raise ValueError(
            f"collapse_affine: expected one bias per weight ({len(weights)}) but got {len(biases)}"
        )
    weight, bias = weights[0], biases[0]
    for w, b in zip(weights[1:], biases[1:]):
        weight, bias = w @ weight, w @ bias + b
    return weight, bias


def arithmetic_intensity(batch: int, d_in: int, d_out: int, bytes_per_element: int = 4) -> float:
    """FLOPs per byte of ``X Wᵀ`` with ``X: (B, d_in)``, ``W: (d_out, d_in)``.

    FLOPs ``2 B d_in d_out`` (a multiply and an add per term); bytes: read ``X`` and ``W``
    once, write ``Y`` once. For ``B = 1`` this is below 0.5 FLOP/byte whatever the width:
    a matrix-vector product is bound by memory, not by arithmetic.
    """
    flops = 2 * batch * d_in * d_out
    bytes_moved = bytes_per_element * (batch * d_in + d_in * d_out + batch * d_out)
    return flops / bytes_moved


@dataclass(frozen=True)
class GemmMeasurement:
    """One point of :func:`gemm_throughput`."""

    batch: int
    d_in: int
    d_out: int
    seconds: float  # best wall time of one ``linear`` call
    gflops: float  # achieved 10⁹ FLOP/s
    intensity: float  # FLOPs per byte (see :func:`arithmetic_intensity`)
    us_per_row: float  # microseconds per sample


def gemm_throughput(
    batch_sizes: Sequence[int],
    d_in: int,
    d_out: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    repeats: int = 5,
    min_time: float = 0.02,
) -> list[GemmMeasurement]:
    """Measure ``linear(X, W)`` for each batch size: time, GFLOP/s, arithmetic intensity.

    Each point is the best of ``repeats`` timings, each averaging ``calls`` calls that last
    about ``min_time`` seconds together. The best, not the median, because other processes
    only ever add time: the minimum is the least disturbed estimate of what the hardware does.
    Before timing a size, a warm-up of about ``min_time`` seconds (allocations, kernel
    selection, caches, clock ramp-up) is discarded, and ``calls`` is sized from the *fastest*
    single warm-up call, so one call stalled by another process cannot shrink the later
    samples to a single, noisy call. Kernels are synchronised before reading the clock.
    """
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or torch.float32
    weight = torch.randn(d_out, d_in, device=device, dtype=dtype)
    element = torch.empty((), dtype=dtype).element_size()
    results = []
    for batch in batch_sizes:
        x = torch.randn(batch, d_in, device=device, dtype=dtype)
        # warm-up, timed call by call: its fastest call sizes the samples below
        fastest, warm_start = float("inf"), time.perf_counter()
        while True:
            synchronize(device)
            start = time.perf_counter()
            linear(x, weight)
            synchronize(device)
            now = time.perf_counter()
            fastest = min(fastest, now - start)
            if now - warm_start >= min_time:
                break
        calls = max(1, int(min_time / max(fastest, 1e-9)))
        samples = []
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                linear(x, weight)
            synchronize(device)
            samples.append((time.perf_counter() - start) / calls)
        seconds = min(samples)
        flops = 2 * batch * d_in * d_out
        results.append(
            GemmMeasurement(
                batch=batch,
                d_in=d_in,
                d_out=d_out,
                seconds=seconds,
                gflops=flops / seconds / 1e9,
                intensity=arithmetic_intensity(batch, d_in, d_out, element),
                us_per_row=seconds / batch * 1e6,
            )
        )
    return results


class MLP(nn.Module):
    """A thin module around :func:`mlp_forward`: ``sizes = [d_0, d_1, ..., d_L]``.

    Its ``nn.Linear`` layers hold the parameters (so ``torch.nn.init`` and optimisers work
    as usual); the forward pass is la_dl's matmul chain.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", bias: bool = True):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"MLP: expected at least two sizes (input, output) but got {list(sizes)}")
        _activation(activation)
        self.activation = activation
        self.layers = nn.ModuleList(
            nn.Linear(d_in, d_out, bias=bias) for d_in, d_out in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = [layer.weight for layer in self.layers]
        biases = [layer.bias for layer in self.layers]
        return mlp_forward(x, weights, biases, self.activation)


def load_digits(
    device: torch.device | str | None = None, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8×8 digits (1,797 images, no download) as tensors.

    Returns ``(X_train, y_train, X_test, y_test)``; pixels are scaled to ``[0, 1]`` and each
    image is a row of 64 values. The split is stratified and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    device = torch.device(device) if device is not None else default_device()
    data = _load()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data / 16.0, data.target, test_size=test_fraction, random_state=seed,
        stratify=data.target,
    )

    def as_tensor(a, dtype):
        return torch.as_tensor(a, dtype=dtype, device=device)

    return (as_tensor(x_tr, torch.float32), as_tensor(y_tr, torch.long),
            as_tensor(x_te, torch.float32), as_tensor(y_te, torch.long))


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 200,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` with Adam on cross-entropy; return the loss of each epoch.

    ``batch_size=None`` uses the whole training set as one batch (one GEMM per layer).
    """
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    batch_size = batch_size or n
    losses = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(x.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.numel()
        losses.append(total / n)
    return losses
