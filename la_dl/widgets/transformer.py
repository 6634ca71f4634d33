"""Widget of §5: the offset k and the rotation R_k that shifts every position by k."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import torch

from la_dl import transformer
from la_dl.plots.transformer import shift_rotation
from la_dl.widgets import explorable

__all__ = ["shift_explorer"]


def shift_explorer(
    offsets: Sequence[int] = (0, 1, 2, 3, 5, 8, 13, 21), d_model: int = 16, pos: int = 3
) -> W.VBox:
    """Pick an offset k: R_k, and PE(pos) turned by R_k onto PE(pos + k) in two planes."""

    def draw(k: int):
        fig = shift_rotation(k, d_model, pos)
        pe = transformer.sinusoidal_positional_encoding(64 + k, d_model, dtype=torch.float64)
        R = transformer.position_shift_matrix(k, d_model, dtype=torch.float64)
        error = (pe[:64] @ R.T - pe[k : 64 + k]).abs().max().item()
        summary = (f"k = {k}: max over pos = 0..63 of |R<sub>{k}</sub>·PE(pos) − PE(pos + {k})| "
                   f"= <b>{error:.1e}</b>; the same matrix for every position")
        return fig, summary

    return explorable(draw, {"k": list(offsets)}, labels={"k": "offset k"},
                      initial={"k": 5} if 5 in offsets else None,
                      title="Relative position as a rotation: PE(pos + k) = R_k · PE(pos)")
