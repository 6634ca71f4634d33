"""The exercise checks of la_dl.exercises: right answers pass, wrong ones explain themselves.

Each check recomputes its answer with torch; these tests feed it answers computed a second,
independent way (closed-form counts, la_dl's implementations, torch built-ins), the classic
wrong answers (each must raise WrongAnswer with its specific hint), and bad input.
"""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from la_dl import exercises as ex
from la_dl import norm
from la_dl.backprop import jacobian
from la_dl.transformer import TransformerEncoder, TransformerEncoderLayer

DTYPES = [torch.float32, torch.float64]


def passes(check, *args, **kwargs) -> str:
    """Run a check that must accept its answer; return what it printed (one line per call)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        check(*args, **kwargs)
    return out.getvalue()


def mlp_count(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# --------------------------------------------------------------------------- WrongAnswer


def test_wrong_answer_is_an_assertion_error():
    """Otter's tests and plain `assert`-style grading treat a wrong answer as a failed test."""
    assert issubclass(ex.WrongAnswer, AssertionError)


# --------------------------------------------------------------------------- exercise 1


@given(d=st.integers(1, 12), transpose=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_orthogonal_layer_accepts_orthogonal(device, d, transpose, dtype):
    g = torch.Generator().manual_seed(d)
    Q = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64)).Q.to(dtype).to(device)
    W = Q.T if transpose else Q  # Qᵀ is orthogonal too, and a non-contiguous view
    assert "✓ Exercise 1" in passes(ex.check_orthogonal_layer, W)


def test_orthogonal_layer_rejects(device):
    with pytest.raises(ex.WrongAnswer, match="WᵀW differs from I"):
        ex.check_orthogonal_layer(2 * torch.eye(3, device=device))
    tall = torch.linalg.qr(torch.randn(5, 3, dtype=torch.float64)).Q.to(device)  # WᵀW = I, not square
    with pytest.raises(ex.WrongAnswer, match="orthogonal matrix is square"):
        ex.check_orthogonal_layer(tall)
    nearly = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64)).Q.to(device) * (1 + 4e-6)
    with pytest.raises(ex.WrongAnswer, match="norms changed by up to 4.0e-06"):
        ex.check_orthogonal_layer(nearly)  # WᵀW is within atol=1e-5 of I, the norms are not within 1e-6
    with pytest.raises(TypeError, match="expected weight to be a torch.Tensor"):
        ex.check_orthogonal_layer([[1.0]])
    with pytest.raises(ValueError, match="expected weight to be a 2-D matrix"):
        ex.check_orthogonal_layer(torch.ones(3, device=device))
    with pytest.raises(TypeError, match="floating-point dtype"):
        ex.check_orthogonal_layer(torch.eye(2, dtype=torch.long, device=device))


# --------------------------------------------------------------------------- exercise 2


@given(sizes=st.lists(st.integers(1, 300), min_size=2, max_size=5))
def test_mlp_answers_match_closed_form(sizes):
    shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
    assert "✓ Exercise 2" in passes(ex.check_mlp_shapes, shapes, sizes)
    assert "✓ Exercise 2" in passes(ex.check_mlp_shapes, [torch.Size(s) for s in shapes], sizes)
    assert f"{mlp_count(sizes):,} parameters" in passes(ex.check_mlp_parameter_count, mlp_count(sizes), sizes)


def test_mlp_book_answer(capsys):
    ex.check_mlp_parameter_count(60_042)  # 100·256+256 + 256·128+128 + 128·10+10
    ex.check_mlp_shapes([(256, 100), (128, 256), (10, 128)])
    assert "60,042 parameters" in capsys.readouterr().out


