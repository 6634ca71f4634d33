"""One visual style for every figure of the book."""

from __future__ import annotations

import matplotlib as mpl

# Colours (colour-blind safe, Okabe-Ito) with a fixed meaning across the book.
BLUE, ORANGE, GREEN, RED, PURPLE, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#777777"
)
CMAP_DIVERGING = "RdBu_r"
CMAP_SEQUENTIAL = "viridis"

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.frameon": False,
    "svg.hashsalt": "la_dl",  # stable SVG ids, so re-exported figures diff cleanly
}


def apply() -> None:
    """Apply the book style globally (the notebooks' setup does this via ``la_dl.plots``)."""
    mpl.rcParams.update(RC)


apply()
