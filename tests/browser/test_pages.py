"""Every page of the book in a real browser: math typeset, images loaded, widgets rendered,
no 404 for a local asset, no request leaving the machine, no JavaScript error.

A full-page screenshot of each page is saved under ``_build/screenshots/``.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from _book import SCREENSHOTS, notebook_image_count, toc_pages

pytestmark = pytest.mark.browser

PAGES = toc_pages()


def _visit(browser, url):
    """Open ``url``; return the page and the problems seen while loading it."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    host = urlparse(url).netloc

    def on_console(msg):
        if msg.type == "error":
            problems.append(f"console error: {msg.text}")

    def on_response(response):
        if urlparse(response.url).netloc == host and response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    def on_request(request):
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https") and parsed.netloc != host:
            problems.append(f"request leaves the machine: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("response", on_response)
    page.on("request", on_request)
    page.goto(url, wait_until="load")
    return page, problems


@pytest.mark.parametrize("path", PAGES)
def test_page_renders(browser, book_url, path):
    page, problems = _visit(browser, book_url + path)
    try:
        # Math: MathJax 3 (served locally) has finished and left no raw TeX behind.
        n_math = page.locator(".math").count()
        if n_math:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=30_000)
            page.evaluate("MathJax.startup.promise")
            untypeset = page.evaluate(
                "[...document.querySelectorAll('.math')]"
                ".filter(e => !e.querySelector('mjx-container')).length"
            )
            assert untypeset == 0, f"{untypeset} of {n_math} math elements left untypeset on {path}"
            errors = page.locator("mjx-merror").count()
            assert errors == 0, f"{errors} MathJax errors on {path}"

        # Widgets: every saved widget view is rendered by the local HTML manager.
        n_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if n_views:
            page.wait_for_selector(".jupyter-widgets", timeout=30_000)
            page.wait_for_function(
                "document.querySelectorAll('.widget-slider, .widget-toggle-buttons, .widget-dropdown')"
                ".length > 0", timeout=30_000)
            rendered = page.locator(".la-dl-explorable").count()
            assert rendered >= n_views, f"{rendered} of {n_views} widgets rendered on {path}"

        # Images: every <img> has loaded (scroll so lazy images load too).
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_load_state("networkidle")
        broken = page.evaluate(
            "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        assert not broken, f"images that did not load on {path}: {broken}"
        # Figures: the executed page shows at least the figures its notebook has.
        figures = page.locator(".cell_output img").count()
        expected = notebook_image_count(path)
        assert figures >= expected, f"{figures} figures shown on {path}, its notebook has {expected}"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{path.replace('/', '__')}.png"), full_page=True)
        assert not problems, "\n".join(problems)
    finally:
        page.close()


EXERCISE_PAGES = [p for p in PAGES if "exercises" in p]


@pytest.mark.parametrize("path", EXERCISE_PAGES)
def test_solutions_start_collapsed_link_their_exercise_and_open_on_click(browser, book_url, path):
    page, problems = _visit(browser, book_url + path)
    try:
        solutions = page.locator(".solution.dropdown")
        n = solutions.count()
        assert n >= 1, f"no solutions on {path}"
        page.wait_for_function(
            "document.querySelectorAll('.solution.dropdown.toggle-hidden').length === "
            "document.querySelectorAll('.solution.dropdown').length", timeout=10_000)
        for i in range(n):
            solution = solutions.nth(i)
            body = solution.locator(":scope > :not(.admonition-title):not(button)").first
            assert not body.is_visible(), f"solution {i + 1} on {path} is open on load"
            link = solution.locator(".admonition-title a").first
            assert link.count() == 1 and "#" in (link.get_attribute("href") or ""), (
                f"solution {i + 1} on {path} does not link to its exercise")
        first = solutions.first
        first.scroll_into_view_if_needed()
        first.locator("button.toggle-button").click()
        first.locator(":scope > :not(.admonition-title):not(button)").first.wait_for(state="visible", timeout=5_000)
        assert not problems, "\n".join(problems)
    finally:
        page.close()
