"""Widgets of the book: sliders a reader moves, figures and numbers that follow.

Every widget of the book is built by :func:`explorable` from two things:

* ``draw(**state)``: a function of the control values that returns a matplotlib figure,
  or ``(figure, html)`` where ``html`` is a short summary of the computed numbers;
* ``controls``: for each keyword of ``draw``, the grid of values the reader may pick.

The same definition serves both worlds:

* **live** (a Jupyter or Colab kernel, the default): moving a control calls ``draw`` again,
  computing with ``la_dl`` on the reader's device;
* **static** (the HTML book, no kernel): every state of the grid is drawn once at build time
  into a tree of ``ipywidgets.Stack`` s whose ``selected_index`` is linked to the controls
  by ``jslink``. The browser swaps the precomputed figure with no kernel and no network.
  The book build selects this mode with the environment variable ``LA_DL_WIDGETS=static``.

Section-specific widgets live in the submodules (``la_dl.widgets.mlp`` for §1, ...).
"""

from __future__ import annotations

import html as _html
import io
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["explorable", "widget_mode", "render_png", "DrawResult"]

DrawResult = Union[Figure, "tuple[Figure, str]"]

_MODE_ENV = "LA_DL_WIDGETS"
_MAX_STATIC_STATES = 64


def widget_mode() -> str:
    """``"static"`` when building the HTML book (``LA_DL_WIDGETS=static``), else ``"live"``."""
    mode = os.environ.get(_MODE_ENV, "live").strip().lower() or "live"
    if mode not in ("live", "static"):
        raise ValueError(f"widget_mode: expected {_MODE_ENV} to be 'live' or 'static' but got {mode!r}")
    return mode


def render_png(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes; the figure is closed so the inline backend does not show it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _control(name: str, values: Sequence[Any], description: str, initial: Any) -> W.ValueWidget:
    """A slider over numeric grids, toggle buttons over a few named options."""
    options = [(_label(v), v) for v in values]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    style = {"description_width": "initial"}
    if numeric:
        return W.SelectionSlider(
            options=options, value=initial, description=description, continuous_update=False,
            style=style, layout=W.Layout(width="420px"),
        )
    return W.ToggleButtons(options=options, value=initial, description=description, style=style)


def _view(result: DrawResult, dpi: int) -> tuple[bytes, str]:
    fig, summary = result if isinstance(result, tuple) else (result, "")
    return render_png(fig, dpi), summary


def _state_label(state: Mapping[str, Any]) -> str:
    """``"name=value|..."``: how a page (and the browser test) names a state of the grid."""
    return "|".join(f"{name}={_label(value)}" for name, value in state.items())


def _leaf(png: bytes, summary: str, state: Mapping[str, Any]) -> W.VBox:
    marker = f'<span class="la-dl-state" hidden>{_html.escape(_state_label(state))}</span>'
    return W.VBox([W.Image(value=png, format="png"), W.HTML(value=summary + marker)])


def explorable(
    draw: Callable[..., DrawResult],
    controls: Mapping[str, Sequence[Any]],
    *,
    labels: Mapping[str, str] | None = None,
    initial: Mapping[str, Any] | None = None,
    title: str = "",
    dpi: int = 80,
    mode: str | None = None,
) -> W.VBox:
    """Controls over ``controls``' grids, and the figure ``draw(**state)`` below them.

    Parameters
    ----------
    draw:
        ``draw(**state) -> Figure | (Figure, html)``; called with one value per control.
    controls:
        For each keyword of ``draw``, the values the reader may choose (in display order).
    labels:
        Optional display names of the controls (defaults to the keyword).
    initial:
        Optional starting values (default: the middle of each grid).
    title:
        Optional HTML heading above the controls.
    dpi:
        Resolution of the rendered figures (the static page stores one PNG per state).
    mode:
        ``"live"`` or ``"static"``; defaults to :func:`widget_mode`.
    """
    if not controls:
        raise ValueError("explorable: expected at least one control but got none")
    grids = {name: list(values) for name, values in controls.items()}
    for name, values in grids.items():
        if not values:
            raise ValueError(f"explorable: expected a non-empty grid for control {name!r}")
    labels = dict(labels or {})
    start = {name: values[len(values) // 2] for name, values in grids.items()}
    for name, value in (initial or {}).items():
        if name not in grids or value not in grids[name]:
            raise ValueError(
                f"explorable: expected the initial value of {name!r} to be one of its grid "
                f"values {grids.get(name)} but got {value!r}"
            )
        start[name] = value
    widgets = {
        name: _control(name, values, labels.get(name, name), start[name])
        for name, values in grids.items()
    }
    header = [W.HTML(f"<b>{_html.escape(title)}</b>")] if title else []
    panel = W.HBox(list(widgets.values()), layout=W.Layout(flex_flow="row wrap"))

    mode = mode or widget_mode()
    if mode == "static":
        body = _static_tree(draw, grids, widgets, start, dpi)
    else:
        body = _live_view(draw, widgets, dpi)
    box = W.VBox([*header, panel, body])
    box.add_class("la-dl-explorable")
    return box


def _live_view(draw: Callable[..., DrawResult], widgets: Mapping[str, W.ValueWidget], dpi: int) -> W.VBox:
    """One image and one summary, redrawn with la_dl whenever a control moves."""
    cache: dict[tuple, tuple[bytes, str]] = {}

    def state() -> dict[str, Any]:
        return {name: w.value for name, w in widgets.items()}

    def render() -> tuple[bytes, str]:
        key = tuple(state().items())
        if key not in cache:
            cache[key] = _view(draw(**state()), dpi)
        return cache[key]

    png, summary = render()
    image, text = W.Image(value=png, format="png"), W.HTML(value=summary)

    def update(_change: Any = None) -> None:
        image.value, text.value = render()

    for w in widgets.values():
        w.observe(update, names="value")
    return W.VBox([image, text])


def _static_tree(
    draw: Callable[..., DrawResult],
    grids: Mapping[str, list[Any]],
    widgets: Mapping[str, W.ValueWidget],
    start: Mapping[str, Any],
    dpi: int,
) -> W.Widget:
    """Every state drawn once; nested Stacks selected by the controls through ``jslink``.

    Level ``k`` of the tree holds one Stack per combination of the first ``k`` controls;
    each Stack's ``selected_index`` follows control ``k``'s ``index`` in the browser.
    """
    names = list(grids)
    n_states = 1
    for values in grids.values():
        n_states *= len(values)
    if n_states > _MAX_STATIC_STATES:
        raise ValueError(
            f"explorable: a static page stores every state; expected at most "
            f"{_MAX_STATIC_STATES} states but the grids give {n_states}"
        )
    views = {
        combo: _view(draw(**dict(zip(names, combo))), dpi)
        for combo in itertools.product(*grids.values())
    }

    def build(level: int, prefix: tuple) -> W.Widget:
        if level == len(names):
            return _leaf(*views[prefix], dict(zip(names, prefix)))
        name = names[level]
        children = [build(level + 1, (*prefix, v)) for v in grids[name]]
        stack = W.Stack(children=children, selected_index=grids[name].index(start[name]))
        W.jslink((widgets[name], "index"), (stack, "selected_index"))
        return stack

    return build(0, ())
