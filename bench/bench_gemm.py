"""GEMM throughput (§1.3): ``la_dl.mlp.linear`` vs ``F.linear`` as the batch grows.

For ``Y = X Wᵀ`` with a square ``d x d`` weight it times both at each batch size ``B``,
and reports GFLOP/s, the arithmetic intensity (:func:`la_dl.flops.linear_cost`) and the
time per row. The ratio la_dl / ``F.linear`` is reported at every size without a target
(la_dl adds the bias in a second pass, ``F.linear`` fuses it into ``addmm``). Checks:

* the large float32 GEMM reaches at least 65% of the device's measured FMA peak (on the
  project's 2-core CPU, about 65-75% of about 420 GFLOP/s); both are best cases (the GEMM's
  fastest block, the FMA loop's fastest run), so the load of other jobs does not skew one;
* the time per row at ``B = 1`` is at least 8x that at ``B >= 1024`` (about 8-12x there):
  a matrix-vector product is memory-bound, a GEMM is not. The layer is ``d = 4096`` (the
  seed's LLM-sized layer): its 64 MiB weight comes from DRAM for every ``B = 1`` call. A layer
  whose weight fits in the last-level cache hides much of that (``d = 1024``, 4 MiB: about
  6x on the project's CPU), which is why the size is stated with the result.

The FMA peak of a CPU is measured, not looked up: a small C loop of independent vector
fused multiply-adds (no memory traffic at all) is compiled with the system's C compiler
and run on every thread. Without a compiler, or on an accelerator, the fraction is not
checked (and the table says so).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from bench._harness import Check, Context, Result, compare
from la_dl.flops import linear_cost
from la_dl.mlp import linear

NAME = "gemm"
PEAK_FRACTION, PER_ROW_RATIO = 0.65, 8.0

_FMA_SOURCE = r"""
#ifdef __AVX512F__
#define WIDTH 64
#else
#define WIDTH 32
#endif
typedef float vec __attribute__((vector_size(WIDTH)));
#define LANES (WIDTH / 4)
#define NACC 12 /* independent chains: enough to hide the FMA latency on two pipes */
int fma_flops_per_iteration(void) { return 2 * LANES * NACC; }
float fma_loop(long iters) {
  vec acc[NACC], m, c;
  for (int j = 0; j < LANES; j++) { m[j] = 0.9999f; c[j] = 1e-4f; }
  for (int k = 0; k < NACC; k++) for (int j = 0; j < LANES; j++) acc[k][j] = (float)(k + j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int k = 0; k < NACC; k++) acc[k] = acc[k] * m + c; /* one FMA per lane */
  }
  float s = 0;
  for (int k = 0; k < NACC; k++) for (int j = 0; j < LANES; j++) s += acc[k][j];
  return s;
}
"""


def _fma_library() -> ctypes.CDLL | None:
    """Compile the FMA loop for this CPU (``-march=native``); None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    build = Path(tempfile.mkdtemp(prefix="la_dl_fma_"))
    (build / "fma.c").write_text(_FMA_SOURCE)
    cmd = [cc, "-O2", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC",
           str(build / "fma.c"), "-o", str(build / "fma.so")]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    lib = ctypes.CDLL(str(build / "fma.so"))
    lib.fma_loop.restype, lib.fma_loop.argtypes = ctypes.c_float, [ctypes.c_long]
    return lib


def cpu_fma_peak(threads: int, seconds: float = 0.3, repeats: int = 5) -> float | None:
    """Measured float32 FMA peak of the CPU in GFLOP/s on ``threads`` threads (best of ``repeats``).

    ctypes releases the GIL during the call, so Python threads run the loop in parallel.
    The best, not the median: a peak is what the silicon can do when nothing interferes.
    """
    lib = _fma_library()
    if lib is None:
        return None
    per_iteration = lib.fma_flops_per_iteration()
    start = time.perf_counter()
    lib.fma_loop(1_000_000)
    iters = max(int(1_000_000 * seconds / (time.perf_counter() - start)), 1)
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=lib.fma_loop, args=(iters,)) for _ in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, threads * iters * per_iteration / (time.perf_counter() - start) / 1e9)
    return best


def run(ctx: Context) -> list[Result]:
    device, dtype = ctx.device, torch.float32
    d = ctx.pick(4096, 256)
    batches = ctx.pick([1, 4, 16, 64, 256, 1024, 2048], [1, 64, 1024])
    torch.manual_seed(0)
    weight = torch.randn(d, d, device=device, dtype=dtype)  # (d_out, d_in)
    bias = torch.randn(d, device=device, dtype=dtype)  # (d_out,)
    results = []
    per_row = {}
    for B in batches:
        x = torch.randn(B, d, device=device, dtype=dtype)  # (B, d_in)
        fns = {"la_dl": lambda x=x: linear(x, weight, bias), "torch": lambda x=x: F.linear(x, weight, bias)}
        seconds, ratio = compare(fns, ctx)
        cost = linear_cost(B, d, d)
        per_row[B] = seconds["la_dl"] / B
        results.append(Result(
            NAME, f"B={B}, {d}x{d} float32", seconds, ratio=ratio,
            metrics={"GFLOP/s": cost.flops / seconds["la_dl"] / 1e9, "FLOP/byte": cost.intensity,
                     "us/row": per_row[B] * 1e6},
        ))
    big = [B for B in batches if B >= 1024]
    ratio_rows = per_row[1] / min(per_row[B] for B in big)
    results[-1].checks.append(
        Check("time per row, B=1 / best B>=1024", ratio_rows, ">=", PER_ROW_RATIO, "8-12x on the 2-core CPU"))

    # The large GEMM against the measured peak of the device.
    n = ctx.pick(2048, 512)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds, ratio = compare({"la_dl": lambda: linear(a, b), "torch": lambda: F.linear(a, b)}, ctx)
    gflops = 2 * n**3 / seconds["la_dl"] / 1e9
    # The peak is a best case (the loop when nothing interferes), so it is set against the
    # GEMM's best block too: a median would charge other jobs' load to the GEMM alone.
    # torch.utils.benchmark.Timer runs on one thread unless told otherwise.
    timer = benchmark.Timer(stmt="linear(a, b)", globals={"linear": linear, "a": a, "b": b},
                            num_threads=torch.get_num_threads())
    best = min(timer.blocked_autorange(min_run_time=ctx.pick(1.0, 0.05)).times)
    best_gflops = 2 * n**3 / best / 1e9
    on_cpu = device.type == "cpu"
    peak = cpu_fma_peak(torch.get_num_threads(), seconds=ctx.pick(0.3, 0.05)) if on_cpu else None
    large = Result(NAME, f"{n}x{n} @ {n}x{n} float32", seconds, ratio=ratio,
                   metrics={"GFLOP/s": gflops, "best GFLOP/s": best_gflops})
    if peak is None:
        large.note = ("FMA peak not measured (" + ("no C compiler" if device.type == "cpu" else device.type)
                      + "): fraction not checked")
    else:
        large.metrics["FMA peak GFLOP/s"] = peak
        large.checks.append(Check("best GEMM / measured FMA peak", best_gflops / peak, ">=", PEAK_FRACTION,
                                  "0.65-0.75 of ~420 GFLOP/s on the 2-core CPU"))
    results.append(large)
    return results
