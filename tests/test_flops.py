"""la_dl.flops against torch.utils.flop_counter.FlopCounterMode (matmuls, exactly) and by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from la_dl.attention import attention_steps
from la_dl.conv import conv_flops
from la_dl.flops import (
    BERT_TINY,
    COMPONENTS,
    EncoderConfig,
    Flops,
    attention_cost,
    chapter_operations,
    conv2d_cost,
    copy_bandwidth,
    count_matmul_flops,
    encoder_flops,
    group_flops,
    linear_cost,
    matmul_flops,
    measure,
    median_time,
    mlp_backward_cost,
    norm_cost,
    torch_encoder,
    total_flops,
)
from la_dl.norm import count_flops, norm_flops, rms_norm
from la_dl.transformer import TransformerEncoder, TransformerEncoderLayer

DTYPES = [torch.float32, torch.float64]

configs = st.builds(
    lambda layers, heads, head_dim, ffn: EncoderConfig(layers, heads * head_dim, heads, ffn),
    st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(1, 12),
)


def _input(N, L, E, device, dtype, contiguous, seed=0):
    """(N, L, E), or the same shape as a non-contiguous view of an (L, N, E) tensor."""
    g = torch.Generator().manual_seed(seed)
    if contiguous:
        x = torch.randn(N, L, E, generator=g, dtype=torch.float64)
    else:
        x = torch.randn(L, N, E, generator=g, dtype=torch.float64).transpose(0, 1)
    return x.to(device=device, dtype=dtype)


def _la_dl_encoder(config, device, dtype):
    layer = TransformerEncoderLayer(config.d_model, config.nhead, config.dim_feedforward, dropout=0.0,
                                    batch_first=True, device=device, dtype=dtype)
    return TransformerEncoder(layer, config.num_layers).eval()


# --------------------------------------------------------------------------- against FlopCounterMode


@given(config=configs, N=st.integers(1, 3), L=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       contiguous=st.booleans())
def test_matmul_flops_equal_flop_counter_on_la_dl_encoder(device, config, N, L, dtype, contiguous):
    model = _la_dl_encoder(config, device, dtype)
    x = _input(N, L, config.d_model, device, dtype, contiguous)
    with torch.no_grad():
        counted = count_matmul_flops(model, x)
    assert counted == matmul_flops(config, L, N)
    assert counted > 0


@given(config=configs, N=st.integers(1, 3), L=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       contiguous=st.booleans())
def test_matmul_flops_equal_flop_counter_on_torch_encoder(device, config, N, L, dtype, contiguous):
    model = torch_encoder(config, device=device, dtype=dtype).eval()
    x = _input(N, L, config.d_model, device, dtype, contiguous)
    # The math backend makes the attention core plain bmm's on every device (module docstring).
    with sdpa_kernel(SDPBackend.MATH):
        counted = count_matmul_flops(model, x)
    assert counted == matmul_flops(config, L, N)


@given(config=configs, N=st.integers(1, 3), L=st.integers(1, 6))
def test_components_match_flop_counter_per_module_and_per_op(device, config, N, L):
    """self_attn = projections + scores + values; linear1 + linear2 = ffn; bmm = the core."""
    model = torch_encoder(config, device=device, dtype=torch.float64).eval()
    x = _input(N, L, config.d_model, device, torch.float64, True)
    counter = torch.utils.flop_counter.FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(x)
    counts = counter.get_flop_counts()
    ours = encoder_flops(config, L, N)
    attention = sum(ours[c].matmul for c in ("attention_projections", "attention_scores", "attention_values"))
    n = config.num_layers
    attn = sum(sum(counts[f"TransformerEncoder.layers.{i}.self_attn"].values()) for i in range(n))
    ffn = sum(sum(counts[f"TransformerEncoder.layers.{i}.{lin}"].values())
              for i in range(n) for lin in ("linear1", "linear2"))
    bmm = counts["Global"][torch.ops.aten.bmm]
    assert attn == attention
    assert ffn == ours["ffn"].matmul
    assert bmm == ours["attention_scores"].matmul + ours["attention_values"].matmul
    assert ours["norm"].matmul == ours["residual"].matmul == 0


@given(config=configs, N=st.integers(1, 2), L=st.integers(1, 5))
def test_backward_matmul_flops_are_three_times_forward(device, config, N, L):
    model = _la_dl_encoder(config, device, torch.float64)
    x = _input(N, L, config.d_model, device, torch.float64, True).requires_grad_()

    def forward_backward():
        model(x).sum().backward()

    assert count_matmul_flops(forward_backward) == matmul_flops(config, L, N, backward=True)
    assert matmul_flops(config, L, N, backward=True) == 3 * matmul_flops(config, L, N)


def test_flop_counter_blind_spots_are_as_documented():
    """On a CPU torch's own layer hides work from the counter (both stated in the docstring)."""
    config = EncoderConfig(1, 8, 2, 16)
    model = torch_encoder(config).eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():  # the fused fast path: nothing counted
        assert count_matmul_flops(model, x) == 0
    core = encoder_flops(config, 5, 2)
    missing = core["attention_scores"].matmul + core["attention_values"].matmul
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # the CPU flash kernel has no FLOP formula
        assert count_matmul_flops(model, x) == matmul_flops(config, 5, 2) - missing


