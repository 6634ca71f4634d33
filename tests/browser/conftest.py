"""Fixtures for the browser checks: a local server over _build/html and Debian's Chromium.

The book must already be built (``make html-strict`` runs before ``make browser``).
Chromium is driven by Playwright for Python with the system browser (``CHROMIUM`` env var,
default ``/usr/bin/chromium``): Playwright's own browser download is not available offline.
"""

from __future__ import annotations

import functools
import http.server
import pathlib
import threading

import pytest
from _book import CHROMIUM, CHROMIUM_FLAGS, HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def book_url():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make html-strict` (or `make book`) first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()
