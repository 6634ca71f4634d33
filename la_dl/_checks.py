"""Input checks shared by every module: clear ``ValueError``/``TypeError`` at the boundary.

Messages follow torch's style: "<function>: expected <what> but got <what arrived>".
They never use ``assert``, which ``python -O`` strips.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_tensor(name: str, fn: str, value: object) -> torch.Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{fn}: expected {name} to be a torch.Tensor but got {type(value).__name__}")
    return value


def check_floating(name: str, fn: str, tensor: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``tensor`` has a floating-point dtype."""
    if not tensor.is_floating_point():
        raise TypeError(f"{fn}: expected {name} to have a floating-point dtype but got {tensor.dtype}")


def check_ndim(name: str, fn: str, tensor: torch.Tensor, allowed: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``tensor.ndim`` is one of ``allowed``."""
    allowed = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    if tensor.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(
            f"{fn}: expected {name} to be {want} but got a {tensor.ndim}-D tensor of shape "
            f"{tuple(tensor.shape)}"
        )


def check_same(fn: str, **tensors: torch.Tensor | None) -> None:
    """Raise ``TypeError``/``ValueError`` unless all given tensors share dtype and device."""
    present = {k: t for k, t in tensors.items() if t is not None}
    if not present:
        return
    (first_name, first), *rest = present.items()
    for name, t in rest:
        if t.dtype != first.dtype:
            raise TypeError(
                f"{fn}: expected {name} to have the dtype of {first_name} ({first.dtype}) "
                f"but got {t.dtype}"
            )
        if t.device != first.device:
            raise ValueError(
                f"{fn}: expected {name} on the device of {first_name} ({first.device}) "
                f"but got {t.device}"
            )


def check_positive_int(name: str, fn: str, value: object) -> int:
    """Raise unless ``value`` is a positive ``int`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: expected {name} to be an int but got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{fn}: expected {name} > 0 but got {value}")
    return value


def check_linear_args(
    fn: str, input: object, weight: object, bias: object | None, name: str = "input"
) -> None:
    """The arguments of ``F.linear``: ``input (*, in_features)``, ``weight (out, in)``, ``bias (out,)``.

    Shared by ``la_dl.mlp.linear`` and ``la_dl.backprop.linear_forward``, which take the same
    arguments (``name`` is what the caller calls its input).
    """
    check_tensor(name, fn, input)
    check_tensor("weight", fn, weight)
    check_ndim("weight", fn, weight, 2)
    if input.ndim == 0:
        raise ValueError(f"{fn}: expected {name} to be at least 1-D (*, in_features) but got a 0-D tensor")
    check_floating(name, fn, input)
    out_features, in_features = weight.shape
    if input.shape[-1] != in_features:
        raise ValueError(
            f"{fn}: expected {name} of shape (*, {in_features}) (its last dimension to equal weight's "
            f"in_features {in_features}) but got {tuple(input.shape)} (weight {tuple(weight.shape)})"
        )
    if bias is not None:
        check_tensor("bias", fn, bias)
        if bias.shape != (out_features,):
            raise ValueError(f"{fn}: expected bias of shape ({out_features},) but got {tuple(bias.shape)}")
    check_same(fn, **{name: input, "weight": weight, "bias": bias})
