"""Export every figure of the book: ``python -m la_dl.figures --out figures/``.

Each figure registered in :mod:`la_dl.plots` is drawn with its default (CPU-sized)
arguments and written as SVG and PNG, e.g. for lecture slides.
"""

from __future__ import annotations

import argparse
import fnmatch
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from la_dl.device import seed_everything  # noqa: E402
from la_dl.plots import registry  # noqa: E402


def export(
    out: pathlib.Path, pattern: str = "*", formats: tuple[str, ...] = ("svg", "png")
) -> list[pathlib.Path]:
    """Draw the figures whose names match ``pattern`` and save them under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in registry().items():
        if not fnmatch.fnmatch(name, pattern):
            continue
        seed_everything(0)
        start = time.perf_counter()
        fig = draw()
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
        plt.close(fig)
        print(f"{name:<40s} {time.perf_counter() - start:6.2f} s")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("figures"))
    parser.add_argument("--only", default="*", help="glob over figure names, e.g. 's3_*'")
    parser.add_argument("--list", action="store_true", help="list the figure names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(registry()))
        return 0
    written = export(args.out, args.only)
    if not written:
        print(f"no figure matches {args.only!r}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
