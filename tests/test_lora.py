"""la_dl.lora against the explicit linear algebra it stands for (§8).

There is no LoRA built into torch; the reference is the formula itself written with torch
ops, ``F.linear(x, W₀ + (α/r) B A, b)``, and torch's SVD for the low-rank results.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from la_dl.lora import (
    NF4_LEVELS,
    DoRALinear,
    LoRALinear,
    allocate_rank,
    apply_lora,
    digits_mlp,
    finetune_experiment,
    lora_parameter_count,
    low_rank_approximation,
    nf4_dequantize,
    nf4_quantize,
    polar_decomposition,
    trainable_parameter_count,
    training_memory,
)

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


@st.composite
def layer_setups(draw):
    d_in, d_out = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    r = draw(st.integers(1, min(d_in, d_out)))
    lead = draw(st.lists(st.integers(1, 4), max_size=2))
    return dict(
        d_in=d_in, d_out=d_out, r=r, lead=tuple(lead),
        alpha=draw(st.sampled_from([None, 1.0, 16.0])),
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        contiguous=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def _layer(cls, s, device, randomise_b=True):
    torch.manual_seed(s["seed"])
    base = nn.Linear(s["d_in"], s["d_out"], bias=s["bias"]).to(device=device, dtype=s["dtype"])
    layer = cls(base, s["r"], s["alpha"])
    if randomise_b:  # move away from the B = 0 start so the update is not trivially zero
        with torch.no_grad():
            layer.lora_B.normal_()
    return layer


def _input(s, device):
    g = torch.Generator().manual_seed(s["seed"] + 1)
    shape = (*s["lead"], s["d_in"])
    if s["contiguous"]:
        x = torch.randn(shape, generator=g, dtype=torch.float64)
    else:  # a transposed view: same shape, non-contiguous memory
        x = torch.randn((s["d_in"], *s["lead"]), generator=g, dtype=torch.float64).movedim(0, -1)
    return x.to(device=device, dtype=s["dtype"])


# --------------------------------------------------------------------------- LoRALinear


@given(s=layer_setups())
def test_lora_starts_identical_to_base(device, s):
    layer = _layer(LoRALinear, s, device, randomise_b=False)
    x = _input(s, device)
    assert torch.equal(layer(x), layer.base_layer(x))  # B = 0: exactly the base layer
    assert torch.count_nonzero(layer.get_delta_weight()) == 0


@given(s=layer_setups())
def test_lora_matches_explicit_update_with_gradients(device, s):
    layer = _layer(LoRALinear, s, device)
    x = _input(s, device).requires_grad_()
    scaling = (s["alpha"] or s["r"]) / s["r"]
    assert layer.scaling == scaling

    out = layer(x)
    upstream = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, layer.lora_A, layer.lora_B), upstream)

    A = layer.lora_A.detach().clone().requires_grad_()
    B = layer.lora_B.detach().clone().requires_grad_()
    W0, b = layer.base_layer.weight, layer.base_layer.bias
    ref = F.linear(x, W0 + scaling * (B @ A), b)  # W' = W₀ + (α/r) B A
    ref_grads = torch.autograd.grad(ref, (x, A, B), upstream)

    torch.testing.assert_close(out, ref, **TOL[s["dtype"]])
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, **TOL[s["dtype"]])
    torch.testing.assert_close(layer.get_delta_weight(), scaling * (B @ A).detach())
    assert torch.linalg.matrix_rank(layer.get_delta_weight().detach()) <= s["r"]
    assert W0.grad is None and not W0.requires_grad  # the base stays frozen


@given(s=layer_setups())
def test_lora_gradcheck(s):
    s = {**s, "dtype": torch.float64}
    layer = _layer(LoRALinear, s, "cpu")
    x = _input(s, "cpu").requires_grad_()
    A = layer.lora_A.detach().clone().requires_grad_()
    B = layer.lora_B.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, A, B: functional_call(layer, {"lora_A": A, "lora_B": B}, (x,)), (x, A, B)
    )


@given(s=layer_setups())
def test_merge_unmerge(device, s):
    layer = _layer(LoRALinear, s, device)
    x = _input(s, device)
    w0 = layer.base_layer.weight.detach().clone()
    before = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer.base_layer.weight, w0 + layer.get_delta_weight())
    torch.testing.assert_close(layer(x), before, **TOL[s["dtype"]])  # merged == unmerged
    layer.unmerge()
    assert torch.equal(layer.base_layer.weight, w0)  # restored bit for bit
    assert torch.equal(layer(x), before)


def test_dropout_only_touches_the_update(device):
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 5).to(device), r=2, lora_dropout=0.5)
    x = torch.randn(4, 6, device=device)
    assert torch.equal(layer(x), layer.base_layer(x))  # B = 0: dropout has nothing to drop
    with torch.no_grad():
        layer.lora_B.normal_()
    layer.eval()
    torch.testing.assert_close(layer(x), F.linear(x, layer.base_layer.weight + layer.get_delta_weight(),
                                                  layer.base_layer.bias))
    layer.train()
    torch.manual_seed(1)
    train_out = layer(x)
    torch.manual_seed(1)
    mask = nn.functional.dropout(torch.ones_like(x), 0.5)  # the same draw as inside the layer
    expected = layer.base_layer(x) + layer.scaling * (x * mask) @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(train_out, expected)


# --------------------------------------------------------------------------- DoRALinear


@given(s=layer_setups())
def test_dora_starts_at_base_and_matches_formula(device, s):
    layer = _layer(DoRALinear, s, device, randomise_b=False)
    x = _input(s, device)
    torch.testing.assert_close(layer(x), layer.base_layer(x), **TOL[s["dtype"]])

    with torch.no_grad():
        layer.lora_B.normal_()
        layer.magnitude.mul_(torch.linspace(0.5, 2.0, s["d_out"], device=device, dtype=s["dtype"]))
    V = layer.base_layer.weight + layer.scaling * layer.lora_B @ layer.lora_A  # direction: (d_out, d_in)
    W = layer.magnitude[:, None] * V / V.norm(dim=1, keepdim=True)
    torch.testing.assert_close(layer(x), F.linear(x, W, layer.base_layer.bias), **TOL[s["dtype"]])
    # Each row of W' has length m_i: magnitude and direction are separate knobs.
    torch.testing.assert_close(W.norm(dim=1), layer.magnitude.detach(), **TOL[s["dtype"]])
    torch.testing.assert_close(layer.get_delta_weight(), W - layer.base_layer.weight)

    before = layer(x)
    w0 = layer.base_layer.weight.detach().clone()
    layer.merge()
    torch.testing.assert_close(layer(x), before, **TOL[s["dtype"]])
    layer.unmerge()
    assert torch.equal(layer.base_layer.weight, w0)


@given(s=layer_setups())
def test_dora_gradcheck(s):
    s = {**s, "dtype": torch.float64}
    layer = _layer(DoRALinear, s, "cpu")
    x = _input(s, "cpu").requires_grad_()
    params = [layer.lora_A, layer.lora_B, layer.magnitude]
    A, B, m = (p.detach().clone().requires_grad_() for p in params)
    assert torch.autograd.gradcheck(
        lambda x, A, B, m: functional_call(layer, {"lora_A": A, "lora_B": B, "magnitude": m}, (x,)),
        (x, A, B, m),
    )


# --------------------------------------------------------------------------- apply_lora, counts


@pytest.mark.parametrize("use_dora", [False, True])
def test_apply_lora_freezes_all_but_adapters(device, use_dora):
    torch.manual_seed(0)
    model = digits_mlp((64, 32, 16, 10)).to(device)
    x = torch.randn(8, 64, device=device)
    before = model(x)
    apply_lora(model, ["fc1", "head"], r=4, lora_alpha=8, use_dora=use_dora)
    assert isinstance(model.fc1, DoRALinear if use_dora else LoRALinear)
    assert isinstance(model.fc2, nn.Linear) and isinstance(model.head, LoRALinear)
    expected = lora_parameter_count(64, 32, 4) + lora_parameter_count(16, 10, 4)
    if use_dora:
        expected += 32 + 10  # one magnitude per output row
    assert trainable_parameter_count(model) == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.split(".")[-1] in {"lora_A", "lora_B", "magnitude"} for n in trainable)
    torch.testing.assert_close(model(x), before)  # still the pretrained function
    model(x).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)


@given(d_in=st.integers(1, 5000), d_out=st.integers(1, 5000), data=st.data())
def test_lora_parameter_count(d_in, d_out, data):
    r = data.draw(st.integers(1, min(d_in, d_out, 64)))
    assert lora_parameter_count(d_in, d_out, r) == r * (d_in + d_out)
    if d_in <= 64 and d_out <= 64:
        layer = LoRALinear(nn.Linear(d_in, d_out), r)
        assert trainable_parameter_count(layer) == lora_parameter_count(d_in, d_out, r)


def test_lora_parameter_count_of_the_book():
    assert lora_parameter_count(4096, 4096, 8) == 65_536
    assert 4096 * 4096 == 16_777_216 and 16_777_216 // 65_536 == 256


# --------------------------------------------------------------------------- low rank


@given(
    m=st.integers(1, 8), n=st.integers(1, 8), lead=st.lists(st.integers(1, 3), max_size=1),
    dtype=st.sampled_from([torch.float32, torch.float64]), contiguous=st.booleans(),
    seed=st.integers(0, 2**16), data=st.data(),
)
def test_low_rank_approximation_eckart_young(device, m, n, lead, dtype, contiguous, seed, data):
    r = data.draw(st.integers(1, min(m, n)))
    g = torch.Generator().manual_seed(seed)
    M = torch.randn((*lead, n, m) if not contiguous else (*lead, m, n), generator=g, dtype=torch.float64)
    M = (M if contiguous else M.mT).to(device=device, dtype=dtype)
    approx = low_rank_approximation(M, r)
    assert approx.shape == M.shape
    sigma = torch.linalg.svdvals(M.double())
    assert (torch.linalg.matrix_rank(approx.double(), atol=1e-4) <= r).all()
    err = torch.linalg.matrix_norm(M.double() - approx.double()) ** 2
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(err, sigma[..., r:].pow(2).sum(-1), rtol=tol, atol=tol)
    # Optimality: a random rank-r matrix fitted by least squares does no better.
    X = torch.randn((*lead, m, r), generator=g, dtype=torch.float64).to(device)
    fit = X @ torch.linalg.lstsq(X, M.double()).solution
    assert (torch.linalg.matrix_norm(M.double() - fit) ** 2 >= err - 1e-6).all()


def test_low_rank_error_collapses_at_the_planted_rank(device):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(40, 5, generator=g, dtype=torch.float64)
    A = torch.randn(5, 30, generator=g, dtype=torch.float64)
    delta = (B @ A).to(device)
    errors = [torch.linalg.matrix_norm(delta - low_rank_approximation(delta, r)).item() for r in range(1, 9)]
    assert all(e > 1e-3 for e in errors[:4]) and all(e < 1e-10 for e in errors[4:])


def test_polar_decomposition(device):
    M = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).to(device)
    U, P = polar_decomposition(M)
    eye = torch.eye(6, dtype=torch.float64, device=device)
    torch.testing.assert_close(U @ P, M)
    torch.testing.assert_close(U.T @ U, eye)
    torch.testing.assert_close(P, P.T)
    assert (torch.linalg.eigvalsh(P) >= -1e-12).all()
    # P is the unique PSD square root of MᵀM.
    torch.testing.assert_close(P @ P, M.T @ M)


def test_allocate_rank_beats_uniform():
    g = torch.Generator().manual_seed(0)
    # Three updates of intrinsic ranks 1, 3 and 6, with different scales.
    deltas = [
        s * torch.randn(20, k, generator=g, dtype=torch.float64)
        @ torch.randn(k, 20, generator=g, dtype=torch.float64)
        for k, s in [(1, 3.0), (3, 1.0), (6, 0.3)]
    ]
    ranks = allocate_rank(deltas, budget=9)
    assert sum(ranks) == 9 and ranks[0] == 1  # no budget wasted on a rank-1 update

    def residual(rs):
        return sum(
            torch.linalg.matrix_norm(d - low_rank_approximation(d, r)).item() ** 2
            for d, r in zip(deltas, rs)
        )

    assert residual(ranks) <= residual([3, 3, 3]) + 1e-9
    # Greedy on singular values is optimal: no other split of the budget does better.
    splits = [(a, b, 9 - a - b) for a in range(1, 8) for b in range(1, 9 - a)]
    assert residual(ranks) <= min(residual(s) for s in splits) + 1e-9


def test_nf4_round_trip(device):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(32, 16, generator=g).to(device)
    codes, absmax = nf4_quantize(W, block_size=64)
    assert codes.dtype == torch.uint8 and codes.shape == (8, 64) and int(codes.max()) <= 15
    W_hat = nf4_dequantize(codes, absmax, W.shape)
    levels = torch.tensor(NF4_LEVELS)
    max_gap = (levels[1:] - levels[:-1]).max().item()
    bound = (absmax[:, None] * max_gap / 2).expand(8, 64).reshape(W.shape)
    assert (W_hat - W).abs().le(bound + 1e-6).all()  # nearest level: within half a gap
    # Each block's largest value is stored exactly (it maps to ±1).
    blocks, rec = W.reshape(8, 64), W_hat.reshape(8, 64)
    idx = blocks.abs().argmax(1, keepdim=True)
    torch.testing.assert_close(rec.gather(1, idx), blocks.gather(1, idx))
    # A weight already on the grid round-trips exactly.
    on_grid = (levels.repeat(4) * 2.0).to(device)
    torch.testing.assert_close(nf4_dequantize(*nf4_quantize(on_grid, 16), on_grid.shape), on_grid)


# --------------------------------------------------------------------------- memory


def test_training_memory_counts_full_and_lora(device):
    torch.manual_seed(0)
    model = digits_mlp((64, 32, 16, 10)).to(device)
    x, y = torch.randn(12, 64, device=device), torch.randint(0, 10, (12,), device=device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    full = training_memory(model, x, y)
    n_params = sum(p.numel() for p in model.parameters())
    assert full.parameters == 4 * n_params and full.gradients == 4 * n_params
    assert full.optimizer == 2 * 4 * n_params + 4 * 6  # exp_avg, exp_avg_sq + 6 step counters
    assert full.activations > 0 and full.total > full.parameters
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # untouched

    apply_lora(model, ["fc1", "fc2", "head"], r=2)
    lora = training_memory(model, x, y)
    n_lora = trainable_parameter_count(model)
    assert lora.parameters == 4 * (n_params + n_lora)
    assert lora.gradients == 4 * n_lora and lora.optimizer == 8 * n_lora + 4 * 6
    assert lora.total < full.total
    if device.type == "cuda":
        assert full.cuda_peak is not None and full.cuda_peak >= full.parameters


# --------------------------------------------------------------------------- errors


def test_errors():
    base = nn.Linear(6, 4)
    with pytest.raises(TypeError, match="LoRALinear: expected base_layer to be an nn.Linear but got Conv1d"):
        LoRALinear(nn.Conv1d(2, 2, 3), r=1)
    with pytest.raises(ValueError, match=r"LoRALinear: expected 0 < r <= min\(d_in, d_out\) = 4 but got r=0"):
        LoRALinear(base, r=0)
    with pytest.raises(ValueError, match=r"LoRALinear: expected 0 < r <= min\(d_in, d_out\) = 4 but got r=5"):
        LoRALinear(base, r=5)
    with pytest.raises(TypeError, match="LoRALinear: expected r to be an int but got float"):
        LoRALinear(base, r=2.0)
    with pytest.raises(ValueError, match="LoRALinear: expected lora_alpha > 0 but got -1"):
        LoRALinear(base, r=2, lora_alpha=-1)
    with pytest.raises(ValueError, match="LoRALinear: expected 0 <= lora_dropout < 1 but got 1.5"):
        LoRALinear(base, r=2, lora_dropout=1.5)
    with pytest.raises(ValueError, match=r"DoRALinear: expected 0 < r <= min\(d_in, d_out\) = 4 but got r=7"):
        DoRALinear(base, r=7)
    layer = LoRALinear(base, r=2)
    with pytest.raises(RuntimeError, match="LoRALinear.unmerge: expected a merged layer"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(RuntimeError, match="LoRALinear.merge: expected an unmerged layer"):
        layer.merge()

    model = digits_mlp((8, 4, 4, 2))
    with pytest.raises(TypeError, match="apply_lora: expected target 'relu1' to be an nn.Linear but got Re"):
        apply_lora(model, ["relu1"], r=1)
    with pytest.raises(ValueError, match=r"apply_lora: expected target_modules \['attn'\] to match a module"):
        apply_lora(model, ["attn"], r=1)
    with pytest.raises(TypeError, match="apply_lora: expected target_modules to be a non-empty list"):
        apply_lora(model, "fc1", r=1)
    with pytest.raises(ValueError, match=r"LoRALinear: expected 0 < r <= min\(d_in, d_out\) = 2 but got r=3"):
        apply_lora(model, ["head"], r=3)
    with pytest.raises(ValueError, match="apply_lora: expected lora_dropout=0 with use_dora=True"):
        apply_lora(model, ["fc1"], r=1, lora_dropout=0.1, use_dora=True)
    with pytest.raises(ValueError, match=r"training_memory: expected a model with trainable parameters"):
        training_memory(model.requires_grad_(False), torch.randn(2, 8), torch.tensor([0, 1]))

    with pytest.raises(ValueError, match=r"lora_parameter_count: expected 0 < r <= min\(d_in, d_out\) = 8"):
        lora_parameter_count(8, 16, 9)
    with pytest.raises(ValueError, match="lora_parameter_count: expected d_in > 0 but got 0"):
        lora_parameter_count(0, 16, 1)
    with pytest.raises(ValueError, match=r"low_rank_approximation: expected 0 < r <= min\(d_in, d_out\) = 3"):
        low_rank_approximation(torch.randn(3, 5), 4)
    with pytest.raises(ValueError, match=r"low_rank_approximation: expected matrix of shape \(\*, m, n\)"):
        low_rank_approximation(torch.randn(5), 1)
    with pytest.raises(TypeError, match="low_rank_approximation: expected matrix to have a floating-point"):
        low_rank_approximation(torch.ones(3, 3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"polar_decomposition: expected a square matrix but got shape \[2, 3"):
        polar_decomposition(torch.randn(2, 3))
    with pytest.raises(ValueError, match="allocate_rank: expected budget <= 4"):
        allocate_rank([torch.randn(2, 2), torch.randn(2, 3)], 5)
    with pytest.raises(ValueError, match="allocate_rank: expected at least one matrix"):
        allocate_rank([], 1)
    with pytest.raises(ValueError, match="nf4_quantize: expected weight.numel.. to be a multiple of block_size"):
        nf4_quantize(torch.randn(10), 64)
    with pytest.raises(ValueError, match=r"digits_mlp: expected four sizes"):
        digits_mlp((64, 10))


def test_rank_of_product_is_at_most_r():
    """Deeper exercise of §8: rank(BA) <= r, checked on random factors of every small shape."""
    g = torch.Generator().manual_seed(0)
    for m, n, r in [(5, 7, 1), (5, 7, 3), (10, 4, 4), (6, 6, 2)]:
        B, A = torch.randn(m, r, generator=g), torch.randn(r, n, generator=g)
        assert torch.linalg.matrix_rank(B @ A) == min(r, m, n)


def test_finetune_experiment_structure(device):
    exp = finetune_experiment(ranks=(2,), dora_rank=2, hidden=16, epochs=2, device=device)
    names = [run.name for run in exp.runs]
    assert names == ["full", "head only", "LoRA r=2", "DoRA r=2"]
    counts = {run.name: run.trainable for run in exp.runs}
    head = 16 * 5 + 5  # the fresh 5-way head trains in every run
    assert counts["full"] == sum(p.numel() for p in exp.pretrained.parameters())
    assert counts["head only"] == head
    assert counts["LoRA r=2"] == head + lora_parameter_count(64, 16, 2) + lora_parameter_count(16, 16, 2)
    assert counts["DoRA r=2"] == counts["LoRA r=2"] + 16 + 16
    # LoRA never touches W₀: switching the adapters off gives back the pretrained layers exactly.
    adapted = exp.models["LoRA r=2"]
    for layer in ("fc1", "fc2"):
        assert torch.equal(getattr(adapted, layer).base_layer.weight, getattr(exp.pretrained, layer).weight)
        full_w = getattr(exp.models["full"], layer).weight
        torch.testing.assert_close(exp.full_update[layer], (full_w - getattr(exp.pretrained, layer).weight).cpu())
    mem = {run.name: run.memory for run in exp.runs}
    assert mem["LoRA r=2"].optimizer < mem["full"].optimizer
    assert all(0.0 <= run.new_accuracy <= 1.0 and 0.0 <= run.old_accuracy <= 1.0 for run in exp.runs)
