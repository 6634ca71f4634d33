"""Stage the book's JavaScript assets so the HTML works with no network.

MathJax 3 comes from the PyPI package ``django-static-mathjax`` (pinned in
requirements.txt, importable as ``mathjax``); the ipywidgets HTML manager and RequireJS come
from the npm registry via ``npm pack`` (pinned below, integrity-checked by npm, cached in
``_build/vendor-cache``). Everything lands in ``_build/vendor-assets/vendor/``, which
``_config.yml`` copies to ``_build/html/vendor/`` (``html_extra_path``). Nothing sits under
``_static/``, which Jupyter Book 1 would add to every page.

Without npm the widget manager is replaced by a loader that fetches it from a CDN: the book
still builds, but its widgets then need a network. ``--require-offline`` makes that an error.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shutil
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "vendor-assets" / "vendor"
CACHE = ROOT / "_build" / "vendor-cache"

HTML_MANAGER = ("@jupyter-widgets/html-manager", "1.0.15", "jupyter-widgets-html-manager-1.0.15.tgz")
REQUIREJS = ("requirejs", "2.3.7", "requirejs-2.3.7.tgz")
CDN = "https://cdn.jsdelivr.net/npm/"

CDN_LOADER = """\
// No offline copy (npm was missing at build time): load RequireJS, then the widget manager, from a CDN.
(function () {{
  function load(src, then) {{
    var s = document.createElement("script");
    s.src = src;
    s.onload = then;
    document.head.appendChild(s);
  }}
  load("{cdn}requirejs@{requirejs}/require.js", function () {{
    load("{cdn}@jupyter-widgets/html-manager@{manager}/dist/embed-amd.js");
  }});
}})();
"""


def stage_mathjax() -> None:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "vendor_assets: MathJax not found; pip install django-static-mathjax (see requirements.txt)"
        )
    es5 = pathlib.Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise SystemExit(f"vendor_assets: expected MathJax 3 in {es5} but found no tex-mml-chtml.js")
    target = OUT / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    # The speech-rule engine (sre) is large and only loaded on demand by the a11y menu.
    shutil.copytree(es5, target, ignore=shutil.ignore_patterns("sre", "*.map"))


def npm_pack(name: str, version: str, tarball: str) -> pathlib.Path | None:
    path = CACHE / tarball
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "pack", "--silent", f"{name}@{version}"], cwd=CACHE, check=True,
                   stdout=subprocess.DEVNULL)
    return path


def extract(tarball: pathlib.Path, prefix: str, target: pathlib.Path) -> None:
    """Write the tarball's files under ``prefix`` (a folder or one file) to ``target``."""
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix) or member.name.endswith(".map"):
                continue
            dest = target / member.name[len(prefix):] if prefix.endswith("/") else target
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())


def stage_widgets(require_offline: bool) -> bool:
    manager = npm_pack(*HTML_MANAGER)
    requirejs = npm_pack(*REQUIREJS)
    target = OUT / "html-manager"
    if target.exists():
        shutil.rmtree(target)
    if manager is None or requirejs is None:
        if require_offline:
            raise SystemExit("vendor_assets: npm is needed to fetch the widget manager offline copy")
        print("vendor_assets: npm not found; widgets in the HTML book will load from a CDN", file=sys.stderr)
        target.mkdir(parents=True)
        loader = CDN_LOADER.format(cdn=CDN, requirejs=REQUIREJS[1], manager=HTML_MANAGER[1])
        (target / "embed-amd.js").write_text(loader)
        (OUT / "require.js").write_text("// RequireJS is loaded by html-manager/embed-amd.js\n")
        return False
    extract(manager, "package/dist/", target)
    extract(requirejs, "package/require.js", OUT / "require.js")
    return True


def stage_glue() -> None:
    """Our own glue script (tools/assets/), served beside the vendored files."""
    for path in (ROOT / "tools" / "assets").glob("*.js"):
        shutil.copy2(path, OUT / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-offline", action="store_true")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stage_mathjax()
    stage_glue()
    offline = stage_widgets(args.require_offline)
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file()) / 2**20
    print(f"vendor_assets: staged {size:.1f} MiB in {OUT.relative_to(ROOT)} "
          f"(widgets {'offline' if offline else 'via CDN'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