def test_mlp_wrong_answers():
    with pytest.raises(ex.WrongAnswer, match="one per neuron"):
        ex.check_mlp_shapes([(100, 256), (256, 128), (128, 10)])
    with pytest.raises(ex.WrongAnswer, match="make 3 weight matrices"):
        ex.check_mlp_shapes([(256, 100), (128, 256)])
    with pytest.raises(ex.WrongAnswer, match="from 128 inputs to 10 outputs"):
        ex.check_mlp_shapes([(256, 100), (128, 256), (11, 128)])
    with pytest.raises(ex.WrongAnswer, match="weights only"):
        ex.check_mlp_parameter_count(59_648)
    with pytest.raises(ex.WrongAnswer, match="too many"):
        ex.check_mlp_parameter_count(70_000)
    with pytest.raises(TypeError, match="expected count to be a number but got str"):
        ex.check_mlp_parameter_count("60042")
    with pytest.raises(ValueError, match="whole number"):
        ex.check_mlp_parameter_count(60_042.5)
    with pytest.raises(TypeError, match="list of \\(out, in\\) tuples"):
        ex.check_mlp_shapes("256x100")
    with pytest.raises(TypeError, match="tuple of ints"):
        ex.check_mlp_shapes([256, 128, 10])


# --------------------------------------------------------------------------- exercise 3


@given(head_dim=st.integers(1, 16), num_heads=st.integers(1, 6))
def test_multihead_counts_match_closed_form(head_dim, num_heads):
    d = head_dim * num_heads
    out = passes(ex.check_multihead_parameter_counts, 4 * d * d, 4 * num_heads * d * d, d, num_heads)
    assert f"cost {num_heads}×" in out


def test_multihead_wrong_answers():
    d = 512
    with pytest.raises(ex.WrongAnswer, match="add W\\^O"):
        ex.check_multihead_parameter_counts(3 * d * d, 32 * d * d)
    with pytest.raises(ex.WrongAnswer, match="together form one"):
        ex.check_multihead_parameter_counts(4 * d * 64, 32 * d * d)
    with pytest.raises(ex.WrongAnswer, match="h·d_model"):
        ex.check_multihead_parameter_counts(4 * d * d, 4 * d * d)
    with pytest.raises(TypeError, match="expected full to be a number"):
        ex.check_multihead_parameter_counts(4 * d * d, None)


# --------------------------------------------------------------------------- exercise 4


def test_norm_dims(capsys):
    ex.check_norm_dims((0, 2, 3), (1, 2, 3))
    ex.check_norm_dims([-4, -1, -2], {-3, 2, 3})  # any order, negative dims, any iterable
    assert capsys.readouterr().out.count("✓ Exercise 4") == 2
    with pytest.raises(ex.WrongAnswer, match="one μ, σ² per channel"):
        ex.check_norm_dims((0, 1, 2, 3), (1, 2, 3))
    with pytest.raises(ex.WrongAnswer, match="shared by all samples and all positions"):
        ex.check_norm_dims((0,), (1, 2, 3))
    with pytest.raises(ex.WrongAnswer, match="never mixes samples"):
        ex.check_norm_dims((0, 2, 3), (0, 1, 2, 3))
    with pytest.raises(ex.WrongAnswer, match="all of its C·H·W values"):
        ex.check_norm_dims((0, 2, 3), (1,))
    with pytest.raises(ValueError, match="lie in \\[-4, 4\\)"):
        ex.check_norm_dims((0, 4), (1, 2, 3))
    with pytest.raises(ValueError, match="at least one dim"):
        ex.check_norm_dims((), (1, 2, 3))
    with pytest.raises(TypeError, match="tuple of dims but got str"):
        ex.check_norm_dims("B,H,W", (1, 2, 3))
    with pytest.raises(TypeError, match="to hold ints but got float"):
        ex.check_norm_dims((0.0, 2, 3), (1, 2, 3))


# --------------------------------------------------------------------------- exercise 5


@given(d_k=st.sampled_from([1, 2, 16, 64]))
def test_qk_statistics(d_k):
    assert f"d_k = {d_k}" in passes(ex.check_qk_statistics, 0, d_k, 1.0, d_k=d_k)
    assert f"d_k = {d_k}" in passes(ex.check_qk_statistics, torch.tensor(0.0), torch.tensor(float(d_k)), 1,
                                    d_k=d_k)


