"""Where the computation runs: pick a device, seed every RNG, describe the machine.

The notebooks call :func:`default_device` once in their setup cell and scale their
problem sizes with :func:`by_device`, so the same page runs in seconds on a laptop CPU
and at full size on a GPU.
"""

from __future__ import annotations

import os
import platform
import random
from typing import TypeVar

import numpy as np
import torch

__all__ = ["default_device", "seed_everything", "describe_device", "by_device", "synchronize"]

T = TypeVar("T")

_ENV = "LA_DL_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def default_device() -> torch.device:
    """The device the book computes on: CUDA, then MPS, then CPU.

    The environment variable ``LA_DL_DEVICE`` (e.g. ``cpu``, ``cuda:1``) overrides the
    choice; a device that is named there but not present is an error, not a silent fallback.
    """
    requested = os.environ.get(_ENV, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"default_device: expected {_ENV} to name a torch device (cpu, cuda, cuda:1, "
                f"mps) but got {requested!r}"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"default_device: {_ENV}={requested!r} but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"default_device: {_ENV}={requested!r} but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's generators (all devices); return a CPU generator.

    The returned ``torch.Generator`` lets a caller draw reproducible tensors without
    touching the global state.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed_everything: expected seed to be an int but got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device | str | None = None) -> str:
    """One line naming the device, e.g. ``cuda: NVIDIA H200 (139.8 GiB), torch 2.13.0``."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        what = f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
    elif device.type == "mps":
        what = f"Apple GPU via MPS ({platform.machine()})"
    else:
        what = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return f"{device.type}: {what}, torch {torch.__version__}"


def by_device(cpu: T, accelerator: T, device: torch.device | str | None = None) -> T:
    """Pick a problem size: ``cpu`` on a CPU, ``accelerator`` on CUDA or MPS."""
    device = torch.device(device) if device is not None else default_device()
    return cpu if device.type == "cpu" else accelerator


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (a no-op on the CPU); call before reading a clock."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
