"""§2 Backpropagation is the matrix chain rule.

Every layer comes as a pair, in the manner of micrograd's ``engine.py``: a ``*_forward``
that returns its output and a *cache* of what the backward pass will need, and a
``*_backward(grad_output, cache)`` that turns the upstream gradient into the gradients of
the layer's inputs and parameters. Each local derivative sits next to its forward.

For one layer ``z = W x + b``, ``h = σ(z)`` and a scalar loss ``L`` the four steps are

1. receive the upstream gradient ``∂L/∂h``;
2. through the activation (a Hadamard product): ``δ = ∂L/∂z = ∂L/∂h ⊙ σ'(z)``;
3. the parameter gradients (an outer product): ``∂L/∂W = δ xᵀ``, ``∂L/∂b = δ``;
4. to the previous layer (the transpose): ``∂L/∂x = Wᵀ δ``.

With a batch ``X`` of ``B`` rows (§2.2) the same steps read ``∂L/∂W = ΔᵀX``,
``∂L/∂b = Δᵀ1``, ``∂L/∂X = ΔW``. Nothing here calls autograd except :func:`jacobian`,
which builds a Jacobian from reverse-mode products, one row at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from la_dl._checks import check_floating, check_linear_args, check_same, check_tensor

__all__ = [
    "LinearCache",
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "tanh_forward",
    "tanh_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "gelu_forward",
    "gelu_backward",
    "identity_forward",
    "identity_backward",
    "ACTIVATIONS",
    "MLPCache",
    "mlp_forward_with_cache",
    "mlp_backward",
    "gradient_norms_vs_bound",
    "jacobian",
]


# --------------------------------------------------------------------------------------
# Boundary checks
# --------------------------------------------------------------------------------------


def _check_input(name: str, fn: str, value: object) -> torch.Tensor:
    tensor = check_tensor(name, fn, value)
    check_floating(name, fn, tensor)
    return tensor


def _check_grad_shape(fn: str, grad_output: torch.Tensor, expected: torch.Size) -> None:
    if grad_output.shape != expected:
        raise ValueError(
            f"{fn}: expected grad_output of the forward output's shape {tuple(expected)} "
            f"but got {tuple(grad_output.shape)}"
        )


def _check_activation_grad(fn: str, grad_output: object, cache: object) -> None:
    grad_output = _check_input("grad_output", fn, grad_output)
    cache = check_tensor("cache", fn, cache)
    _check_grad_shape(fn, grad_output, cache.shape)
    check_same(fn, grad_output=grad_output, cache=cache)


# --------------------------------------------------------------------------------------
# The linear layer (§2.1, §2.2)
# --------------------------------------------------------------------------------------


class LinearCache(NamedTuple):
    """What :func:`linear_backward` needs from the forward pass."""

    x: torch.Tensor  # (*, H_in), the layer's input X
    weight: torch.Tensor  # (H_out, H_in), W
    has_bias: bool


def linear_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, LinearCache]:
    """Affine layer ``Z = X Wᵀ + 1 bᵀ`` (§2.2), returning ``(Z, cache)``.

    Mirrors ``F.linear(input, weight, bias)``: ``x`` is ``(*, H_in)``, ``weight`` is
    ``(H_out, H_in)`` (one neuron per row), ``bias`` is ``(H_out,)`` or ``None``; the
    output is ``(*, H_out)``.
    """
    check_linear_args("linear_forward", x, weight, bias, name="x")

    z = x @ weight.T  # (*, H_out): every row of X against every neuron (row of W)
    if bias is not None:
        z = z + bias  # (*, H_out): + 1 bᵀ, the bias broadcast over the batch
    return z, LinearCache(x, weight, bias is not None)


def linear_backward(
    grad_output: torch.Tensor, cache: LinearCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of ``Z = X Wᵀ + 1 bᵀ`` given ``Δ = ∂L/∂Z`` (§2.2).

    ``∂L/∂X = Δ W`` (the transpose map: W pushed X forward, so Wᵀ pulls the gradient
    back), ``∂L/∂W = Δᵀ X`` (a sum of one outer product per sample) and ``∂L/∂b = Δᵀ 1``.
    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is ``None`` without a bias.
    """
    fn = "linear_backward"
    if not isinstance(cache, LinearCache):
        raise TypeError(
            f"{fn}: expected cache to be the LinearCache of linear_forward but got {type(cache).__name__}"
        )
    x, weight, has_bias = cache
    grad_output = _check_input("grad_output", fn, grad_output)
    H_out, H_in = weight.shape
    _check_grad_shape(fn, grad_output, torch.Size((*x.shape[:-1], H_out)))
    check_same(fn, weight=weight, grad_output=grad_output)

    delta = grad_output.reshape(-1, H_out)  # (B, H_out): Δ, all leading dims as one batch
    X = x.reshape(-1, H_in)  # (B, H_in)
    grad_x = (delta @ weight).reshape(x.shape)  # (*, H_in): ∂L/∂X = Δ W
    grad_weight = delta.T @ X  # (H_out, H_in): ∂L/∂W = Δᵀ X
    grad_bias = delta.sum(dim=0) if has_bias else None  # (H_out,): ∂L/∂b = Δᵀ 1
    return grad_x, grad_weight, grad_bias


