"""Figures of the book: one submodule per section, one function per figure.

Each figure function takes keyword arguments with defaults sized for a laptop CPU and
returns a ``matplotlib.figure.Figure``. Decorating it with :func:`figure` registers it, so
``python -m la_dl.figures --out figures/`` exports every figure of the book for slides.

Submodules are imported lazily (matplotlib is only needed when a figure is drawn).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from matplotlib.figure import Figure

__all__ = ["figure", "registry", "load_all"]

F = TypeVar("F", bound=Callable[..., Figure])

_REGISTRY: dict[str, Callable[..., Figure]] = {}


def figure(name: str) -> Callable[[F], F]:
    """Register a figure function under ``name`` (the exported file's stem)."""

    def register(fn: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"figure: the name {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return register


def load_all() -> None:
    """Import every ``la_dl.plots`` submodule so all figures are registered."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def registry() -> dict[str, Callable[..., Figure]]:
    """All registered figures, by name (after importing every submodule)."""
    load_all()
    return dict(sorted(_REGISTRY.items()))
