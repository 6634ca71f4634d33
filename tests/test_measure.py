"""la_dl.measure: peak memory (measured) and the largest tensor of a call (counted)."""

import pytest
import torch

from la_dl.attention import attention_steps, tiled_attention
from la_dl.measure import largest_tensor_bytes, peak_memory, time_and_peak_memory


def test_peak_memory_sees_a_large_allocation(device):
    n = 16 * 2**20  # 64 MiB of float32
    peak = peak_memory(lambda: torch.ones(n, device=device), device)
    if peak is None:
        pytest.skip("peak memory is not measurable on this platform")
    assert 0.95 * 4 * n <= peak <= 4 * n + 16 * 2**20
    small = peak_memory(lambda: torch.ones(16, device=device), device)
    assert small < 4 * 2**20
    seconds, peak2 = time_and_peak_memory(lambda: torch.ones(n, device=device), device, repeats=1)
    assert seconds > 0 and peak2 >= 0.95 * 4 * n


def test_largest_tensor_bytes_sees_the_score_matrix_only_in_the_naive_form(device):
    q, k, v = (torch.randn(2, 96, 16, device=device) for _ in range(3))
    naive = largest_tensor_bytes(lambda: attention_steps(q, k, v))
    tiled = largest_tensor_bytes(lambda: tiled_attention(q, k, v, block_size=32))
    score_matrix = 2 * 96 * 96 * 4  # one (N, L, S) float32 matrix
    assert naive == score_matrix
    assert tiled < score_matrix and tiled <= 2 * 96 * 16 * 4 * 2  # tiles and output-sized tensors
    assert largest_tensor_bytes(lambda: None) == 0
