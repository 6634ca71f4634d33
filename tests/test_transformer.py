"""la_dl.transformer against nn.TransformerEncoderLayer / nn.TransformerEncoder (§5)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from la_dl.transformer import (
    TransformerEncoder,
    TransformerEncoderLayer,
    causal_mask,
    position_shift_matrix,
    position_wise_ffn,
    sinusoidal_positional_encoding,
)

HYP = settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ]
)
F64 = {"atol": 1e-10, "rtol": 1e-8}
TOL = {torch.float64: F64, torch.float32: {"atol": 3e-5, "rtol": 3e-4}}


def _pair(d_model, nhead, dim_ff, norm_first, activation, bias, device, dtype=torch.float64,
          seed=0):
    """A torch layer with random (non-default) parameters and ours loaded from its state."""
    torch.manual_seed(seed)
    ref = nn.TransformerEncoderLayer(d_model, nhead, dim_ff, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first, bias=bias,
                                     device=device, dtype=dtype)
    with torch.no_grad():  # torch starts norms at (1, 0) and biases at 0: make them matter
        for name, p in ref.named_parameters():
            if "norm" in name or "bias" in name:
                p.normal_()
    ours = TransformerEncoderLayer(d_model, nhead, dim_ff, dropout=0.0, activation=activation,
                                   batch_first=True, norm_first=norm_first, bias=bias,
                                   device=device, dtype=dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _compare(ours, ref, x, tol, **kwargs):
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, ref_out = ours(x_ours, **kwargs), ref(x_ref, **kwargs)
    torch.testing.assert_close(out, ref_out, **tol)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    out.backward(grad.to(out.device))
    ref_out.backward(grad.to(out.device))
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **tol)
    for (name, p), (_, r) in zip(ours.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, r.grad, **tol, msg=lambda m, name=name: f"{name}: {m}")


@HYP
@given(
    N=st.integers(1, 3), L=st.integers(1, 6), nhead=st.sampled_from([1, 2, 4]),
    head_dim=st.integers(1, 3), dim_ff=st.integers(1, 12), norm_first=st.booleans(),
    activation=st.sampled_from(["relu", "gelu"]), bias=st.booleans(),
    mask=st.sampled_from(["none", "causal", "padding"]), contiguous=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_matches_torch(N, L, nhead, head_dim, dim_ff, norm_first, activation, bias, mask,
                             contiguous, seed, device):
    d_model = nhead * head_dim
    ours, ref = _pair(d_model, nhead, dim_ff, norm_first, activation, bias, device, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    if contiguous:
        x = torch.randn(N, L, d_model, generator=gen, dtype=torch.float64)
    else:  # a transposed view
        x = torch.randn(L, N, d_model, generator=gen, dtype=torch.float64).transpose(0, 1)
    kwargs = {}
    if mask == "causal":
        kwargs = {"src_mask": causal_mask(L, device=device, dtype=torch.float64), "is_causal": True}
    elif mask == "padding":
        pad = torch.zeros(N, L, dtype=torch.bool)
        pad[:, L - 1] = L > 1  # the last token is padding (keep at least one real token)
        kwargs = {"src_key_padding_mask": pad.to(device)}
    _compare(ours, ref, x.to(device), F64, **kwargs)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_float32_seq_first_eval(norm_first, device):
    ours, ref = _pair(8, 2, 16, norm_first, "relu", True, device, dtype=torch.float32)
    # torch's default layout (L, N, E); eval mode (torch may take its fused fast path)
    ref_sf = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, norm_first=norm_first,
                                        device=device).eval()
    ref_sf.load_state_dict(ref.state_dict())
    ours_sf = TransformerEncoderLayer(8, 2, 16, dropout=0.3, norm_first=norm_first,
                                      device=device).eval()
    ours_sf.load_state_dict(ref.state_dict())
    x = torch.randn(5, 3, 8, device=device)
    with torch.no_grad():
        torch.testing.assert_close(ours_sf(x), ref_sf(x), **TOL[torch.float32])


def test_is_causal_alone_builds_the_mask(device):
    ours, ref = _pair(4, 2, 8, False, "relu", True, device)
    x = torch.randn(2, 5, 4, dtype=torch.float64, device=device)
    mask = causal_mask(5, device=device, dtype=torch.float64)
    torch.testing.assert_close(ours(x, is_causal=True), ref(x, src_mask=mask, is_causal=True), **F64)
    # and causality is real: changing a later token leaves earlier outputs unchanged
    y = x.clone()
    y[:, 3:] += 1.0
    torch.testing.assert_close(ours(y, is_causal=True)[:, :3], ours(x, is_causal=True)[:, :3], **F64)
    assert not torch.allclose(ours(y)[:, :3], ours(x)[:, :3])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("final_norm", [False, True])
def test_encoder_matches_torch(norm_first, final_norm, device):
    ours_layer, ref_layer = _pair(8, 2, 12, norm_first, "gelu", True, device)
    ref = nn.TransformerEncoder(ref_layer, num_layers=3, enable_nested_tensor=False,
                                norm=nn.LayerNorm(8, device=device, dtype=torch.float64)
                                if final_norm else None)
    with torch.no_grad():  # different parameters in every layer
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = TransformerEncoder(ours_layer, num_layers=3,
                              norm=copy.deepcopy(ours_layer.norm1) if final_norm else None)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 8, dtype=torch.float64, device=device)
    mask = causal_mask(5, device=device, dtype=torch.float64)
    _compare(ours, ref, x, F64, mask=mask)


def test_gradcheck_layer(device):
    for norm_first in (False, True):
        ours, _ = _pair(4, 2, 6, norm_first, "gelu", True, device)
        x = torch.randn(2, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, m=ours: m(t, is_causal=True), (x,))


# ---------------------------------------------------------------------------------------
# Pieces: FFN, LayerNorm stand-in, masks, positional encodings
# ---------------------------------------------------------------------------------------


@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), E=st.integers(1, 6),
       F_=st.integers(1, 8), activation=st.sampled_from(["relu", "gelu"]),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_ffn_matches_torch(shape, E, F_, activation, dtype, seed, device):
    torch.manual_seed(seed)
    ref = nn.Sequential(nn.Linear(E, F_), nn.ReLU() if activation == "relu" else nn.GELU(),
                        nn.Linear(F_, E)).to(device, dtype)
    x = torch.randn(*shape, E, dtype=dtype, device=device, requires_grad=True)
    params = [ref[0].weight, ref[0].bias, ref[2].weight, ref[2].bias]
    out = position_wise_ffn(x, *params, activation=activation)
    expected = ref(x)
    torch.testing.assert_close(out, expected, **TOL[dtype])
    grads = torch.autograd.grad(out.sum(), [x, *params])
    ref_grads = torch.autograd.grad(expected.sum(), [x, *params])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, **TOL[dtype])


def test_ffn_acts_on_each_token_alone(device):
    w1, w2 = torch.randn(6, 3, device=device), torch.randn(3, 6, device=device)
    x = torch.randn(4, 3, device=device)
    rows = torch.stack([position_wise_ffn(x[i], w1, None, w2, None) for i in range(4)])
    torch.testing.assert_close(position_wise_ffn(x, w1, None, w2, None), rows)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_normalise_with_la_dl_norm(norm_first, device, monkeypatch):
    """Both norms of a layer are la_dl.norm.layer_norm (no private stand-in), with its eps."""
    import la_dl.norm
    import la_dl.transformer

    calls = []

    def spy(input, normalized_shape, weight=None, bias=None, eps=1e-5):
        calls.append((tuple(normalized_shape), eps))
        return la_dl.norm.layer_norm(input, normalized_shape, weight, bias, eps)

    monkeypatch.setattr(la_dl.transformer, "layer_norm", spy)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, layer_norm_eps=1e-3, batch_first=True,
                                    norm_first=norm_first, device=device, dtype=torch.float64)
    layer(torch.randn(2, 3, 8, device=device, dtype=torch.float64))
    assert calls == [((8,), 1e-3), ((8,), 1e-3)]


@pytest.mark.parametrize("n", [1, 2, 7])
def test_causal_mask(n, device):
    mask = causal_mask(n, device=device)
    torch.testing.assert_close(mask, nn.Transformer.generate_square_subsequent_mask(n, device=device))
    weights = torch.softmax(torch.randn(n, n, device=device) + mask, dim=-1)
    assert (weights.triu(1) == 0).all()  # no weight on the future
    torch.testing.assert_close(weights.sum(-1), torch.ones(n, device=device))


@pytest.mark.parametrize("d_model", [1, 2, 5, 16])
def test_positional_encoding_formula(d_model, device):
    pe = sinusoidal_positional_encoding(11, d_model, device=device, dtype=torch.float64)
    assert pe.shape == (11, d_model)
    for pos in range(11):
        for j in range(d_model):
            angle = pos / 10000 ** (2 * (j // 2) / d_model)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(pe[pos, j].item() - want) < 1e-12


@HYP
@given(d_half=st.integers(1, 16), k=st.integers(-50, 50), j=st.integers(-20, 20))
def test_shift_matrix_rotates_positions(d_half, k, j, device):
    d = 2 * d_half
    pe = sinusoidal_positional_encoding(200, d, device=device, dtype=torch.float64)
    R = position_shift_matrix(k, d, device=device, dtype=torch.float64)
    lo, hi = max(0, -k), min(200, 200 - k)  # positions with pos + k inside the table
    torch.testing.assert_close(pe[lo:hi] @ R.T, pe[lo + k: hi + k], atol=1e-9, rtol=0)
    torch.testing.assert_close(R.T @ R, torch.eye(d, dtype=torch.float64, device=device), **F64)
    R_j = position_shift_matrix(j, d, device=device, dtype=torch.float64)
    torch.testing.assert_close(R_j @ R, position_shift_matrix(j + k, d, device=device,
                                                              dtype=torch.float64), **F64)


def test_shift_by_zero_is_identity():
    torch.testing.assert_close(position_shift_matrix(0, 6), torch.eye(6))


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_errors():
    with pytest.raises(TypeError, match="causal_mask: expected n to be an int but got float"):
        causal_mask(3.0)
    with pytest.raises(ValueError, match="causal_mask: expected n > 0 but got 0"):
        causal_mask(0)
    with pytest.raises(ValueError, match="sinusoidal_positional_encoding: expected d_model > 0"):
        sinusoidal_positional_encoding(4, 0)
    with pytest.raises(ValueError, match="position_shift_matrix: expected an even d_model .* "
                                         "but got d_model=5"):
        position_shift_matrix(1, 5)
    with pytest.raises(TypeError, match="position_shift_matrix: expected k to be an int"):
        position_shift_matrix(0.5, 4)
    x, w1, w2 = torch.zeros(2, 3), torch.zeros(6, 3), torch.zeros(3, 6)
    with pytest.raises(ValueError, match=r"position_wise_ffn: expected weight1 of shape \(F, 3\) "
                                         r"and weight2 of shape \(3, F\) but got \(6, 4\)"):
        position_wise_ffn(x, torch.zeros(6, 4), None, w2, None)
    with pytest.raises(ValueError, match="position_wise_ffn: expected activation 'relu' or 'gelu'"):
        position_wise_ffn(x, w1, None, w2, None, activation="tanh")
    with pytest.raises(TypeError, match="position_wise_ffn: expected input to have a floating"):
        position_wise_ffn(x.long(), w1, None, w2, None)
    with pytest.raises(ValueError, match="position_wise_ffn: expected weight2 to be 2-D"):
        position_wise_ffn(x, w1, None, torch.zeros(3), None)
    with pytest.raises(ValueError, match="MultiHeadAttention: expected embed_dim divisible"):
        TransformerEncoderLayer(6, 4)
    with pytest.raises(ValueError, match="TransformerEncoderLayer: expected activation 'relu'"):
        TransformerEncoderLayer(8, 2, activation="swish")
    layer = TransformerEncoderLayer(8, 2, 16, batch_first=True)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: expected src of shape "
                                         r"\(N, L, 8\) or \(L, N, 8\) but got \(2, 5, 6\)"):
        layer(torch.zeros(2, 5, 6))
    with pytest.raises(TypeError, match="TransformerEncoderLayer: expected src to be a torch"):
        layer([[0.0]])
    with pytest.raises(TypeError, match="TransformerEncoder: expected encoder_layer to be a la_dl"):
        TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 2)
    with pytest.raises(ValueError, match="TransformerEncoder: expected num_layers > 0 but got 0"):
        TransformerEncoder(layer, 0)
