"""How the book measures what an operation costs: wall time, peak memory, largest tensor.

Used by the notebooks (§4.4 attention's O(n²) memory, §8's training memory, the cost
appendix) and by the benchmark suite (``python -m bench``), so that the book and the
benchmarks report the same quantities measured the same way.

* :func:`peak_memory`: the memory one call adds, measured by the device's allocator (CUDA)
  or the process's peak resident set (CPU on Linux); ``None`` where it cannot be measured.
* :func:`largest_tensor_bytes`: the largest tensor any op of a call produces, counted
  through torch's dispatcher: the same on every platform and device.
* :func:`time_and_peak_memory`: best wall time over a few calls, and the peak memory.
"""

from __future__ import annotations

import ctypes
import math
import re
import sys
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from la_dl.device import synchronize

__all__ = ["peak_memory", "largest_tensor_bytes", "time_and_peak_memory"]


class _LargestTensor(TorchDispatchMode):
    """Records the size of the largest tensor any op returns while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.nbytes = max(self.nbytes, t.numel() * t.element_size())
        return out


def largest_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the largest tensor that any op inside ``fn()`` produces (§4.4, §11).

    Unlike :func:`peak_memory` this is counted, not measured: every op dispatched during the
    call reports its outputs, so the number is the same on every platform and device. It
    shows whether a computation ever materialises an object of a given size; for the naive
    form of attention that is the ``(..., L, S)`` score matrix, for
    :func:`la_dl.attention.tiled_attention`
    only tiles and output-sized tensors. A fused built-in is one op, so only its output is seen.
    """
    with torch.no_grad(), _LargestTensor() as mode:
        fn()
    return mode.nbytes


def _rss_bytes(field: str) -> int:
    status = open("/proc/self/status").read()  # Linux only; the caller checks
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def time_and_peak_memory(
    fn: Callable[[], object], device: torch.device | str, repeats: int = 3
) -> tuple[float, int | None]:
    """Best wall time of ``fn()`` over ``repeats`` calls, and :func:`peak_memory` of one call.

    The best, not the mean: other processes only ever add time. Kernels are synchronised
    before the clock is read.
    """
    device = torch.device(device)
    fn()  # warm-up
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, peak_memory(fn, device)


def peak_memory(fn: Callable[[], object], device: torch.device | str) -> int | None:
    """The peak memory (bytes) that one call ``fn()`` adds to what was allocated before it.

    Output included, measured by the allocator of the device:

    * CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``;
    * CPU on Linux: the process's peak resident set (``VmHWM``), reset before the call by
      writing ``5`` to ``/proc/self/clear_refs``, minus the resident set before it. This
      counts every page a kernel touches, the built-ins' internal buffers included (also
      anything else the process allocates meanwhile: an upper bound). So that freed memory
      is not silently reused, glibc first returns its free pages (``malloc_trim``) and is
      told (``mallopt``) to serve every block over 64 KiB from fresh pages, for this call;
      smaller blocks can hide, which matters at the resolution of a few MiB, not of the
      n² matrix.
    * elsewhere: ``None`` (not measured).
    """
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        del out
        return peak
    if device.type == "cpu" and sys.platform.startswith("linux"):
        return _cpu_peak_bytes(fn)
    return None


def _cpu_peak_bytes(fn: Callable[[], object]) -> int | None:
    """Peak resident memory added by ``fn()`` on Linux (see :func:`peak_memory`)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        mallopt = None
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 64 * 1024)
        mallopt(M_TRIM_THRESHOLD, 0)
        libc.malloc_trim(0)  # hand the pages freed so far back to the OS
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set to the current one
        before = _rss_bytes("VmRSS")
        out = fn()
        peak = max(_rss_bytes("VmHWM") - before, 0)
        del out
        return peak
    except OSError:
        return None
    finally:
        if mallopt is not None:  # back to (about) glibc's grown defaults, for fast timings
            mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
            mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024)