# --------------------------------------------------------------------------------------
# Activations: forward/backward pairs (step 2, the Hadamard product with σ')
# --------------------------------------------------------------------------------------


def relu_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``h = max(z, 0)``; the cache is ``h`` itself (σ'(z) = 1 where h > 0, else 0)."""
    x = _check_input("x", "relu_forward", x)
    out = torch.clamp_min(x, 0)
    return out, out


def relu_backward(grad_output: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """``∂L/∂z = ∂L/∂h ⊙ 1[h > 0]`` (the subgradient 0 at z = 0, as torch uses)."""
    _check_activation_grad("relu_backward", grad_output, cache)
    return torch.where(cache > 0, grad_output, torch.zeros_like(grad_output))


def tanh_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``h = tanh(z)``; the cache is ``h`` (σ'(z) = 1 − h²)."""
    x = _check_input("x", "tanh_forward", x)
    out = torch.tanh(x)
    return out, out


def tanh_backward(grad_output: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """``∂L/∂z = ∂L/∂h ⊙ (1 − h²)``."""
    _check_activation_grad("tanh_backward", grad_output, cache)
    return grad_output * (1 - cache * cache)


def sigmoid_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``h = 1 / (1 + e^{−z})``; the cache is ``h`` (σ'(z) = h (1 − h))."""
    x = _check_input("x", "sigmoid_forward", x)
    out = torch.sigmoid(x)
    return out, out


def sigmoid_backward(grad_output: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """``∂L/∂z = ∂L/∂h ⊙ (1 − h) ⊙ h`` (torch's order of the two products)."""
    _check_activation_grad("sigmoid_backward", grad_output, cache)
    return grad_output * (1 - cache) * cache


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_COEF = 0.044715


class _GeluCache(NamedTuple):
    x: torch.Tensor
    approximate: str

    @property
    def shape(self) -> torch.Size:
        return self.x.shape


def gelu_forward(x: torch.Tensor, approximate: str = "none") -> tuple[torch.Tensor, _GeluCache]:
    """``h = z Φ(z)`` with Φ the standard normal CDF, or its tanh approximation.

    ``approximate`` is ``"none"`` or ``"tanh"``, as in ``F.gelu``; the cache keeps ``z``.
    """
    x = _check_input("x", "gelu_forward", x)
    if approximate == "none":
        out = x * 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))  # z Φ(z)
    elif approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + _GELU_TANH_COEF * x**3)
        out = 0.5 * x * (1 + torch.tanh(inner))
    else:
        raise ValueError(f"gelu_forward: expected approximate to be 'none' or 'tanh' but got {approximate!r}")
    return out, _GeluCache(x, approximate)


def gelu_backward(grad_output: torch.Tensor, cache: _GeluCache) -> torch.Tensor:
    """``∂L/∂z = ∂L/∂h ⊙ (Φ(z) + z φ(z))`` (or the derivative of the tanh form)."""
    grad_output = _check_input("grad_output", "gelu_backward", grad_output)
    _check_grad_shape("gelu_backward", grad_output, cache.shape)
    z = cache.x
    if cache.approximate == "none":
        cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))  # Φ(z)
        pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # φ(z)
        return grad_output * (cdf + z * pdf)
    t = torch.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_COEF * z**3))
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_COEF * z * z)
    return grad_output * (0.5 * (1 + t) + 0.5 * z * (1 - t * t) * d_inner)


