"""Shared test configuration: hypothesis profiles and the device parameter.

Every numerical test that takes the ``device`` fixture runs on the CPU and, when present,
on CUDA (and MPS). CI has only a CPU; a GPU session runs the same suite on both.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: a red CI is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Comparisons against torch must not be blurred by TF32 on Ampere+ GPUs.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

DEVICES = ["cpu"]
if torch.cuda.is_available():
    DEVICES.append("cuda")
if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    DEVICES.append("mps")


@pytest.fixture(params=DEVICES, scope="session")
def device(request) -> torch.device:
    """Each available device in turn (CPU always); session-scoped, so hypothesis tests may use it."""
    return torch.device(request.param)


def pytest_report_header(config):
    return f"la_dl test devices: {', '.join(DEVICES)}; torch {torch.__version__}"