def test_qk_statistics_wrong():
    with pytest.raises(ex.WrongAnswer, match="has mean 0"):
        ex.check_qk_statistics(1, 64, 1)
    with pytest.raises(ex.WrongAnswer, match="variance E\\[q_i²\\]E\\[k_i²\\] = 1; you gave 8"):
        ex.check_qk_statistics(0, 8, 1)  # √d_k instead of d_k
    with pytest.raises(ex.WrongAnswer, match="Var\\(q·k\\)/d_k"):
        ex.check_qk_statistics(0, 64, 8)
    with pytest.raises(ValueError, match="finite"):
        ex.check_qk_statistics(0, float("inf"), 1)
    with pytest.raises(TypeError, match="expected mean to be a number but got bool"):
        ex.check_qk_statistics(False, 64, 1)


# --------------------------------------------------------------------------- exercise 6


@given(c=st.integers(1, 4), size=st.integers(3, 9), k=st.sampled_from([1, 3, 5]), pad=st.integers(0, 2))
def test_im2col_matches_closed_form(c, size, k, pad):
    if size + 2 * pad < k:
        return
    out = size + 2 * pad - k + 1  # stride 1
    rows, cols = c * k * k, out * out
    blowup = rows * cols / (c * size * size)
    assert f"{rows}×{cols}" in passes(ex.check_im2col, (rows, cols), blowup, (1, c, size, size), k, pad)
    assert f"{rows}×{cols}" in passes(ex.check_im2col, (1, rows, cols), blowup, (1, c, size, size), k, pad)


def test_im2col_book_answer_and_wrong_answers(capsys):
    ex.check_im2col((27, 64), 9)
    assert "27×64, 9× the input" in capsys.readouterr().out
    with pytest.raises(ex.WrongAnswer, match="X_col transposed"):
        ex.check_im2col((64, 27), 9)
    with pytest.raises(ex.WrongAnswer, match="C·K·K = 27 rows"):
        ex.check_im2col((27, 36), 9)  # forgot the padding
    with pytest.raises(ex.WrongAnswer, match="divided by the padded input"):
        ex.check_im2col((27, 64), 1728 / 300)
    with pytest.raises(ex.WrongAnswer, match="you gave a factor 27"):
        ex.check_im2col((27, 64), 27)
    with pytest.raises(TypeError, match="expected shape to be a tuple of ints but got int"):
        ex.check_im2col(1728, 9)


# --------------------------------------------------------------------------- exercise 8


@given(d=st.integers(1, 6), dtype=st.sampled_from(DTYPES))
def test_residual_jacobian_from_la_dl(device, d, dtype):
    torch.manual_seed(d)
    block = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d)).to(device, dtype)
    x = torch.randn(d, device=device, dtype=dtype)
    J = jacobian(lambda v: v + block(v), x)  # la_dl's row-by-row reverse-mode Jacobian
    assert "✓ Exercise 8" in passes(ex.check_residual_jacobian, J, block, x)


def test_residual_jacobian_wrong(device):
    torch.manual_seed(0)
    d = 4
    block = nn.Sequential(nn.Linear(d, d), nn.Tanh()).to(device)
    x = torch.randn(d, device=device)
    J_F = torch.autograd.functional.jacobian(block, x)
    with pytest.raises(ex.WrongAnswer, match="branch alone"):
        ex.check_residual_jacobian(J_F, block, x)
    with pytest.raises(ex.WrongAnswer, match="transpose"):
        ex.check_residual_jacobian((torch.eye(d, device=device) + J_F).T, block, x)
    with pytest.raises(ex.WrongAnswer, match="largest difference"):
        ex.check_residual_jacobian(torch.zeros(d, d, device=device), block, x)
    with pytest.raises(ValueError, match="jacobian of shape \\(4, 4\\)"):
        ex.check_residual_jacobian(torch.zeros(d, device=device), block, x)
    with pytest.raises(ValueError, match="x to be a vector"):
        ex.check_residual_jacobian(J_F, block, x[None])
    with pytest.raises(TypeError, match="block to be callable"):
        ex.check_residual_jacobian(J_F, 3, x)


# --------------------------------------------------------------------------- exercise 9