def identity_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """``h = z`` (a purely linear network); the cache is only the shape."""
    x = _check_input("x", "identity_forward", x)
    return x, x.shape


def identity_backward(grad_output: torch.Tensor, cache: torch.Size) -> torch.Tensor:
    """``∂L/∂z = ∂L/∂h``."""
    grad_output = _check_input("grad_output", "identity_backward", grad_output)
    _check_grad_shape("identity_backward", grad_output, torch.Size(cache))
    return grad_output


Forward = Callable[[torch.Tensor], tuple[torch.Tensor, object]]
Backward = Callable[[torch.Tensor, object], torch.Tensor]

ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "identity": (identity_forward, identity_backward),
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "gelu": (gelu_forward, gelu_backward),
}
"""Every activation by name: ``(forward, backward)``."""


def _activation(fn: str, activation: object) -> tuple[Forward, Backward]:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"{fn}: expected activation to be one of {sorted(ACTIVATIONS)} but got {activation!r}"
        )
    return ACTIVATIONS[activation]


# --------------------------------------------------------------------------------------
# A whole MLP
# --------------------------------------------------------------------------------------


class MLPCache(NamedTuple):
    """The per-layer caches of :func:`mlp_forward_with_cache`."""

    linear: list[LinearCache]
    activation: list[object]  # one per hidden layer
    activation_name: str


def _check_mlp(
    fn: str, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None] | None
) -> list[torch.Tensor | None]:
    if not isinstance(weights, Sequence) or isinstance(weights, torch.Tensor) or len(weights) == 0:
        raise TypeError(
            f"{fn}: expected weights to be a non-empty list of 2-D tensors but got {weights!r:.60}"
        )
    if biases is None:
        return [None] * len(weights)
    if len(biases) != len(weights):
        raise ValueError(f"{fn}: expected one bias per weight ({len(weights)}) but got {len(biases)}")
    return list(biases)


def mlp_forward_with_cache(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None = None,
    activation: str = "relu",
) -> tuple[torch.Tensor, MLPCache]:
    """The MLP of §1, ``H_ℓ = σ(H_{ℓ−1} W_ℓᵀ + 1 b_ℓᵀ)``, keeping what backprop needs.

    ``σ`` (a name from :data:`ACTIVATIONS`) follows every layer except the last, whose
    output is left linear (the logits). Returns ``(output, cache)``.
    """
    fn = "mlp_forward_with_cache"
    biases = _check_mlp(fn, weights, biases)
    act_forward, _ = _activation(fn, activation)
    linear_caches, activation_caches = [], []
    h = x
    for layer, (weight, bias) in enumerate(zip(weights, biases)):
        z, cache = linear_forward(h, weight, bias)  # (*, H_ℓ): Z_ℓ
        linear_caches.append(cache)
        if layer < len(weights) - 1:
            h, act_cache = act_forward(z)  # (*, H_ℓ): H_ℓ = σ(Z_ℓ)
            activation_caches.append(act_cache)
        else:
            h = z
    return h, MLPCache(linear_caches, activation_caches, activation)


def mlp_backward(
    grad_output: torch.Tensor, cache: MLPCache
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None]]:
    """Backprop through a whole MLP: the four steps of §2.1, layer by layer, last first.

    Returns ``(grad_x, grad_weights, grad_biases)`` with one entry per layer, in the
    order of ``weights``.
    """
    fn = "mlp_backward"
    if not isinstance(cache, MLPCache):
        raise TypeError(
            f"{fn}: expected cache to be the MLPCache of mlp_forward_with_cache "
            f"but got {type(cache).__name__}"
        )
    _, act_backward = _activation(fn, cache.activation_name)
    grad_weights: list[torch.Tensor] = []
    grad_biases: list[torch.Tensor | None] = []
    grad_h = grad_output  # step 1: ∂L/∂H_L arrives from the loss
    for layer in reversed(range(len(cache.linear))):
        if layer < len(cache.linear) - 1:
            grad_h = act_backward(grad_h, cache.activation[layer])  # step 2: Δ = ∂L/∂H ⊙ σ'(Z)
        grad_h, grad_w, grad_b = linear_backward(grad_h, cache.linear[layer])  # steps 3 and 4
        grad_weights.append(grad_w)
        grad_biases.append(grad_b)
    return grad_h, grad_weights[::-1], grad_biases[::-1]