# --------------------------------------------------------------------------- the analytic model


def test_bert_tiny_counts_by_hand():
    assert (BERT_TINY.num_layers, BERT_TINY.d_model, BERT_TINY.nhead, BERT_TINY.dim_feedforward) == (
        2, 128, 2, 512)
    flops = encoder_flops(BERT_TINY, seq_len=128)
    assert list(flops) == list(COMPONENTS)
    assert flops["ffn"].matmul == 2 * 2 * 2 * 128 * 128 * 512 == 67_108_864
    assert flops["attention_projections"].matmul == 2 * 4 * 2 * 128 * 128 * 128
    # At L = d_model the score matmul costs a quarter of the projections, per layer.
    assert 4 * flops["attention_scores"].matmul == flops["attention_projections"].matmul
    assert flops["norm"] == Flops(0, 2 * 2 * 128 * (7 * 128 + 2))
    assert total_flops(BERT_TINY, 128) == sum(c.total for c in flops.values())


@given(config=configs, N=st.integers(1, 3), L=st.integers(1, 20))
def test_scaling_in_sequence_length_and_batch(config, N, L):
    one, double, batched = (encoder_flops(config, L, N), encoder_flops(config, 2 * L, N),
                            encoder_flops(config, L, 2 * N))
    for name in COMPONENTS:  # everything is linear in the batch
        assert batched[name] == one[name] * 2
    for name in ("attention_projections", "ffn", "norm", "residual"):  # per token: linear in L
        assert double[name] == 2 * one[name]
    for name in ("attention_scores", "attention_values"):  # every pair of tokens: quadratic in L
        assert double[name] == 4 * one[name]


@given(config=configs, N=st.integers(1, 3), L=st.integers(1, 8))
def test_groups_partition_the_components(config, N, L):
    flops = encoder_flops(config, L, N)
    groups = group_flops(flops)
    assert list(groups) == ["attention", "ffn", "norm", "residual"]
    assert sum(g.total for g in groups.values()) == total_flops(config, L, N)
    assert groups["ffn"] == flops["ffn"]


@given(E=st.integers(1, 12), N=st.integers(1, 3), L=st.integers(1, 5), layers=st.integers(1, 2))
def test_rms_norm_component_equals_counted_elementwise_flops(device, E, N, L, layers):
    """The norm component of an RMSNorm config is what la_dl.norm.count_flops sees in rms_norm."""
    config = EncoderConfig(layers, E, 1, 4, norm="rms")
    x = torch.randn(N * L, E, device=device)
    per_norm = count_flops(rms_norm, x, (E,), torch.ones(E, device=device), 1e-6)
    assert encoder_flops(config, L, N)["norm"] == Flops(0, 2 * layers * per_norm)
    assert encoder_flops(config, L, N)["norm"].total < encoder_flops(
        EncoderConfig(layers, E, 1, 4), L, N)["norm"].total


# --------------------------------------------------------------------------- roofline costs


@given(B=st.integers(1, 9), d_in=st.integers(1, 9), d_out=st.integers(1, 9), dtype=st.sampled_from(DTYPES))
def test_linear_cost_against_flop_counter_and_tensor_bytes(device, B, d_in, d_out, dtype):
    x = torch.randn(d_in, B, device=device, dtype=dtype).T  # (B, d_in), non-contiguous
    w = torch.randn(d_out, d_in, device=device, dtype=dtype)
    y = F.linear(x, w)
    cost = linear_cost(B, d_in, d_out, element_size=x.element_size())
    assert cost.flops == count_matmul_flops(F.linear, x, w)
    assert cost.bytes_moved == sum(t.numel() * t.element_size() for t in (x, w, y))
    assert cost.intensity == cost.flops / cost.bytes_moved
    assert cost.compulsory_bytes == cost.bytes_moved and cost.max_intensity == cost.intensity


@given(d=st.integers(1, 64))
def test_matrix_vector_product_is_memory_bound(d):
    assert linear_cost(1, d, d).intensity < 0.5
    assert linear_cost(1024, d, d).intensity > linear_cost(1, d, d).intensity


