"""The benchmark harness (``python -m bench``): checks, the table, the JSON, the module protocol.

No timing is asserted here: the suite measures speed, these tests check that what it
measures is reported faithfully (a missed target printed as MISSED, every module run,
the thread count recorded). The end-to-end run uses the fastest module in quick mode.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `bench` lives beside `la_dl`, not inside the installed package
    sys.path.insert(0, str(ROOT))

import bench.__main__ as bench_main  # noqa: E402
from bench._harness import (  # noqa: E402
    Check,
    Context,
    Result,
    compare,
    default_threads,
    format_table,
    seconds_per_call,
    write_json,
)

JSON_KEYS = {"environment", "results", "skipped", "targets_met", "targets_missed"}


@pytest.fixture
def restore_threads():
    """``main`` sets torch's thread count for the process; put it back after the test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------
# Check: a target and its verdict
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "relation", "bound", "met"),
    [
        (1.0, "<=", 1.5, True),
        (1.5, "<=", 1.5, True),  # the bound itself meets the target
        (1.6, "<=", 1.5, False),
        (0.7, ">=", 0.65, True),
        (0.65, ">=", 0.65, True),
        (0.6, ">=", 0.65, False),
        (math.nan, "<=", 1.5, False),  # a failed measurement never counts as met
        (math.nan, ">=", 0.0, False),
    ],
)
def test_check_met_both_ways(value, relation, bound, met):
    check = Check("ratio", value, relation, bound)
    assert check.met is met
    assert check.verdict == ("met" if met else "MISSED")


@pytest.mark.parametrize("relation", ["<", "==", "le", ""])
def test_check_rejects_unknown_relation(relation):
    with pytest.raises(ValueError, match=r"Check: expected relation '<=' or '>=' but got"):
        Check("ratio", 1.0, relation, 2.0)


# ----------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------


def _results() -> list[Result]:
    return [
        Result("conv", "channel-heavy", {"la_dl": 0.03, "torch": 0.01, "GEMM only": 0.025},
               peak_bytes={"la_dl": 16 * 2**20, "torch": None}, ratio=3.0,
               checks=[Check("conv2d / F.conv2d time", 3.0, "<=", 1.5)], note="GEMM alone is 2.50x"),
        Result("norm", "rms_norm", {"la_dl": 0.002, "torch": 0.002}, ratio=1.0,
               metrics={"max |diff|": 1e-7}, checks=[Check("rms_norm / F.rms_norm time", 1.0, "<=", 1.1)]),
    ]


def test_table_prints_missed_and_met_targets():
    table = format_table(_results())
    lines = table.splitlines()
    conv_check = next(line for line in lines if "conv2d / F.conv2d time" in line)
    norm_check = next(line for line in lines if "rms_norm / F.rms_norm time" in line)
    assert conv_check.rstrip().endswith("MISSED")
    assert "3.000" in conv_check and "<= 1.5" in conv_check
    assert norm_check.rstrip().endswith("met")
    assert lines[-1] == "1 of 2 targets met; 1 MISSED"


def test_table_shows_times_memory_extras_and_notes():
    table = format_table(_results())
    case = next(line for line in table.splitlines() if line.startswith("conv") and "channel-heavy" in line)
    assert "30.000" in case and "10.000" in case  # ms
    assert "3.00x" in case
    assert "16.0" in case  # MiB of la_dl; torch's unknown peak shows as "-"
    assert "GEMM only 25.000 ms" in case
    assert "GEMM alone is 2.50x" in case


def test_table_header_names_threads_and_quick_runs_say_so():
    env = {"device": "cpu: test", "threads": 1, "threads_source": "harness default on CPU",
           "load_average_1min": 0.5, "quick": True}
    table = format_table(_results(), env)
    assert table.splitlines()[0] == "cpu: test | 1 thread(s) (harness default on CPU) | load average 0.5"
    assert "quick run" in table.splitlines()[-1]
    assert "quick run" not in format_table(_results(), {**env, "quick": False})


def test_all_met_has_no_missed_line():
    results = [Result("x", "case", {"la_dl": 1.0, "torch": 1.0}, checks=[Check("a", 1.0, "<=", 2.0)])]
    assert format_table(results).splitlines()[-1] == "1 of 1 targets met"


def test_write_json_counts_targets(tmp_path):
    path = tmp_path / "deep" / "results.json"
    write_json(_results(), path, {"threads": 1}, {"bench_x": "why"})
    data = json.loads(path.read_text())
    assert set(data) == JSON_KEYS
    assert (data["targets_met"], data["targets_missed"]) == (1, 1)
    assert [c["met"] for r in data["results"] for c in r["checks"]] == [False, True]
    assert data["skipped"] == {"bench_x": "why"}