class _Pooled(nn.Module):
    def __init__(self, encoder: nn.Module, d: int, classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(d, classes)

    def forward(self, x):
        return self.head(self.encoder(x).mean(1))


def _encoder(num_layers: int, d: int = 8) -> nn.Module:
    return TransformerEncoder(TransformerEncoderLayer(d, 2, 16, dropout=0.0, batch_first=True), num_layers)


def test_sequence_classifier(device, capsys):
    torch.manual_seed(0)
    model = _Pooled(_encoder(2), 8, 2).to(device)
    x = torch.randn(16, 5, 8, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)  # labels the model gets right by construction
    model.train()
    assert ex.check_sequence_classifier(model, x, y) == 1.0
    assert model.training  # the check restores the mode
    assert "2-layer encoder" in capsys.readouterr().out
    with pytest.raises(ex.WrongAnswer, match="accuracy 0.00 is below 0.90"):
        ex.check_sequence_classifier(model, x, 1 - y)
    torch_encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 3,
                                          enable_nested_tensor=False)
    model3 = _Pooled(torch_encoder, 8, 2).to(device)
    with torch.no_grad():
        y3 = model3.eval()(x).argmax(1)
    assert ex.check_sequence_classifier(model3, x, y3) == 1.0


def test_sequence_classifier_rejects(device):
    x, y = torch.randn(4, 5, 8, device=device), torch.zeros(4, dtype=torch.long, device=device)
    with pytest.raises(ex.WrongAnswer, match="has no TransformerEncoder"):
        ex.check_sequence_classifier(nn.Sequential(nn.Flatten(), nn.Linear(40, 2)).to(device), x, y)
    with pytest.raises(ex.WrongAnswer, match="encoder has 1 layer"):
        ex.check_sequence_classifier(_Pooled(_encoder(1), 8, 2).to(device), x, y)
    with pytest.raises(TypeError, match="expected model to be an nn.Module"):
        ex.check_sequence_classifier(lambda v: v, x, y)
    with pytest.raises(ValueError, match="targets of shape \\(4,\\)"):
        ex.check_sequence_classifier(_Pooled(_encoder(2), 8, 2).to(device), x, y[:3])
    with pytest.raises(ValueError, match="logits of shape"):
        ex.check_sequence_classifier(_encoder(2).to(device), x, y)


def test_which_comes_first_marks_two_tokens_and_labels_their_order():
    tokens, labels = ex.which_comes_first(200, length=7, vocab=5, generator=torch.Generator().manual_seed(1))
    assert tokens.shape == (200, 7) and labels.shape == (200,) and tokens.dtype == labels.dtype == torch.long
    assert ((tokens == 0).sum(1) == 1).all() and ((tokens == 1).sum(1) == 1).all() and tokens.max() < 5
    first0 = (tokens == 0).long().argmax(1) < (tokens == 1).long().argmax(1)
    assert torch.equal(labels, first0.long()) and 50 < labels.sum() < 150  # both classes occur
    again = ex.which_comes_first(200, length=7, vocab=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], tokens)  # the generator makes it reproducible
    with pytest.raises(ValueError, match="length ≥ 2 and vocab ≥ 3"):
        ex.which_comes_first(4, vocab=2)
    with pytest.raises(TypeError, match="expected n to be an int"):
        ex.which_comes_first(4.0)


def test_sequence_classifier_model(device):
    torch.manual_seed(0)
    tokens, _ = ex.which_comes_first(6, generator=torch.Generator().manual_seed(0))
    tokens = tokens.to(device)
    model = ex.SequenceClassifier(num_layers=3, num_classes=3).to(device).eval()
    assert model(tokens).shape == (6, 3) and model.encoder.num_layers == 3
    blind = ex.SequenceClassifier(positions=False).to(device).eval()
    with torch.no_grad():  # without positions the model cannot see order
        torch.testing.assert_close(blind(tokens.flip(1)), blind(tokens), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(tokens.flip(1)), model(tokens), atol=1e-5)
    with pytest.raises(ValueError, match="SequenceClassifier"):
        model(tokens[0])