@given(B=st.integers(1, 4), sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4))
def test_mlp_backward_cost_against_autograd_counted(device, B, sizes):
    layers = [nn.Linear(a, b, device=device, dtype=torch.float64) for a, b in zip(sizes[:-1], sizes[1:])]
    x = torch.randn(B, sizes[0], device=device, dtype=torch.float64)  # no grad: ∂X of layer 1 skipped
    out = x
    for i, layer in enumerate(layers):
        out = layer(out)
        out = torch.relu(out) if i < len(layers) - 1 else out
    assert count_matmul_flops(out.sum().backward) == mlp_backward_cost(B, tuple(sizes)).flops


@given(B=st.integers(1, 4), sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4))
def test_mlp_backward_cost_with_input_grad(device, B, sizes):
    x = torch.randn(B, sizes[0], device=device, dtype=torch.float64, requires_grad=True)
    layers = [nn.Linear(a, b, device=device, dtype=torch.float64) for a, b in zip(sizes[:-1], sizes[1:])]
    out = x
    for layer in layers:
        out = torch.tanh(layer(out))
    counted = count_matmul_flops(out.sum().backward)
    assert counted == mlp_backward_cost(B, tuple(sizes), input_grad=True).flops
    assert counted == mlp_backward_cost(B, tuple(sizes)).flops + 2 * B * sizes[0] * sizes[1]


@given(N=st.integers(1, 2), C=st.integers(1, 3), S=st.integers(3, 7), C_out=st.integers(1, 3),
       K=st.integers(1, 3), p=st.integers(0, 1), s=st.integers(1, 2), im2col=st.booleans())
def test_conv2d_cost_against_flop_counter(device, N, C, S, C_out, K, p, s, im2col):
    x = torch.randn(N, C, S, S, device=device)
    w = torch.randn(C_out, C, K, K, device=device)
    cost = conv2d_cost(N, C, S, C_out, K, padding=p, stride=s, im2col=im2col)
    assert cost.flops == count_matmul_flops(F.conv2d, x, w, padding=p, stride=s)
    assert cost.flops == conv_flops(x.shape, w.shape, stride=s, padding=p)
    y = F.conv2d(x, w, padding=p, stride=s)
    direct = 4 * (x.numel() + w.numel() + y.numel())
    cols = F.unfold(x, K, padding=p, stride=s)  # X_col, written then read by the im2col route
    assert cost.bytes_moved == direct + (2 * 4 * cols.numel() if im2col else 0)
    assert cost.compulsory_bytes == direct and cost.max_intensity >= cost.intensity


@given(n=st.integers(1, 24), d=st.integers(1, 8), H=st.integers(1, 3), block=st.integers(1, 8))
def test_attention_cost(device, n, d, H, block):
    q, k, v = (torch.randn(1, H, n, d, device=device) for _ in range(3))
    naive = attention_cost(n, d, H)
    tiled = attention_cost(n, d, H, tiled=True, block_size=block)
    matmuls = count_matmul_flops(attention_steps, q, k, v)
    assert naive.flops - 6 * H * n * n == matmuls == 4 * H * n * n * d
    assert tiled.flops == naive.flops
    stored = 4 * 3 * H * n * n  # scores, scaled, weights: (1, H, n, n) float32 each
    assert naive.bytes_moved == 4 * 4 * H * n * d + 2 * stored
    assert naive.compulsory_bytes == tiled.compulsory_bytes == 4 * 4 * H * n * d  # Q, K, V in, O out
    if n <= block:  # one block: Q, K, V read once, O written once
        assert tiled.bytes_moved == 4 * 4 * H * n * d


@given(rows=st.integers(1, 6), d=st.integers(1, 16))
def test_norm_cost(device, rows, d):
    x = torch.randn(rows, d, device=device)
    rms = norm_cost("rms", rows, d)
    assert rms.flops == count_flops(rms_norm, x, (d,), torch.ones(d, device=device), 1e-6)
    assert norm_cost("layer", rows, d).flops == rows * sum(norm_flops("layer", d).values())
    assert rms.bytes_moved == 4 * (2 * rows * d + d)
    assert rms.flops < norm_cost("layer", rows, d).flops


def _as_tensors(result):
    if isinstance(result, torch.Tensor):
        return [result]
    flat = []
    for item in result:
        flat += _as_tensors(item) if item is not None else []
    return flat


