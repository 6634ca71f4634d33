"""Benchmark la_dl's norms against the built-ins (§6).

In the suite: ``python -m bench --only norm`` (:func:`run`, the harness's protocol). On its own,
with more options: ``python -m bench.bench_norm [--rows 4096] [--dim 1024] [--threads 1]``.

Times ``la_dl.norm.rms_norm`` vs ``F.rms_norm`` and ``la_dl.norm.layer_norm`` vs the fused
``F.layer_norm`` on a (4096, 1024) float32 input with ``torch.utils.benchmark`` and prints the
medians and the ratios. Targets: rms_norm within 1.1x, layer_norm within 10x of the built-in.

On a CPU with several threads the la_dl side can be dominated by page faults rather than
arithmetic: each call allocates fresh (4096, 1024) buffers (two for layer_norm, one for the fused
kernel) and glibc may hand freed ones back to the OS between calls. ``--threads 1``, or running
with ``MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_MMAP_THRESHOLD_=4294967296``, measures the
arithmetic alone. (The suite runs one thread on a CPU by default: see :mod:`bench._harness`.)
:func:`run` also reports the peak extra memory of one call and the largest difference from
the built-in; a quick run uses (512, 1024).
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from bench._harness import Check, Context, Result, compare, measure_peak
from la_dl.device import default_device, describe_device
from la_dl.norm import layer_norm, rms_norm

NAME = "norm"
TARGETS = {"rms_norm": 1.1, "layer_norm": 10.0}


def run(ctx: Context) -> list[Result]:
    """The harness's protocol: rms_norm vs ``F.rms_norm``, layer_norm vs ``F.layer_norm``, float32."""
    device = ctx.device
    rows, dim = ctx.pick(4096, 512), 1024
    torch.manual_seed(0)
    x = torch.randn(rows, dim, device=device)  # (N, D)
    weight = torch.randn(dim, device=device)  # (D,)  γ
    bias = torch.randn(dim, device=device)  # (D,)  β
    pairs = {
        "rms_norm": {"la_dl": lambda: rms_norm(x, [dim], weight),
                     "torch": lambda: F.rms_norm(x, [dim], weight)},
        "layer_norm": {"la_dl": lambda: layer_norm(x, [dim], weight, bias),
                       "torch": lambda: F.layer_norm(x, [dim], weight, bias)},
    }
    results = []
    for name, fns in pairs.items():
        with torch.inference_mode():
            diff = (fns["la_dl"]() - fns["torch"]()).abs().max().item()
            peak = measure_peak(fns, device)
            seconds, ratio = compare(fns, ctx)
        results.append(Result(
            NAME, f"{name} ({rows}, {dim}) float32", seconds, peak_bytes=peak, ratio=ratio,
            metrics={"max |diff|": diff},
            checks=[Check(f"{name} / F.{name} time", ratio, "<=", TARGETS[name])],
        ))
    return results


def median_seconds(stmt: str, env: dict, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements per op")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = default_device()
    torch.manual_seed(0)
    x = torch.randn(args.rows, args.dim, device=device)  # (N, D)
    weight = torch.randn(args.dim, device=device)  # (D,)
    bias = torch.randn(args.dim, device=device)  # (D,)
    env = {"F": F, "x": x, "w": weight, "b": bias, "D": [args.dim],
           "rms_norm": rms_norm, "layer_norm": layer_norm}
    pairs = {
        "rms_norm": ("rms_norm(x, D, w)", "F.rms_norm(x, D, w)"),
        "layer_norm": ("layer_norm(x, D, w, b)", "F.layer_norm(x, D, w, b)"),
    }
    print(f"{describe_device(device)}; input ({args.rows}, {args.dim}) float32")
    print(f"{'op':<11} {'la_dl (ms)':>11} {'torch (ms)':>11} {'ratio':>7} {'target':>7}  (medians)")
    ok = True
    for name, (ours, theirs) in pairs.items():
        # Alternate the two a few times: on a shared machine the load drifts between runs.
        rounds = [(median_seconds(ours, env, args.min_run_time),
                   median_seconds(theirs, env, args.min_run_time)) for _ in range(args.rounds)]
        t_ours = statistics.median(a for a, _ in rounds)
        t_theirs = statistics.median(b for _, b in rounds)
        ratio = statistics.median(a / b for a, b in rounds)
        ok &= ratio <= TARGETS[name]
        print(f"{name:<11} {t_ours * 1e3:>11.3f} {t_theirs * 1e3:>11.3f} {ratio:>6.2f}x "
              f"{TARGETS[name]:>6.1f}x")
    print("all targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
