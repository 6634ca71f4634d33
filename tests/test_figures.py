"""python -m la_dl.figures: every registered figure can be listed and exported."""

import subprocess
import sys

from la_dl.figures import export
from la_dl.plots import figure, registry


def test_registry_holds_the_section_figures():
    names = registry()
    assert {"s1_gemm_throughput", "s1_digit_templates", "s1_collapse"} <= set(names)
    assert all(callable(fn) for fn in names.values())


def test_export_writes_svg_and_png(tmp_path):
    written = export(tmp_path, "s1_collapse")
    assert sorted(p.name for p in written) == ["s1_collapse.png", "s1_collapse.svg"]
    assert (tmp_path / "s1_collapse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "s1_collapse.svg").read_text()


def test_cli_lists_and_rejects_unknown(tmp_path):
    listed = subprocess.run([sys.executable, "-m", "la_dl.figures", "--list"], capture_output=True,
                            text=True, check=True)
    assert "s1_collapse" in listed.stdout.split()
    missing = subprocess.run([sys.executable, "-m", "la_dl.figures", "--out", str(tmp_path), "--only", "nope*"],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "no figure matches" in missing.stderr


def test_names_are_unique():
    import pytest

    with pytest.raises(ValueError, match="already registered"):
        figure("s1_collapse")(lambda: None)
