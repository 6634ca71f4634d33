"""§7 Initialisation, conditioning and gradient flow.

The whole section rests on one computation (§7.1): for ``y = W x`` with independent,
zero-mean weights and inputs,

    Var(y_i) = n_in · Var(W_ij) · Var(x_j).

Choosing ``Var(W)`` so that the factor ``n_in · Var(W)`` is 1 (after the nonlinearity
has taken its share) keeps signals the same size from layer to layer:

* Xavier / Glorot (tanh, sigmoid, linear): ``Var(W) = 2 / (n_in + n_out)``;
* He / Kaiming (ReLU, which zeroes half the units and so halves the variance):
  ``Var(W) = 2 / n_in``.

The initialisers mirror ``torch.nn.init`` (same names, gains, fans and random calls, so
with the same generator they draw the same numbers). The two experiments follow §7.2 and
§7.3: :func:`product_singular_values` measures ``σ_max`` of the product of the layers'
Jacobians at every depth, and :func:`signal_propagation` runs a deep network forward and
backward and records the size of the activations and gradients at every layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from la_dl import backprop
from la_dl._checks import check_floating, check_positive_int, check_tensor

__all__ = [
    "calculate_gain",
    "fan_in_and_fan_out",
    "normal_",
    "xavier_normal_",
    "xavier_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "INITS",
    "TINY_STD",
    "init_std",
    "init_weight",
    "output_variance",
    "product_singular_values",
    "SignalPropagation",
    "signal_propagation",
]

TINY_STD = 0.01
"""The standard deviation of the "tiny" initialisation of §7.3."""

INITS = ("naive", "tiny", "xavier", "he")
"""The initialisations compared in §7: N(0, 1), N(0, 0.01²), Xavier and He."""

NONLINEARITIES = ("linear", "relu", "tanh", "sigmoid", "gelu")


# --------------------------------------------------------------------------------------
# torch.nn.init's conventions: gains and fans
# --------------------------------------------------------------------------------------


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain ``torch.nn.init.calculate_gain`` recommends for a nonlinearity.

    linear/conv and sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu with negative slope
    ``a`` (default 0.01): √(2 / (1 + a²)); selu: 3/4.
    """
    fn = "calculate_gain"
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)  # ReLU zeroes half the units: double the variance
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"{fn}: expected the negative slope to be a number but got {param!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"{fn}: expected nonlinearity to be linear, conv*, sigmoid, tanh, relu, leaky_relu or selu "
        f"but got {nonlinearity!r}"
    )


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """``(n_in, n_out)`` of a weight of shape ``(out, in, *kernel)``, as torch counts them.

    A linear weight ``(n_out, n_in)`` has fan-in ``n_in`` (the terms summed into one output);
    a conv weight multiplies both fans by the kernel's size.
    """
    fn = "fan_in_and_fan_out"
    tensor = check_tensor("tensor", fn, tensor)
    if tensor.ndim < 2:
        raise ValueError(
            f"{fn}: expected a weight with at least 2 dimensions (out, in, *kernel) but got "
            f"shape {tuple(tensor.shape)}"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _check_weight(fn: str, tensor: object) -> torch.Tensor:
    tensor = check_tensor("tensor", fn, tensor)
    check_floating("tensor", fn, tensor)
    return tensor


def _check_generator(fn: str, generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{fn}: expected generator to be a torch.Generator but got {type(generator).__name__}"
        )


# --------------------------------------------------------------------------------------
# The initialisers (in place, like torch.nn.init)
# --------------------------------------------------------------------------------------


def normal_(
    tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill ``tensor`` with draws from ``N(mean, std²)``; the "naive" init is ``std = 1``."""
    fn = "normal_"
    tensor = _check_weight(fn, tensor)
    _check_generator(fn, generator)
    if not std >= 0:
        raise ValueError(f"{fn}: expected std >= 0 but got {std}")
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def xavier_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Xavier/Glorot normal (§7.1): ``W ~ N(0, σ²)``, ``σ = gain · √(2 / (n_in + n_out))``.

    ``Var(W) = 2 / (n_in + n_out)`` is the compromise between ``1/n_in`` (keeps the forward
    variance) and ``1/n_out`` (keeps the backward variance) (Glorot & Bengio, 2010).
    """
    fn = "xavier_normal_"
    tensor = _check_weight(fn, tensor)
    _check_generator(fn, generator)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


def xavier_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Xavier/Glorot uniform: ``W ~ U(−a, a)``, ``a = gain · √(6 / (n_in + n_out))``.

    ``U(−a, a)`` has variance ``a²/3``, the same ``2 / (n_in + n_out)`` as :func:`xavier_normal_`.
    """
    fn = "xavier_uniform_"
    tensor = _check_weight(fn, tensor)
    _check_generator(fn, generator)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # the bound whose uniform law has this std
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def _kaiming_std(fn: str, tensor: torch.Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{fn}: expected mode to be 'fan_in' or 'fan_out' but got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He/Kaiming normal (§7.1): ``W ~ N(0, σ²)``, ``σ = gain / √fan``.

    With ``nonlinearity="relu"`` and ``mode="fan_in"`` this is ``Var(W) = 2 / n_in``
    (He et al., 2015): ReLU halves the variance, so the weights double it back.
    ``mode="fan_out"`` keeps the backward pass's variance instead.
    """
    fn = "kaiming_normal_"
    tensor = _check_weight(fn, tensor)
    _check_generator(fn, generator)
    std = _kaiming_std(fn, tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He/Kaiming uniform: ``W ~ U(−b, b)``, ``b = gain · √(3 / fan)`` (same variance)."""
    fn = "kaiming_uniform_"
    tensor = _check_weight(fn, tensor)
    _check_generator(fn, generator)
    bound = math.sqrt(3.0) * _kaiming_std(fn, tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


# --------------------------------------------------------------------------------------
# The four initialisations of §7 by name
# --------------------------------------------------------------------------------------


def init_std(init: str, fan_in: int, fan_out: int) -> float:
    """The weight standard deviation of an initialisation named in :data:`INITS`.

    naive: 1; tiny: :data:`TINY_STD`; xavier: √(2 / (n_in + n_out)); he: √(2 / n_in).
    """
    if init == "naive":
        return 1.0
    if init == "tiny":
        return TINY_STD
    if init == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if init == "he":
        return math.sqrt(2.0 / fan_in)
    raise ValueError(f"init_std: expected init to be one of {list(INITS)} but got {init!r}")


def init_weight(
    out_features: int,
    in_features: int,
    init: str,
    scale: float = 1.0,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A ``(out_features, in_features)`` weight drawn by the named init, times ``scale``.

    The draw happens on the CPU (so a seeded ``generator`` gives the same numbers on every
    device) and the result is moved to ``device``.
    """
    fn = "init_weight"
    check_positive_int("out_features", fn, out_features)
    check_positive_int("in_features", fn, in_features)
    if init not in INITS:
        raise ValueError(f"{fn}: expected init to be one of {list(INITS)} but got {init!r}")
    if not scale > 0:
        raise ValueError(f"{fn}: expected scale > 0 but got {scale}")
    weight = torch.empty(out_features, in_features, dtype=dtype)  # (n_out, n_in)
    if init == "xavier":
        xavier_normal_(weight, generator=generator)
    elif init == "he":
        kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    else:
        normal_(weight, 0.0, init_std(init, in_features, out_features), generator=generator)
    return (scale * weight).to(device)


def output_variance(
    n_in: int,
    weight_std: float,
    input_std: float = 1.0,
    *,
    n_out: int = 512,
    n_samples: int = 512,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> float:
    """Measured ``Var(y)`` of ``y = W x`` with ``W_ij ~ N(0, weight_std²)``, ``x_j ~ N(0, input_std²)``.

    The theory of §7.1 predicts ``n_in · weight_std² · input_std²``. Averages ``y²`` over
    ``n_samples`` inputs and ``n_out`` outputs (the mean is zero by symmetry).
    """
    fn = "output_variance"
    check_positive_int("n_in", fn, n_in)
    check_positive_int("n_out", fn, n_out)
    check_positive_int("n_samples", fn, n_samples)
    weight = normal_(torch.empty(n_out, n_in, dtype=dtype), 0.0, weight_std, generator=generator)
    x = normal_(torch.empty(n_samples, n_in, dtype=dtype), 0.0, input_std, generator=generator)
    y = x.to(device) @ weight.to(device).T  # (n_samples, n_out): Y = X Wᵀ
    return float(y.pow(2).mean())


# --------------------------------------------------------------------------------------
# §7.2 the spectrum of the product, §7.3 the signal through depth
# --------------------------------------------------------------------------------------


def _check_experiment(fn: str, depth: int, width: int, init: str, nonlinearity: str) -> str:
    check_positive_int("depth", fn, depth)
    check_positive_int("width", fn, width)
    if init not in INITS:
        raise ValueError(f"{fn}: expected init to be one of {list(INITS)} but got {init!r}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"{fn}: expected nonlinearity to be one of {list(NONLINEARITIES)} but got {nonlinearity!r}"
        )
    return "identity" if nonlinearity == "linear" else nonlinearity


def _resolve(
    device: torch.device | str | None, dtype: torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    device = torch.device(device) if device is not None else torch.device("cpu")
    if dtype is None:  # float64 keeps 1e±30 products representable; MPS has no float64
        dtype = torch.float32 if device.type == "mps" else torch.float64
    return device, dtype


def product_singular_values(
    depth: int,
    width: int,
    init: str,
    nonlinearity: str = "linear",
    *,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``σ_max(J_ℓ ⋯ J_1)`` for ``ℓ = 1..depth``: the top singular value of the product (§7.2).

    Each layer is ``h_ℓ = σ(W_ℓ h_{ℓ−1})`` with ``width × width`` weights from ``init``
    (times ``scale``). Its Jacobian is ``J_ℓ = diag(σ'(z_ℓ)) W_ℓ``, evaluated along one
    random input ``h_0 ~ N(0, I)``; for ``nonlinearity="linear"`` it is ``W_ℓ`` itself, and
    the product is ``W_ℓ ⋯ W_1``. Returns a tensor of shape ``(depth,)``.
    """
    fn = "product_singular_values"
    name = _check_experiment(fn, depth, width, init, nonlinearity)
    device, dtype = _resolve(device, dtype)
    act_forward, act_backward = backprop.ACTIVATIONS[name]
    h = torch.randn(1, width, dtype=dtype, generator=generator).to(device)  # (1, n): h_0 as a row
    product = torch.eye(width, dtype=dtype, device=device)  # (n, n): J_0 ⋯ = I
    sigma_max = []
    for _ in range(depth):
        weight = init_weight(width, width, init, scale, generator=generator, dtype=dtype, device=device)
        z, _ = backprop.linear_forward(h, weight)  # (1, n): z_ℓ = W_ℓ h_{ℓ−1}
        h, cache = act_forward(z)  # (1, n)
        slope = act_backward(torch.ones_like(z), cache)  # (1, n): σ'(z_ℓ)
        product = (slope.T * weight) @ product  # (n, n): J_ℓ = diag(σ'(z_ℓ)) W_ℓ, times the rest
        sigma_max.append(torch.linalg.matrix_norm(product, ord=2))
    return torch.stack(sigma_max)


@dataclass
class SignalPropagation:
    """Per-layer sizes from :func:`signal_propagation` (root mean square of the entries).

    ``activation_norms[ℓ]`` is RMS(H_ℓ) for ``ℓ = 0..L`` (``H_0`` the input);
    ``gradient_norms[ℓ]`` is RMS(∂L/∂H_ℓ) for ``ℓ = 0..L``;
    ``weight_gradient_norms[ℓ − 1]`` is RMS(∂L/∂W_ℓ) for ``ℓ = 1..L``.
    """

    activation_norms: torch.Tensor  # (L + 1,)
    gradient_norms: torch.Tensor  # (L + 1,)
    weight_gradient_norms: torch.Tensor  # (L,)


def _rms(t: torch.Tensor) -> torch.Tensor:
    return t.pow(2).mean().sqrt()


def signal_propagation(
    depth: int,
    width: int,
    init: str,
    nonlinearity: str = "relu",
    *,
    scale: float = 1.0,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> SignalPropagation:
    """Run ``H_ℓ = σ(H_{ℓ−1} W_ℓᵀ)`` forward and backward and measure every layer (§7.3).

    The input ``H_0`` and the upstream gradient ``∂L/∂H_L`` are standard normal
    (``batch_size × width``), so a well-initialised network keeps both RMS values near 1
    at every layer. The backward pass is la_dl's own (:mod:`la_dl.backprop`).
    """
    fn = "signal_propagation"
    name = _check_experiment(fn, depth, width, init, nonlinearity)
    check_positive_int("batch_size", fn, batch_size)
    device, dtype = _resolve(device, dtype)
    act_forward, act_backward = backprop.ACTIVATIONS[name]

    h = torch.randn(batch_size, width, dtype=dtype, generator=generator).to(device)  # (B, n): H_0
    activations, caches = [_rms(h)], []
    for _ in range(depth):
        weight = init_weight(width, width, init, scale, generator=generator, dtype=dtype, device=device)
        z, lin_cache = backprop.linear_forward(h, weight)  # (B, n): Z_ℓ = H_{ℓ−1} W_ℓᵀ
        h, act_cache = act_forward(z)  # (B, n): H_ℓ = σ(Z_ℓ)
        activations.append(_rms(h))
        caches.append((lin_cache, act_cache))

    grad_h = torch.randn(batch_size, width, dtype=dtype, generator=generator).to(device)  # (B, n)
    gradients, weight_gradients = [_rms(grad_h)], []
    for lin_cache, act_cache in reversed(caches):
        delta = act_backward(grad_h, act_cache)  # (B, n): Δ = ∂L/∂H ⊙ σ'(Z)
        grad_h, grad_weight, _ = backprop.linear_backward(delta, lin_cache)  # ΔW and ΔᵀX
        gradients.append(_rms(grad_h))
        weight_gradients.append(_rms(grad_weight))
    return SignalPropagation(
        activation_norms=torch.stack(activations),
        gradient_norms=torch.stack(gradients[::-1]),
        weight_gradient_norms=torch.stack(weight_gradients[::-1]),
    )
