"""The benchmark harness: timing, ratios against the built-in, peak memory, targets, output.

A benchmark module (``bench/bench_<name>.py``) exposes one function::

    def run(ctx: Context) -> list[Result]

and the harness (``python -m bench``) calls it, prints the table and writes the JSON. Inside
``run``, a module times its la_dl implementation and the torch built-in **in the same run**
with :func:`compare` (interleaved rounds of ``torch.utils.benchmark``: a burst of load from
other processes hits both alike), and states each target as a :class:`Check`. A check that
falls short prints ``MISSED``; nothing is dropped or hidden, and ``--strict`` turns a miss
into a non-zero exit status.

Threads. On a CPU the harness runs **one thread by default** (``python -m bench --threads N``
to choose another count; on an accelerator torch's own default is kept). The project's CPU
has two cores shared with other jobs: a multi-threaded kernel waits at every barrier for
its slowest worker, so one descheduled thread stalls the whole call, and a call that
allocates large buffers spends its time in page faults rather than arithmetic. On one
thread there is no barrier to stall, other jobs slow both sides of a comparison alike, and
the ratios are steady; the absolute GFLOP/s are then those of one core. The count is
printed above the table and recorded in the JSON (``environment.threads`` and
``environment.threads_source``); a target calibrated on several threads (e.g. the GEMM's
time per row) is judged at the count the run used, and a miss is printed as such.

Long calls. A call that takes at least ``min_run_time`` by itself (attention at n = 8192
on a CPU) is timed once per round, which is what ``blocked_autorange`` would report
anyway, without its extra calibration call; and a comparison whose round lasts a second
or more runs at most three rounds (see :func:`compare`), so that ``python -m bench`` stays
within a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from la_dl.device import describe_device, synchronize
from la_dl.flops import median_time
from la_dl.measure import peak_memory

__all__ = [
    "Context", "Check", "Result", "compare", "measure_peak", "format_table", "write_json",
    "default_threads", "environment", "seconds_per_call",
]

MIB = 2**20
LONG_ROUND, LONG_ROUNDS = 1.0, 3  # a comparison whose round takes >= 1 s runs at most 3 rounds


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
    ``blocked_autorange``, or one call when a call outlasts ``min_run_time``), in a fixed
    order; the ratio is taken round by round, so a change of load between rounds cancels out
    of it. When one round of all the callables takes ``LONG_ROUND`` seconds or more (timed on
    the warm-up), at most ``LONG_ROUNDS`` rounds are run.
    """
    if ours not in fns or reference not in fns:
        raise ValueError(f"compare: expected keys {ours!r} and {reference!r} but got {sorted(fns)}")
    start = time.perf_counter()
    for fn in fns.values():  # warm-up: allocations, kernel selection, lazy initialisation
        fn()
    synchronize(ctx.device)
    warm_up = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = ctx.pick(ctx.rounds, 1)
    if warm_up >= LONG_ROUND:  # seconds per call: the spread over rounds is small against it
        rounds = min(rounds, LONG_ROUNDS)
    min_run_time = ctx.pick(ctx.min_run_time, 0.02)
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(seconds_per_call(fn, ctx.device, min_run_time))
    ratio = statistics.median(a / b for a, b in zip(times[ours], times[reference]))
    return {name: statistics.median(t) for name, t in times.items()}, ratio


def seconds_per_call(fn: Callable[[], object], device: torch.device, min_run_time: float) -> float:
    """Seconds per call: one timed call if it lasts ``min_run_time`` or more, else the median
    of ``torch.utils.benchmark``'s blocks (:func:`la_dl.flops.median_time`)."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    once = time.perf_counter() - start
    return once if once >= min_run_time else median_time(fn, min_run_time=min_run_time)


def default_threads(device: torch.device) -> int | None:
    """The harness's thread count when none is asked for: 1 on a CPU, None (torch's) elsewhere."""
    return 1 if device.type == "cpu" else None


def measure_peak(fns: dict[str, Callable[[], object]], device: torch.device) -> dict[str, int | None]:
    """Peak extra memory of one call of each (``la_dl.measure.peak_memory``; None if unknown)."""
    return {name: peak_memory(fn, device) for name, fn in fns.items()}


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1e3:10.3f}" if seconds is not None else f"{'-':>10}"


def _mib(b: int | None) -> str:
    return f"{b / MIB:8.1f}" if b is not None else f"{'-':>8}"


def format_table(results: Sequence[Result], env: dict[str, Any] | None = None) -> str:
    """The results as plain text: one line per case, then one line per check with its verdict.

    With ``env`` (:func:`environment`), a first line says where and on how many threads.
    """
    lines = []
    if env is not None:
        lines.append(f"{env['device']} | {env['threads']} thread(s) ({env.get('threads_source', '?')}) | "
                     f"load average {env['load_average_1min']}")
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
    width = 92
    lines += ["", f"{'target':<{width}} {'value':>10} {'bound':>12}  verdict", "-" * (width + 33)]
    for r, c in checks:
        expected = f"  (expected {c.expected})" if c.expected else ""
        lines.append(
            f"{(r.bench + ' ' + r.case + ': ' + c.name)[:width]:<{width}} {c.value:10.3f} "
            f"{c.relation + ' ' + format(c.bound, 'g'):>12}  {c.verdict}{expected}"
        )
    missed = sum(not c.met for _, c in checks)
    lines.append(f"{len(checks) - missed} of {len(checks)} targets met"
                 + (f"; {missed} MISSED" if missed else ""))
    if env is not None and env.get("quick"):
        lines.append("quick run (small sizes, one short round): a smoke test of the suite; "
                     "its verdicts do not judge the targets")
    return "\n".join(lines)


def environment(device: torch.device, threads_source: str = "torch default") -> dict[str, Any]:
    """Where the numbers come from: device, torch, threads (and who chose them), machine."""
    return {
        "device": describe_device(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "threads_source": threads_source,
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
