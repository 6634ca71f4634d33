"""Keep every notebook's setup cell identical and pointing at the one repository URL.

The repository URL lives in one place, ``_config.yml`` (``repository.url``): the launch
buttons read it there, and this script writes it into the setup cell of every notebook in
``chapters/`` (a fresh Colab runtime has no checkout to read it from).

    python tools/notebook_setup.py          # rewrite the setup cells
    python tools/notebook_setup.py --check  # exit 1 if any notebook is out of date
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MARKER = "# Setup:"
TAGS = ["nbval-ignore-output", "hide-input"]

TEMPLATE = '''\
# Setup: import la_dl (installing it on a fresh runtime such as Colab), seed, pick the device.
import importlib.util, pathlib, subprocess, sys

REPO_URL = "{url}"  # written from _config.yml by tools/notebook_setup.py
if importlib.util.find_spec("la_dl") is None:
    here = pathlib.Path.cwd().resolve()
    checkout = next((p for p in (here, *here.parents) if (p / "la_dl" / "__init__.py").exists()), None)
    source = str(checkout) if checkout else f"git+{{REPO_URL}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()

import la_dl.plots  # noqa: F401  (the book's figure style)
from la_dl.device import by_device, default_device, describe_device, seed_everything

device = default_device()
seed_everything(0)
print(describe_device(device))'''


def repository_url(config: pathlib.Path = ROOT / "_config.yml") -> str:
    """The ``repository.url`` entry of ``_config.yml`` (read without a YAML dependency)."""
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config.read_text(), re.M)
    if not match:
        raise SystemExit(f"{config}: no repository.url entry")
    return match.group(1).strip("'\"")


def setup_source(url: str | None = None) -> str:
    return TEMPLATE.format(url=url or repository_url())


def _setup_cell_index(cells: list[dict]) -> int | None:
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(MARKER):
            return i
    return None


def sync(path: pathlib.Path, source: str, check: bool) -> bool:
    """Make the notebook's setup cell equal ``source``; return True if it was (or is) stale."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    index = _setup_cell_index(cells)
    lines = source.splitlines(keepends=True)
    if index is None:
        # Insert right after the opening markdown cell (title and learning goals).
        index = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
        cells.insert(index, {"cell_type": "code", "execution_count": None, "id": "setup",
                             "metadata": {}, "outputs": [], "source": []})
    cell = cells[index]
    tags = cell["metadata"].get("tags", [])
    stale = cell["source"] != lines or any(t not in tags for t in TAGS)
    if stale and not check:
        cell["source"] = lines
        cell["metadata"]["tags"] = [*tags, *(t for t in TAGS if t not in tags)]
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args(argv)
    source = setup_source()
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    stale = [nb for nb in notebooks if sync(nb, source, args.check)]
    for nb in stale:
        print(f"{'stale' if args.check else 'updated'}: {nb}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
