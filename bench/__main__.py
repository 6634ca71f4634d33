"""Run the benchmark suite: ``python -m bench [--quick] [--only gemm backprop] [--strict]``.

Every la_dl implementation is timed against its torch built-in in the same run; the table
shows medians, ratios, peak memory and each target's verdict, and the same numbers are
written to ``_build/bench/results.json``. Exit status 0 unless ``--strict`` and a target
was missed (a shared machine's load moves the timings; the table says what happened).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import torch

from bench._harness import Context, Result, default_threads, environment, format_table, write_json
from la_dl.device import default_device

# Benchmark modules in the order they run. A module joins the suite by exposing
# ``run(ctx: Context) -> list[Result]``; one without it is listed as skipped, never dropped silently.
MODULES = ["bench_gemm", "bench_backprop", "bench_conv", "bench_attention", "bench_norm"]
ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="e.g. gemm backprop (default: all)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: la_dl's default device)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison")
    parser.add_argument("--min-run-time", type=float, default=0.2, help="seconds per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "bench" / "results.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: 1 on a CPU, steady on a shared machine, see "
                             "bench._harness; torch's default on an accelerator)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: expected a positive count but got {args.threads}")

    device = torch.device(args.device) if args.device else default_device()
    threads = args.threads if args.threads is not None else default_threads(device)
    if threads is not None:
        torch.set_num_threads(threads)
    source = ("--threads" if args.threads is not None
              else "harness default on CPU" if threads is not None else "torch default")
    if device.type == "cuda":  # time what a reader gets by default, but never TF32 for float32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    ctx = Context(device, quick=args.quick, rounds=args.rounds, min_run_time=args.min_run_time)
    env = environment(device, source)
    env["quick"] = args.quick
    env["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    print(f"{env['device']} | {env['threads']} thread(s) ({source}) | {'quick' if args.quick else 'full'} run"
          f" | load average {env['load_average_1min']}")

    wanted = [m for m in MODULES if args.only is None or m.removeprefix("bench_") in args.only]
    results: list[Result] = []
    skipped: dict[str, str] = {}
    start = time.perf_counter()
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "run", None)
        if run is None:
            skipped[name] = f"no run(ctx) function yet: run `python bench/{name}.py` on its own"
            continue
        t0 = time.perf_counter()
        results += run(ctx)
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    env["seconds"] = round(time.perf_counter() - start, 1)

    print()
    print(format_table(results, env))
    for name, why in skipped.items():
        print(f"SKIPPED {name}: {why}")
    write_json(results, args.out, env, skipped)
    print(f"results written to {args.out}")
    missed = any(not c.met for r in results for c in r.checks)
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
