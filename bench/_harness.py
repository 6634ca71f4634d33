"""The benchmark harness: timing, ratios against the built-in, peak memory, targets, output.

A benchmark module (``bench/bench_<name>.py``) exposes one function::

    def run(ctx: Context) -> list[Result]

and the harness (``python -m bench``) calls it, prints the table and writes the JSON. Inside
``run``, a module times its la_dl implementation and the torch built-in **in the same run**
with :func:`compare` (interleaved rounds of ``torch.utils.benchmark``: a burst of load from
other processes hits both alike), and states each target as a :class:`Check`. A check that
falls short prints ``MISSED``; nothing is dropped or hidden, and ``--strict`` turns a miss
into a non-zero exit status.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from la_dl.attention import peak_memory
from la_dl.device import describe_device, synchronize
from la_dl.flops import median_time

__all__ = ["Context", "Check", "Result", "compare", "measure_peak", "format_table", "write_json"]

MIB = 2**20


@dataclass(frozen=True)
class Context:
    """What every benchmark module receives: where to run and how long to measure."""

    device: torch.device
    quick: bool = False  # smaller sizes and fewer rounds (a smoke run, e.g. in tests)
    rounds: int = 5  # interleaved rounds per comparison; the median over rounds is reported
    min_run_time: float = 0.2  # seconds per torch.utils.benchmark measurement

    def pick(self, full: Any, quick: Any) -> Any:
        """``quick`` in a quick run, else ``full``."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Check:
    """One target: ``value <relation> bound`` (relation ``"<="`` or ``">="``)."""

    name: str  # what is compared, e.g. "la_dl / F.linear time"
    value: float
    relation: str
    bound: float
    expected: str = ""  # optional: the figure the issue or the book quotes, for the reader

    def __post_init__(self) -> None:
        if self.relation not in ("<=", ">="):
            raise ValueError(f"Check: expected relation '<=' or '>=' but got {self.relation!r}")

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value <= self.bound if self.relation == "<=" else self.value >= self.bound

    @property
    def verdict(self) -> str:
        return "met" if self.met else "MISSED"


@dataclass
class Result:
    """One benchmark case: medians (seconds) per implementation, memory, derived numbers, checks."""

    bench: str  # "gemm", "backprop", ...
    case: str  # e.g. "B=1024, 1024x1024 float32"
    seconds: dict[str, float]  # implementation -> median seconds per call
    peak_bytes: dict[str, int | None] = field(default_factory=dict)
    ratio: float | None = None  # median over rounds of la_dl / built-in, measured in one run
    metrics: dict[str, float] = field(default_factory=dict)  # GFLOP/s, intensity, ...
    checks: list[Check] = field(default_factory=list)
    note: str = ""


def compare(
    fns: dict[str, Callable[[], object]],
    ctx: Context,
    ours: str = "la_dl",
    reference: str = "torch",
) -> tuple[dict[str, float], float]:
    """Median seconds of each callable, and the median over rounds of ``ours / reference``.

    Every round measures each callable once (``torch.utils.benchmark``'s
    ``blocked_autorange``), in a fixed order; the ratio is taken round by round, so a change
    of load between rounds cancels out of it.
    """
    if ours not in fns or reference not in fns:
        raise ValueError(f"compare: expected keys {ours!r} and {reference!r} but got {sorted(fns)}")
    for fn in fns.values():  # warm-up: allocations, kernel selection, lazy initialisation
        fn()
    synchronize(ctx.device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = ctx.pick(ctx.rounds, 1)
    min_run_time = ctx.pick(ctx.min_run_time, 0.02)
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_time(fn, min_run_time=min_run_time))
    ratio = statistics.median(a / b for a, b in zip(times[ours], times[reference]))
    return {name: statistics.median(t) for name, t in times.items()}, ratio


def measure_peak(fns: dict[str, Callable[[], object]], device: torch.device) -> dict[str, int | None]:
    """Peak extra memory of one call of each (``la_dl.attention.peak_memory``; None if unknown)."""
    return {name: peak_memory(fn, device) for name, fn in fns.items()}


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1e3:10.3f}" if seconds is not None else f"{'-':>10}"


def _mib(b: int | None) -> str:
    return f"{b / MIB:8.1f}" if b is not None else f"{'-':>8}"


def format_table(results: Sequence[Result]) -> str:
    """The results as plain text: one line per case, then one line per check with its verdict."""
    lines = []
    header = (f"{'bench':<9} {'case':<40} {'la_dl ms':>10} {'torch ms':>10} {'ratio':>7} "
              f"{'la_dl MiB':>9} {'torch MiB':>9}  other")
    lines += [header, "-" * len(header)]
    for r in results:
        ratio = f"{r.ratio:6.2f}x" if r.ratio is not None else f"{'-':>7}"
        others = ", ".join(f"{k} {v:.3g}" for k, v in r.metrics.items())
        extra = [f"{k} {v * 1e3:.3f} ms" for k, v in r.seconds.items() if k not in ("la_dl", "torch")]
        lines.append(
            f"{r.bench:<9} {r.case:<40} {_ms(r.seconds.get('la_dl'))} {_ms(r.seconds.get('torch'))} "
            f"{ratio} {_mib(r.peak_bytes.get('la_dl'))} {_mib(r.peak_bytes.get('torch'))}  "
            + "; ".join(x for x in (", ".join(extra), others, r.note) if x)
        )
    checks = [(r, c) for r in results for c in r.checks]
    lines += ["", f"{'target':<62} {'value':>10} {'bound':>12}  verdict", "-" * 96]
    for r, c in checks:
        expected = f"  (expected {c.expected})" if c.expected else ""
        lines.append(
            f"{(r.bench + ' ' + r.case + ': ' + c.name)[:62]:<62} {c.value:10.3f} "
            f"{c.relation + ' ' + format(c.bound, 'g'):>12}  {c.verdict}{expected}"
        )
    missed = sum(not c.met for _, c in checks)
    lines.append(f"{len(checks) - missed} of {len(checks)} targets met"
                 + (f"; {missed} MISSED" if missed else ""))
    return "\n".join(lines)


def environment(device: torch.device) -> dict[str, Any]:
    """Where the numbers come from: device, torch, threads, machine."""
    return {
        "device": describe_device(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        # Other processes share the cores: a load above the thread count slows every timing.
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def _jsonable(result: Result) -> dict[str, Any]:
    data = asdict(result)
    data["checks"] = [{**asdict(c), "met": c.met} for c in result.checks]
    return data


def write_json(results: Sequence[Result], path: Path, env: dict[str, Any], skipped: dict[str, str]) -> None:
    """Write ``{"environment", "results", "skipped", "targets_met", "targets_missed"}`` to ``path``."""
    checks = [c for r in results for c in r.checks]
    payload = {
        "environment": env,
        "results": [_jsonable(r) for r in results],
        "skipped": skipped,
        "targets_met": sum(c.met for c in checks),
        "targets_missed": sum(not c.met for c in checks),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