def test_fit_lora_adapter_and_update_energy(device):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    d = 16
    W0 = torch.randn(d, d, generator=g).to(device) / 4
    X = torch.randn(256, d, generator=g).to(device)
    shift = (torch.randn(d, 1, generator=g) @ torch.randn(1, d, generator=g)).to(device) / 4  # rank 1
    P = torch.eye(d)[torch.randperm(d, generator=g)].to(device)
    assert ex.fit_lora_adapter(W0, X, X @ (W0 + shift).T, r=2) < 0.05  # rank 2 covers a rank-1 change
    assert ex.fit_lora_adapter(W0, X, X @ (W0 @ P).T, r=1, steps=100) > 0.3  # a permutation does not fit
    assert ex.directions_for_energy(shift) == 1
    assert ex.directions_for_energy(torch.eye(10)) == 9 and ex.directions_for_energy(torch.eye(10), 1.0) == 10
    with pytest.raises(ValueError, match="inputs \\(N, 16\\)"):
        ex.fit_lora_adapter(W0, X[:, :3], X, r=2)
    with pytest.raises(ValueError, match="0 < share ≤ 1"):
        ex.directions_for_energy(shift, share=1.5)


# --------------------------------------------------------------------------- exercise 10


@given(sizes=st.lists(st.integers(2, 64), min_size=4, max_size=4), r=st.integers(1, 2), head=st.booleans())
def test_lora_counts_match_la_dl(sizes, r, head):
    from la_dl.lora import apply_lora, digits_mlp, trainable_parameter_count

    model = digits_mlp(sizes)
    full = trainable_parameter_count(model)
    apply_lora(model, ["fc1", "fc2"] if head else ["fc1", "fc2", "head"], r)
    if head:
        model.head.requires_grad_(True)  # a fresh head trains in full
    lora = trainable_parameter_count(model)
    assert "✓ Exercise 10" in passes(ex.check_lora_parameter_counts, full, lora, sizes, r, head)


