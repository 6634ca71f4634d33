"""Where the built book is, which pages it has, and how Chromium is started."""

from __future__ import annotations

import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def toc_pages() -> list[str]:
    """The HTML pages of the book, in _toc.yml order (root first)."""
    text = (ROOT / "_toc.yml").read_text()
    root = re.search(r"^root:\s*(\S+)", text, re.M).group(1)
    files = [root, *re.findall(r"file:\s*(\S+)", text)]
    return [f"{re.sub(r'[.](md|ipynb)$', '', f)}.html" for f in files]


def notebook_image_count(html_path: str) -> int:
    """How many image outputs the committed notebook behind ``html_path`` holds (0 for .md pages)."""
    import json

    notebook = ROOT / html_path.replace(".html", ".ipynb")
    if not notebook.exists():
        return 0
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        1
        for cell in cells
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
    )


def notebook_has_widgets(html_path: str) -> bool:
    """Whether the committed notebook behind ``html_path`` displays a widget."""
    notebook = ROOT / html_path.replace(".html", ".ipynb")
    return notebook.exists() and "application/vnd.jupyter.widget-view+json" in notebook.read_text()


def page_weight(html_path: str) -> tuple[int, int]:
    """Bytes of a built page and of the figures it references (vendored JS/CSS not counted)."""
    page = HTML / html_path
    text = page.read_text(errors="replace")
    images = set(re.findall(r'src="(?:\.\./)*(_images/[^"]+)"', text))
    return page.stat().st_size, sum((HTML / image).stat().st_size for image in images)
