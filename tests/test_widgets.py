"""la_dl.widgets.explorable: the live path recomputes, the static path stores every state."""

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from la_dl.widgets import explorable, widget_mode

calls = []


def draw(a, kind):
    calls.append((a, kind))
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, a])
    ax.set_title(kind)
    return fig, f"a={a}, kind={kind}"


def _find(widget, cls):
    found = [widget] if isinstance(widget, cls) else []
    for child in getattr(widget, "children", ()):
        found += _find(child, cls)
    return found


def test_live_mode_recomputes_on_change():
    calls.clear()
    box = explorable(draw, {"a": [1, 2, 3], "kind": ["x", "y"]}, mode="live")
    slider, toggle = box.children[0].children
    image, summary = box.children[1].children
    assert calls == [(2, "y")] and summary.value == "a=2, kind=y"
    before = image.value
    slider.value = 3
    assert calls[-1] == (3, "y") and summary.value == "a=3, kind=y" and image.value != before
    toggle.value = "x"
    assert summary.value == "a=3, kind=x"
    slider.value, toggle.value = 2, "y"  # back to a state already drawn: served from the cache
    assert len(calls) == 4  # (2,y) (3,y) (3,x) (2,x), each drawn once
    assert summary.value == "a=2, kind=y"


def test_static_mode_precomputes_every_state_in_linked_stacks():
    calls.clear()
    box = explorable(draw, {"a": [1, 2, 3], "kind": ["x", "y"]}, initial={"a": 1}, mode="static")
    assert sorted(calls) == sorted((a, k) for a in (1, 2, 3) for k in ("x", "y"))
    outer = box.children[1]
    assert isinstance(outer, W.Stack) and len(outer.children) == 3 and outer.selected_index == 0
    assert all(isinstance(s, W.Stack) and len(s.children) == 2 for s in outer.children)
    leaves = _find(outer, W.HTML)
    states = [leaf.value.split('class="la-dl-state" hidden>')[1].split("<")[0] for leaf in leaves]
    assert states == [f"a={a}|kind={k}" for a in (1, 2, 3) for k in ("x", "y")]
    assert len(_find(outer, W.Image)) == 6


def test_bad_controls():
    with pytest.raises(ValueError, match="at least one control"):
        explorable(draw, {})
    with pytest.raises(ValueError, match="non-empty grid"):
        explorable(draw, {"a": []})
    with pytest.raises(ValueError, match="initial value of 'a'"):
        explorable(draw, {"a": [1, 2]}, initial={"a": 5})
    with pytest.raises(ValueError, match="at most 64 states"):
        explorable(draw, {"a": list(range(9)), "kind": [str(i) for i in range(8)]}, mode="static")


def test_widget_mode_env(monkeypatch):
    monkeypatch.setenv("LA_DL_WIDGETS", "static")
    assert widget_mode() == "static"
    monkeypatch.setenv("LA_DL_WIDGETS", "frozen")
    with pytest.raises(ValueError, match="'live' or 'static'"):
        widget_mode()