def test_lora_counts_wrong():
    full = mlp_count((64, 128, 128, 5))
    lora = 4 * (64 + 128 + 128 + 128) + 128 * 5 + 5
    assert "25,477 vs 2,437" in passes(ex.check_lora_parameter_counts, full, lora)
    with pytest.raises(ex.WrongAnswer, match="Count the biases"):
        ex.check_lora_parameter_counts(full - 261, lora)
    with pytest.raises(ex.WrongAnswer, match="biases are frozen"):
        ex.check_lora_parameter_counts(full, lora + 256)
    with pytest.raises(ex.WrongAnswer, match="fresh head trains in full"):
        ex.check_lora_parameter_counts(full, lora - 645)
    with pytest.raises(ex.WrongAnswer, match="A \\(r × d_in\\) and B"):
        ex.check_lora_parameter_counts(full, lora // 2)
    with pytest.raises(TypeError, match="expected lora to be a number"):
        ex.check_lora_parameter_counts(full, [lora])


# --------------------------------------------------------------------------- exercise 11


@given(n=st.integers(4, 40), d=st.integers(2, 40), dtype=st.sampled_from(DTYPES), transpose=st.booleans())
def test_normalized_accepts_la_dl_and_torch(device, n, d, dtype, transpose):
    g = torch.Generator().manual_seed(n * 100 + d)
    x = (3 * torch.randn(d, n, generator=g, dtype=dtype) + 2).to(device)
    x = x.T if transpose else x.T.contiguous()  # (n, d), non-contiguous when transposed
    assert "BatchNorm" in passes(ex.check_normalized, "batch", norm.batch_norm(x, None, None, training=True), x)
    assert "LayerNorm" in passes(ex.check_normalized, "layer", norm.layer_norm(x, (d,)), x)
    assert "RMSNorm" in passes(ex.check_normalized, "rms", norm.rms_norm(x, (d,)), x)
    assert "LayerNorm" in passes(ex.check_normalized, "layer", F.layer_norm(x, (d,)), x)


def test_normalized_wrong(device):
    x = 3 * torch.randn(32, 16, device=device, dtype=torch.float64) + 2
    bn, ln = F.batch_norm(x, None, None, training=True), F.layer_norm(x, (16,))
    with pytest.raises(ex.WrongAnswer, match="rows are standardised instead: that is LayerNorm"):
        ex.check_normalized("batch", ln)
    with pytest.raises(ex.WrongAnswer, match="columns are standardised instead: that is BatchNorm"):
        ex.check_normalized("layer", bn)
    with pytest.raises(ex.WrongAnswer, match="mean square 1"):
        ex.check_normalized("rms", x)
    with pytest.raises(ex.WrongAnswer, match="differs from torch's LayerNorm"):
        ex.check_normalized("layer", ln.flip(0), x)  # right statistics, wrong rows
    with pytest.raises(ValueError, match="kind 'batch', 'layer' or 'rms'"):
        ex.check_normalized("group", ln)
    with pytest.raises(ValueError, match="output of shape \\(N, D\\)"):
        ex.check_normalized("layer", ln[0])
    with pytest.raises(ValueError, match="input of shape \\(32, 16\\)"):
        ex.check_normalized("layer", ln, x[:2])
    with pytest.raises(TypeError, match="expected output to be a torch.Tensor"):
        ex.check_normalized("layer", ln.tolist())


# --------------------------------------------------------------------------- exercise 12


@given(n=st.integers(1, 40), layers=st.integers(1, 2), heads=st.sampled_from([1, 2, 4]))
def test_encoder_flops_closed_form(n, layers, heads):
    E, Fd = 16, 32
    attention = layers * (8 * n * E * E + 4 * n * n * E)  # 4 projections, QKᵀ and (weights)V
    ffn = layers * 4 * n * E * Fd
    measured = ex.measure_encoder_flops(n, E, heads, Fd, layers)
    assert measured == {"attention": attention, "ffn": ffn, "total": attention + ffn}
    out = passes(ex.check_bert_flops, {"attention": attention, "ffn": ffn}, n, E, heads, Fd, layers)
    assert "match FlopCounterMode" in out


def test_bert_flops_wrong():
    n, E, Fd = 64, 128, 512
    attention, ffn = 2 * (8 * n * E * E + 4 * n * n * E), 2 * 4 * n * E * Fd
    with pytest.raises(ex.WrongAnswer, match="multiply-add is 2 FLOPs"):
        ex.check_bert_flops({"attention": attention // 2, "ffn": ffn}, n)
    with pytest.raises(ex.WrongAnswer, match="QKᵀ and \\(weights\\)V"):
        ex.check_bert_flops({"attention": 2 * 8 * n * E * E, "ffn": ffn}, n)
    with pytest.raises(ex.WrongAnswer, match="ffn: FlopCounterMode measures"):
        ex.check_bert_flops({"attention": attention, "ffn": ffn + ffn // 100}, n)
    with pytest.raises(ValueError, match="lacks \\['ffn'\\]"):
        ex.check_bert_flops({"attention": attention}, n)
    with pytest.raises(TypeError, match="counts to be a dict"):
        ex.check_bert_flops([attention, ffn], n)


# --------------------------------------------------------------------------- exercise 15


@given(k=st.sampled_from([1, 3, 5]), depth=st.integers(1, 8))
def test_conv3d_scaling(k, depth):
    out = passes(ex.check_conv3d_scaling, k, k * depth, kernel_size=k, depth=depth, channels=2, size=6)
    assert f"FLOPs {k * depth}×" in out


def test_conv3d_scaling_wrong():
    with pytest.raises(ex.WrongAnswer, match="per-position cost only"):
        ex.check_conv3d_scaling(3, 3)
    with pytest.raises(ex.WrongAnswer, match="K× more and there are D× more"):
        ex.check_conv3d_scaling(3, 9)
    with pytest.raises(ex.WrongAnswer, match="C_out·C_in·K³"):
        ex.check_conv3d_scaling(9, 48)
    with pytest.raises(TypeError, match="param_ratio to be a number"):
        ex.check_conv3d_scaling("3", 48)


# --------------------------------------------------------------------------- figures


def test_figures_of_the_solutions():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from la_dl.plots import exercises as plots
    from la_dl.plots import registry

    assert {"ex_norm_distributions", "ex_bert_flops", "ex_update_energy"} <= set(registry())
    h = plots.random_activations(batch=64, features=16)
    assert h.shape == (64, 16) and h.mean(0).std() > 0.5  # the features drift apart
    figures = [plots.norm_distributions(h), plots.bert_flops((16, 64), measured={16: 1, 64: 2}),
               plots.update_energy()]
    for fig in figures:
        labelled = [ax for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel()]
        assert labelled, "every figure has labelled axes"
        plt.close(fig)
    assert len(figures[0].axes) == 8 and len(figures[1].axes) == 2