def test_chapter_operations_pair_la_dl_with_the_builtin(device):
    """Each operation's la_dl call gives the built-in's answer, and its FLOPs are the counted ones."""
    ops = chapter_operations(device)
    assert [op.section for op in ops] == ["§1", "§1", "§2", "§3", "§4", "§4", "§6", "§6"]
    for op in ops:
        ours, theirs = _as_tensors(op.la_dl()), _as_tensors(op.builtin())
        if op.section == "§2":  # la_dl returns (∂X, [∂W...], [∂b...]); autograd (∂X, ∂W...)
            assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4)
        if op.section in ("§1", "§2", "§3"):
            assert count_matmul_flops(op.builtin) == op.cost.flops, op.cost.name
        if op.section == "§4":  # the two matmuls; the rest is the scale and softmax convention
            n, H = 1024, 4
            assert count_matmul_flops(attention_steps, *_qkv(device, H, n)) == op.cost.flops - 6 * H * n * n
    assert ops[4].cost.bytes_moved > 5 * ops[5].cost.bytes_moved  # naive vs tiled traffic


def _qkv(device, H, n):
    return [torch.randn(1, H, n, 64, device=device) for _ in range(3)]


def test_measure_derives_rates_from_the_medians():
    ops = chapter_operations("cpu")[:1]
    (m,) = measure(ops, min_run_time=0.01)
    assert m.cost is ops[0].cost and m.seconds > 0 and m.builtin_seconds > 0
    assert m.gflops == pytest.approx(m.cost.flops / m.seconds / 1e9)
    assert m.gbytes_per_second == pytest.approx(m.cost.bytes_moved / m.seconds / 1e9)
    assert m.ratio == pytest.approx(m.seconds / m.builtin_seconds)
    assert copy_bandwidth("cpu", numel=2**16, min_run_time=0.01) > 0


def test_median_time_calls_the_function():
    calls = []
    seconds = median_time(lambda: calls.append(1), min_run_time=0.01)
    assert len(calls) > 1 and seconds > 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(num_layers=0), ValueError, "EncoderConfig: expected num_layers > 0 but got 0"),
        (dict(d_model=2.0), TypeError, "EncoderConfig: expected d_model to be an int but got float"),
        (dict(d_model=10, nhead=3), ValueError, "expected d_model divisible by nhead but got d_model=10"),
        (dict(norm="batch"), ValueError, "expected norm 'layer' or 'rms' but got 'batch'"),
    ],
)
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        EncoderConfig(**kwargs)


def test_function_errors():
    with pytest.raises(TypeError, match="encoder_flops: expected config to be an EncoderConfig but got dict"):
        encoder_flops({"d_model": 4}, 3)
    with pytest.raises(ValueError, match="encoder_flops: expected seq_len > 0 but got 0"):
        encoder_flops(BERT_TINY, 0)
    with pytest.raises(TypeError, match="encoder_flops: expected batch to be an int but got float"):
        encoder_flops(BERT_TINY, 4, 1.0)
    with pytest.raises(ValueError, match="group_flops: expected the components"):
        group_flops({"ffn": Flops(1, 1)})
    with pytest.raises(TypeError, match="count_matmul_flops: expected fn to be callable but got int"):
        count_matmul_flops(3)
    with pytest.raises(ValueError, match="torch_encoder: expected norm 'layer'"):
        torch_encoder(EncoderConfig(norm="rms"))
    with pytest.raises(TypeError, match="torch_encoder: expected config to be an EncoderConfig"):
        torch_encoder("bert")
    with pytest.raises(ValueError, match="linear_cost: expected batch > 0 but got 0"):
        linear_cost(0, 4, 4)
    with pytest.raises(ValueError, match="mlp_backward_cost: expected at least two layer widths"):
        mlp_backward_cost(4, (8,))
    with pytest.raises(ValueError, match=r"mlp_backward_cost: expected sizes\[1\] > 0 but got 0"):
        mlp_backward_cost(4, (8, 0))
    with pytest.raises(ValueError, match="conv2d_cost: expected padding to be an int >= 0 but got -1"):
        conv2d_cost(1, 3, 8, 4, 3, padding=-1)
    with pytest.raises(ValueError, match="conv2d_cost: expected the kernel \\(5\\) to fit"):
        conv2d_cost(1, 3, 3, 4, 5)
    with pytest.raises(ValueError, match="attention_cost: expected block_size > 0 but got 0"):
        attention_cost(8, block_size=0)
    with pytest.raises(ValueError, match="norm_cost: expected kind 'layer' or 'rms' but got 'batch'"):
        norm_cost("batch", 4, 4)
    with pytest.raises(TypeError, match="median_time: expected fn to be callable but got str"):
        median_time("x = 1")
    with pytest.raises(ValueError, match="median_time: expected min_run_time > 0 but got 0"):
        median_time(lambda: None, min_run_time=0)
    with pytest.raises(ValueError, match="chapter_operations: expected scale > 0 but got 0"):
        chapter_operations("cpu", scale=0)
    with pytest.raises(TypeError, match="copy_bandwidth: expected numel to be an int but got float"):
        copy_bandwidth("cpu", numel=1e6)
