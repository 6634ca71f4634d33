"""la_dl.device: device choice, the environment override, seeding."""

import random

import numpy as np
import pytest
import torch

from la_dl.device import by_device, default_device, describe_device, seed_everything


def test_default_device_prefers_accelerators(monkeypatch):
    monkeypatch.delenv("LA_DL_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert default_device().type == expected


def test_env_override(monkeypatch):
    monkeypatch.setenv("LA_DL_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_env_override_rejects_garbage(monkeypatch):
    monkeypatch.setenv("LA_DL_DEVICE", "tpu-please")
    with pytest.raises(ValueError, match="LA_DL_DEVICE"):
        default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_env_override_rejects_missing_cuda(monkeypatch):
    monkeypatch.setenv("LA_DL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        default_device()


def test_seed_everything_makes_all_generators_repeat():
    g = seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    g = seed_everything(123)
    second = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])


def test_seed_everything_rejects_non_int():
    with pytest.raises(TypeError, match="expected seed to be an int"):
        seed_everything(1.5)


def test_describe_device_names_the_device(device):
    text = describe_device(device)
    assert text.startswith(f"{device.type}:") and torch.__version__ in text


def test_by_device():
    assert by_device(1, 2, "cpu") == 1
    assert by_device(1, 2, torch.device("meta")) == 2