# ----------------------------------------------------------------------------------------
# Timing helpers (what they call and return, not how fast anything is)
# ----------------------------------------------------------------------------------------


def test_compare_requires_both_sides():
    ctx = Context(torch.device("cpu"), quick=True)
    with pytest.raises(ValueError, match=r"compare: expected keys 'la_dl' and 'torch' but got \['la_dl'\]"):
        compare({"la_dl": lambda: None}, ctx)


def test_compare_times_every_callable():
    ctx = Context(torch.device("cpu"), quick=True, min_run_time=0.001)
    calls = {"la_dl": 0, "torch": 0, "extra": 0}

    def counted(name):
        def fn():
            calls[name] += 1
        return fn

    seconds, ratio = compare({name: counted(name) for name in calls}, ctx)
    assert set(seconds) == set(calls)
    assert all(s > 0 and math.isfinite(s) for s in seconds.values())
    assert ratio > 0 and math.isfinite(ratio)
    assert all(n >= 2 for n in calls.values())  # warm-up, then at least one timed call each


def test_a_long_call_is_timed_once():
    calls = []

    def slow():  # longer than min_run_time by itself: one timed call is the measurement
        calls.append(1)
        x = torch.ones(8)
        for _ in range(2_000):
            x = x + 0
        return x

    seconds = seconds_per_call(slow, torch.device("cpu"), min_run_time=1e-4)
    assert len(calls) == 1 and seconds >= 1e-4


def test_default_threads_is_one_on_cpu_only():
    assert default_threads(torch.device("cpu")) == 1
    assert default_threads(torch.device("cuda")) is None  # an accelerator keeps torch's count


# ----------------------------------------------------------------------------------------
# The suite: every module follows the protocol; the command runs, reports and writes JSON
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", bench_main.MODULES)
def test_every_listed_module_has_run(name):
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "run", None)), f"bench.{name} has no run(ctx)"
    assert module.NAME == name.removeprefix("bench_")


@pytest.mark.parametrize("name", ["bench_conv", "bench_attention", "bench_norm"])
def test_former_scripts_still_run_on_their_own(name):
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--threads" in proc.stdout and "--min-run-time" in proc.stdout


def test_python_m_bench_quick_writes_results(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "backprop", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 thread(s) (harness default on CPU)" in proc.stdout
    assert "targets met" in proc.stdout and "SKIPPED" not in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) == JSON_KEYS
    env = data["environment"]
    assert env["threads"] == 1 and env["threads_source"] == "harness default on CPU" and env["quick"] is True
    assert data["skipped"] == {}
    assert data["results"] and {r["bench"] for r in data["results"]} == {"backprop"}
    for r in data["results"]:
        assert {"la_dl", "torch"} <= set(r["seconds"]) and r["ratio"] > 0
        assert all(isinstance(c["met"], bool) for c in r["checks"])
    checks = [c for r in data["results"] for c in r["checks"]]
    assert data["targets_met"] + data["targets_missed"] == len(checks) > 0
    assert data["targets_missed"] == sum(not c["met"] for c in checks)


@pytest.fixture
def fake_modules(monkeypatch):
    """Two stand-in benchmark modules: one misses its target, one has no run(ctx)."""
    missing = types.ModuleType("bench.bench_fake")
    missing.run = lambda ctx: [Result("fake", "case", {"la_dl": 2.0, "torch": 1.0}, ratio=2.0,
                                      checks=[Check("fake / torch time", 2.0, "<=", 1.1)])]
    norun = types.ModuleType("bench.bench_norun")
    monkeypatch.setitem(sys.modules, "bench.bench_fake", missing)
    monkeypatch.setitem(sys.modules, "bench.bench_norun", norun)
    monkeypatch.setattr(bench_main, "MODULES", ["bench_fake", "bench_norun"])


def test_missed_target_is_printed_and_strict_fails(fake_modules, tmp_path, capsys, restore_threads):
    out = tmp_path / "r.json"
    assert bench_main.main(["--device", "cpu", "--threads", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 thread(s) (--threads)" in text
    assert "fake case: fake / torch time" in text and "MISSED" in text
    assert "SKIPPED bench_norun: no run(ctx)" in text
    data = json.loads(out.read_text())
    assert data["targets_missed"] == 1 and "bench_norun" in data["skipped"]
    assert data["environment"]["threads"] == 2 and data["environment"]["threads_source"] == "--threads"
    assert bench_main.main(["--device", "cpu", "--strict", "--only", "fake", "--out", str(out)]) == 1


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        bench_main.main(["--threads", "0"])
    assert "--threads: expected a positive count but got 0" in capsys.readouterr().err