def gradient_norms_vs_bound(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    grad_output: torch.Tensor,
    activation: str = "identity",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measured ``‖∂L/∂H_ℓ‖`` through depth, and its bound by operator norms (§2.3).

    The network is ``H_ℓ = σ(H_{ℓ−1} W_ℓᵀ)`` with ``σ`` after *every* layer (no biases),
    ``H_0 = x``. Each layer's Jacobian is ``J_ℓ = diag(σ'(z)) W_ℓ``, so
    ``‖∂L/∂H_{ℓ−1}‖ ≤ max|σ'(Z_ℓ)| · ‖W_ℓ‖₂ · ‖∂L/∂H_ℓ‖`` and, chained,
    ``‖∂L/∂H_ℓ‖ ≤ ‖∂L/∂H_L‖ ∏_{k>ℓ} max|σ'(Z_k)| ‖W_k‖₂`` (Frobenius norms over the batch).

    Returns ``(measured, bound)``, each of shape ``(L + 1,)`` and indexed by ``ℓ = 0..L``.
    """
    fn = "gradient_norms_vs_bound"
    _check_mlp(fn, weights, None)
    act_forward, act_backward = _activation(fn, activation)
    h, caches = x, []
    for weight in weights:
        z, lin_cache = linear_forward(h, weight)  # (B, H_ℓ)
        h, act_cache = act_forward(z)  # (B, H_ℓ)
        caches.append((lin_cache, act_cache))
    grad_output = _check_input("grad_output", fn, grad_output)
    _check_grad_shape(fn, grad_output, h.shape)

    grad_h = grad_output
    measured = [torch.linalg.vector_norm(grad_h)]
    bound = [measured[0]]
    for (lin_cache, act_cache) in reversed(caches):
        slope = act_backward(torch.ones_like(grad_h), act_cache).abs().max()  # max |σ'(Z_ℓ)|
        grad_h, _, _ = linear_backward(act_backward(grad_h, act_cache), lin_cache)
        measured.append(torch.linalg.vector_norm(grad_h))
        bound.append(bound[-1] * slope * torch.linalg.matrix_norm(lin_cache.weight, ord=2))
    return torch.stack(measured[::-1]), torch.stack(bound[::-1])


# --------------------------------------------------------------------------------------
# The Jacobian view (§2.3)
# --------------------------------------------------------------------------------------


def jacobian(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian ``J_ij = ∂y_i/∂x_j`` of ``y = f(x)``, of shape ``(*y.shape, *x.shape)``.

    Built one row at a time from reverse-mode products: backpropagating the basis vector
    ``e_i`` returns ``Jᵀ e_i``, row ``i`` of ``J`` (the chain rule ``∇_x L = Jᵀ ∇_y L`` with
    ``∇_y L = e_i``). Same layout as ``torch.autograd.functional.jacobian``.
    """
    fn = "jacobian"
    if not callable(f):
        raise TypeError(f"{fn}: expected f to be callable but got {type(f).__name__}")
    x = _check_input("x", fn, x)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{fn}: expected f to return a torch.Tensor but got {type(y).__name__}")
    rows = []
    flat_y = y.reshape(-1)  # (m,)
    for i in range(flat_y.numel()):
        if not flat_y.requires_grad:  # f ignores x: the Jacobian is zero
            rows.append(torch.zeros_like(x))
            continue
        (row,) = torch.autograd.grad(flat_y[i], x, retain_graph=True, allow_unused=True)  # Jᵀ e_i
        rows.append(torch.zeros_like(x) if row is None else row)
    J = torch.stack(rows) if rows else x.new_zeros((0, *x.shape))  # (m, *x.shape)
    return J.reshape(*y.shape, *x.shape)
