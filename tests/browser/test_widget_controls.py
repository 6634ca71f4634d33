"""The widgets of the static HTML book respond to their controls with no kernel.

Each control of each widget is moved in Chromium; the figure and the numbers shown must change
to the precomputed state for the control's new value (each state carries a hidden
``.la-dl-state`` marker "name=value|..." written by ``la_dl.widgets.explorable``).
Also reports each page's weight and keeps it in the low megabytes.
"""

from __future__ import annotations

import pytest
from _book import SCREENSHOTS, notebook_has_widgets, page_weight, toc_pages

pytestmark = pytest.mark.browser

WIDGET_PAGES = [p for p in toc_pages() if notebook_has_widgets(p)]
MAX_PAGE_MIB = 6.0

STATE_JS = "box => [...box.querySelectorAll('.la-dl-state')].map(e => e.textContent)"
IMAGE_JS = "box => [...box.querySelectorAll('img.widget-image')].map(i => [i.src, i.naturalWidth])"


def _state(box) -> dict[str, str]:
    markers = box.evaluate(STATE_JS)
    assert len(markers) == 1, f"expected one visible state per widget but found {markers}"
    return dict(item.split("=", 1) for item in markers[0].split("|"))


def _move(control) -> str:
    """Move a control to another value; return the value it shows afterwards."""
    classes = control.get_attribute("class")
    if "widget-slider" in classes:
        handle = control.locator(".noUi-handle")
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("ArrowLeft" if at_max else "ArrowRight")
        return control.locator(".widget-readout").inner_text().strip()
    buttons = control.locator("button")
    for i in range(buttons.count()):
        if "mod-active" not in (buttons.nth(i).get_attribute("class") or ""):
            buttons.nth(i).click()
            return buttons.nth(i).inner_text().strip()
    raise AssertionError("a toggle control with a single option cannot move")


@pytest.mark.parametrize("path", WIDGET_PAGES)
def test_every_control_swaps_the_precomputed_state(browser, book_url, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(book_url + path, wait_until="load")
        page.wait_for_selector(".la-dl-explorable .la-dl-state", state="attached", timeout=30_000)
        boxes = page.locator(".la-dl-explorable")
        assert boxes.count() >= 1
        moved = 0
        for b in range(boxes.count()):
            box = boxes.nth(b)
            box.scroll_into_view_if_needed()
            controls = box.locator(":scope > .widget-hbox").first.locator(".widget-slider, .widget-toggle-buttons")
            for c in range(controls.count()):
                before, images_before = _state(box), box.evaluate(IMAGE_JS)
                shown = _move(controls.nth(c))
                page.wait_for_function(
                    "([box, before]) => { const m = box.querySelectorAll('.la-dl-state');"
                    " return m.length === 1 && m[0].textContent !== before; }",
                    arg=[box.element_handle(), "|".join(f"{k}={v}" for k, v in before.items())],
                    timeout=10_000,
                )
                after = _state(box)
                changed = {k: v for k, v in after.items() if before.get(k) != v}
                assert list(changed.values()) == [shown], (
                    f"{path}: moving a control to {shown!r} showed state {after} (was {before})")
                images = box.evaluate(IMAGE_JS)
                assert images != images_before and all(width > 0 for _, width in images), (
                    f"{path}: the figure did not change to a loaded image")
                moved += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        boxes.first.screenshot(path=str(SCREENSHOTS / f"widget__{path.replace('/', '__')}.png"))
        assert moved >= 1
        assert not errors, errors
    finally:
        page.close()


def test_page_weights_stay_in_the_low_megabytes(capsys):
    rows = []
    for path in toc_pages():
        html, images = page_weight(path)
        rows.append((path, html / 2**20, images / 2**20))
    report = "\n".join(f"{p:<45s} page {h:6.2f} MiB + figures {i:5.2f} MiB" for p, h, i in rows)
    (SCREENSHOTS.parent / "page_weights.txt").write_text(report + "\n")
    with capsys.disabled():
        print("\n" + report)
    heavy = [p for p, h, i in rows if h + i > MAX_PAGE_MIB]
    assert not heavy, f"pages over {MAX_PAGE_MIB} MiB: {heavy}"
