"""§8 LoRA: fine-tuning as a low-rank update.

Freeze the pretrained weight ``W₀ ∈ R^{d_out×d_in}`` and learn an update of rank at most ``r``,

    W' = W₀ + ΔW,    ΔW = (α/r) · B A,    A ∈ R^{r×d_in},  B ∈ R^{d_out×r},

so a layer trains ``r (d_in + d_out)`` numbers instead of ``d_in d_out`` (§8.1). The names
follow PEFT (``base_layer``, ``lora_A``, ``lora_B``, ``scaling = lora_alpha / r``, ``merge``,
``unmerge``, ``get_delta_weight``); the layer is wrapped, not subclassed.

The module also holds the linear algebra behind §8.2-8.3: the best rank-``r`` approximation
(Eckart–Young), DoRA's magnitude/direction split and the polar decomposition it echoes,
AdaLoRA's rank allocation, NF4 quantisation (QLoRA), and the memory count of a training step
used by the fine-tuning experiment of the notebook.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from la_dl._checks import check_floating, check_ndim, check_positive_int, check_tensor

__all__ = [
    "lora_parameter_count",
    "low_rank_approximation",
    "polar_decomposition",
    "allocate_rank",
    "nf4_quantize",
    "nf4_dequantize",
    "LoRALinear",
    "DoRALinear",
    "apply_lora",
    "trainable_parameter_count",
    "TrainingMemory",
    "training_memory",
    "digits_mlp",
    "FinetuneRun",
    "FinetuneExperiment",
    "finetune_experiment",
]


def _check_rank(fn: str, r: object, d_in: int, d_out: int) -> int:
    """``r`` must be an int with ``0 < r <= min(d_in, d_out)`` (a larger r adds nothing)."""
    if isinstance(r, bool) or not isinstance(r, int):
        raise TypeError(f"{fn}: expected r to be an int but got {type(r).__name__}")
    if r <= 0 or r > min(d_in, d_out):
        raise ValueError(
            f"{fn}: expected 0 < r <= min(d_in, d_out) = {min(d_in, d_out)} but got r={r}"
        )
    return r


# --------------------------------------------------------------------------- §8.1 counts


def lora_parameter_count(d_in: int, d_out: int, r: int) -> int:
    """Trainable numbers of a rank-``r`` LoRA update of a ``d_out × d_in`` layer (§8.1).

    ``A`` has ``r · d_in`` entries and ``B`` has ``d_out · r``: ``r (d_in + d_out)`` in all,
    against ``d_in · d_out`` for full fine-tuning (4096, 4096, 8 → 65,536 vs 16,777,216).
    """
    check_positive_int("d_in", "lora_parameter_count", d_in)
    check_positive_int("d_out", "lora_parameter_count", d_out)
    _check_rank("lora_parameter_count", r, d_in, d_out)
    return r * (d_in + d_out)


# --------------------------------------------------------------------------- §8.2 low rank


def low_rank_approximation(matrix: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-``r`` approximation of ``matrix`` (Eckart–Young, §8.2).

    With the SVD ``M = U Σ Vᵀ``, keep the ``r`` largest singular triplets:
    ``M_r = U[:, :r] Σ[:r] V[:, :r]ᵀ``. No matrix of rank ``≤ r`` is closer in the Frobenius
    norm, and the error is the energy left out: ``‖M − M_r‖_F² = Σ_{i>r} σ_i²``.
    Works on a batch ``(*, m, n)``; returns the same shape.
    """
    fn = "low_rank_approximation"
    check_tensor("matrix", fn, matrix)
    check_floating("matrix", fn, matrix)
    if matrix.ndim < 2:
        raise ValueError(f"{fn}: expected matrix of shape (*, m, n) but got {list(matrix.shape)}")
    m, n = matrix.shape[-2:]
    _check_rank(fn, r, n, m)
    U, S, Vh = torch.linalg.svd(matrix, full_matrices=False)  # (*, m, k), (*, k), (*, k, n)
    return U[..., :, :r] @ (S[..., :r, None] * Vh[..., :r, :])  # (*, m, n)


def polar_decomposition(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``M = U P``: an orthogonal factor times a symmetric positive semi-definite one (§8.3).

    From the SVD ``M = W Σ Vᵀ``: ``U = W Vᵀ`` (the direction part, a rotation/reflection) and
    ``P = V Σ Vᵀ`` (the magnitude part, a stretch). DoRA's split of each weight vector into a
    length ``m`` and a unit direction is this idea applied vector by vector. ``M`` is square.
    """
    fn = "polar_decomposition"
    check_tensor("matrix", fn, matrix)
    check_floating("matrix", fn, matrix)
    check_ndim("matrix", fn, matrix, 2)
    n, n2 = matrix.shape
    if n != n2:
        raise ValueError(f"{fn}: expected a square matrix but got shape {list(matrix.shape)}")
    W, S, Vh = torch.linalg.svd(matrix)  # (n, n), (n,), (n, n)
    U = W @ Vh  # orthogonal: (n, n)
    P = Vh.mT @ (S[:, None] * Vh)  # V Σ Vᵀ: (n, n)
    return U, P


def allocate_rank(matrices: Sequence[torch.Tensor], budget: int) -> list[int]:
    """AdaLoRA's move (§8.3): share a total rank ``budget`` unevenly across layers.

    Every singular value ``σ`` of every layer's update competes for the budget; each layer
    keeps as many directions as it has among the ``budget`` largest. By Eckart–Young this
    minimises the total squared error ``Σ_layers ‖ΔW_l − (ΔW_l)_{r_l}‖_F²`` over all
    allocations with ``Σ r_l = budget``. (AdaLoRA scores triplets by a sensitivity estimate
    during training; the singular value is the score when the update is known.)
    """
    fn = "allocate_rank"
    if not matrices:
        raise ValueError(f"{fn}: expected at least one matrix but got none")
    spectra = []
    for i, m in enumerate(matrices):
        check_tensor(f"matrices[{i}]", fn, m)
        check_ndim(f"matrices[{i}]", fn, m, 2)
        spectra.append(torch.linalg.svdvals(m.detach().double().cpu()))
    check_positive_int("budget", fn, budget)
    available = sum(len(s) for s in spectra)
    if budget > available:
        raise ValueError(f"{fn}: expected budget <= {available} (all singular values) but got {budget}")
    owner = torch.cat([torch.full((len(s),), i) for i, s in enumerate(spectra)])  # (K,)
    keep = torch.cat(spectra).argsort(descending=True, stable=True)[:budget]  # top σ's
    return torch.bincount(owner[keep], minlength=len(spectra)).tolist()


# --------------------------------------------------------------------------- §8.3 QLoRA

# NormalFloat4 (Dettmers et al. 2023): the 16 quantiles of N(0, 1), rescaled to [-1, 1], with
# an exact 0. Weights are roughly normal, so equal-probability bins waste no code.
NF4_LEVELS = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)


def nf4_quantize(weight: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise ``weight`` to 4-bit NormalFloat codes, block by block (QLoRA, §8.3).

    The flattened weight is cut into blocks of ``block_size`` values; each block is divided by
    its absolute maximum (one float per block) and every value is replaced by the index of the
    nearest of the 16 :data:`NF4_LEVELS`. Returns ``(codes, absmax)``: ``codes`` is uint8 in
    ``0..15`` (4 bits of information each), shape ``(n_blocks, block_size)``; ``absmax`` is
    ``(n_blocks,)``. ``weight.numel()`` must be a multiple of ``block_size``.
    """
    fn = "nf4_quantize"
    check_tensor("weight", fn, weight)
    check_floating("weight", fn, weight)
    check_positive_int("block_size", fn, block_size)
    if weight.numel() % block_size:
        raise ValueError(
            f"{fn}: expected weight.numel() to be a multiple of block_size={block_size} but got "
            f"{weight.numel()}"
        )
    blocks = weight.detach().float().reshape(-1, block_size)  # (n_blocks, block_size)
    absmax = blocks.abs().amax(1).clamp_min(torch.finfo(torch.float32).tiny)  # (n_blocks,)
    levels = torch.tensor(NF4_LEVELS, device=weight.device)  # (16,)
    scaled = blocks / absmax[:, None]  # in [-1, 1]: (n_blocks, block_size)
    codes = (scaled[..., None] - levels).abs().argmin(-1)  # nearest level: (n_blocks, block_size)
    return codes.to(torch.uint8), absmax


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Undo :func:`nf4_quantize`: ``W ≈ level[code] · absmax`` reshaped to ``shape`` (float32)."""
    levels = torch.tensor(NF4_LEVELS, device=codes.device)  # (16,)
    return (levels[codes.long()] * absmax[:, None]).reshape(shape)  # (n_blocks, block) → shape


# --------------------------------------------------------------------------- modules


class LoRALinear(nn.Module):
    """``y = x W₀ᵀ + b + (α/r) · x Aᵀ Bᵀ``: a frozen ``nn.Linear`` plus a rank-``r`` update (§8.1).

    ``lora_A`` (``r × d_in``) starts like PEFT's (Kaiming-uniform) and ``lora_B``
    (``d_out × r``) starts at zero, so the wrapped layer starts *identical* to ``base_layer``
    and training moves it along at most ``r`` directions. ``lora_alpha`` defaults to ``r``
    (``scaling = 1``). The update is applied as ``(x Aᵀ) Bᵀ``, which costs ``r (d_in + d_out)``
    multiply-adds per row and never forms the ``d_out × d_in`` matrix ``ΔW``.
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(
                f"{fn}: expected base_layer to be an nn.Linear but got {type(base_layer).__name__}"
            )
        d_out, d_in = base_layer.weight.shape
        _check_rank(fn, r, d_in, d_out)
        lora_alpha = float(r) if lora_alpha is None else lora_alpha
        if isinstance(lora_alpha, bool) or not isinstance(lora_alpha, (int, float)) or lora_alpha <= 0:
            raise ValueError(f"{fn}: expected lora_alpha > 0 but got {lora_alpha!r}")
        if not 0.0 <= lora_dropout < 1.0:
            raise ValueError(f"{fn}: expected 0 <= lora_dropout < 1 but got {lora_dropout}")

        self.base_layer = base_layer.requires_grad_(False)  # W₀ and b are frozen
        self.r, self.lora_alpha = r, float(lora_alpha)
        self.scaling = self.lora_alpha / r
        factory = dict(device=base_layer.weight.device, dtype=base_layer.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(r, d_in, **factory))  # A: (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, **factory))  # B: (d_out, r), zero ⇒ ΔW = 0
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.merged = False
        self._unmerged_weight: torch.Tensor | None = None

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def get_delta_weight(self) -> torch.Tensor:
        """``ΔW = (α/r) B A``, shape ``(d_out, d_in)``, of rank at most ``r``."""
        return self.scaling * (self.lora_B @ self.lora_A)  # (d_out, d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)  # x W₀ᵀ + b: (*, d_out)
        if self.merged:  # W₀ already holds W₀ + ΔW
            return out
        low = self.lora_dropout(x) @ self.lora_A.mT  # x Aᵀ: (*, r)
        return out + self.scaling * (low @ self.lora_B.mT)  # + (α/r) x Aᵀ Bᵀ: (*, d_out)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight, ``W₀ ← W₀ + ΔW``: inference costs nothing extra.

        The original ``W₀`` is kept, because ``(W₀ + ΔW) − ΔW`` is not ``W₀`` bit for bit in
        floating point; :meth:`unmerge` restores it exactly.
        """
        if self.merged:
            raise RuntimeError(f"{type(self).__name__}.merge: expected an unmerged layer but it is merged")
        weight = self.base_layer.weight
        self._unmerged_weight = weight.detach().clone()
        weight.copy_(self._merged_weight())
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the base weight ``W₀`` exactly (the update stays in ``lora_A``, ``lora_B``)."""
        if not self.merged or self._unmerged_weight is None:
            raise RuntimeError(f"{type(self).__name__}.unmerge: expected a merged layer but it is not merged")
        self.base_layer.weight.copy_(self._unmerged_weight)
        self._unmerged_weight = None
        self.merged = False

    def _merged_weight(self) -> torch.Tensor:
        return self.base_layer.weight + self.get_delta_weight()  # W₀ + ΔW: (d_out, d_in)

    def extra_repr(self) -> str:
        return f"r={self.r}, lora_alpha={self.lora_alpha:g}, merged={self.merged}"


class DoRALinear(LoRALinear):
    """DoRA (§8.3): a learned magnitude times a LoRA-adapted direction, row by row.

    Write each output neuron's weight row as length × unit direction,
    ``W₀[i] = ‖W₀[i]‖ · (W₀[i] / ‖W₀[i]‖)``. DoRA trains the lengths ``m ∈ R^{d_out}``
    directly and moves the directions with LoRA:

        W' = m ⊙ (W₀ + ΔW) / ‖W₀ + ΔW‖_row,   ΔW = (α/r) B A.

    With ``m = ‖W₀‖_row`` and ``B = 0`` it starts at ``W' = W₀``. (The paper writes the
    weight transposed and speaks of columns; rows of ``nn.Linear``'s weight are the same
    vectors.) The norm is differentiated through, as in the paper's formulation.
    """

    def __init__(self, base_layer: nn.Linear, r: int, lora_alpha: float | None = None) -> None:
        super().__init__(base_layer, r, lora_alpha, lora_dropout=0.0)
        self.magnitude = nn.Parameter(base_layer.weight.detach().norm(dim=1))  # m: (d_out,)

    def _merged_weight(self) -> torch.Tensor:
        direction = self.base_layer.weight + super().get_delta_weight()  # V: (d_out, d_in)
        return self.magnitude[:, None] * direction / direction.norm(dim=1, keepdim=True)  # W'

    def get_delta_weight(self) -> torch.Tensor:
        """``W' − W₀``, shape ``(d_out, d_in)`` (not low-rank: the magnitudes rescale rows)."""
        return self._merged_weight() - self.base_layer.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        return F.linear(x, self._merged_weight(), self.base_layer.bias)  # (*, d_out)


def apply_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    r: int,
    lora_alpha: float | None = None,
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> nn.Module:
    """Freeze ``model`` and wrap each targeted ``nn.Linear`` in a :class:`LoRALinear` (in place).

    A module is targeted when its name equals an entry of ``target_modules`` or ends with
    ``"." + entry`` (PEFT's rule), e.g. ``["fc1", "head"]``. Afterwards only the adapters
    (``lora_A``, ``lora_B``, and DoRA's ``magnitude``) require gradients. Returns ``model``.
    """
    fn = "apply_lora"
    if isinstance(target_modules, str) or not target_modules:
        raise TypeError(
            f"{fn}: expected target_modules to be a non-empty list of names but got {target_modules!r}"
        )
    targets = [
        (name, module) for name, module in model.named_modules()
        if name and any(name == t or name.endswith("." + t) for t in target_modules)
    ]
    if not targets:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"{fn}: expected target_modules {list(target_modules)} to match a module of {names}")
    for name, module in targets:
        if not isinstance(module, nn.Linear):
            raise TypeError(
                f"{fn}: expected target {name!r} to be an nn.Linear but got {type(module).__name__}"
            )
    if use_dora and lora_dropout:
        raise ValueError(f"{fn}: expected lora_dropout=0 with use_dora=True but got {lora_dropout}")
    model.requires_grad_(False)
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if use_dora:
            wrapped = DoRALinear(module, r, lora_alpha)
        else:
            wrapped = LoRALinear(module, r, lora_alpha, lora_dropout)
        setattr(parent, child, wrapped)
    return model


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of parameter entries that require gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- §8.2 experiment


def digits_mlp(sizes: Sequence[int] = (64, 128, 128, 10)) -> nn.Sequential:
    """The small network of the fine-tuning experiment: ``fc1 → ReLU → fc2 → ReLU → head``.

    Named layers, so :func:`apply_lora` can target them by name. ``sizes`` has four entries.
    """
    if len(sizes) != 4:
        raise ValueError(
            f"digits_mlp: expected four sizes (input, hidden, hidden, classes) but got {list(sizes)}"
        )
    d0, d1, d2, d3 = sizes
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(d0, d1), relu1=nn.ReLU(), fc2=nn.Linear(d1, d2), relu2=nn.ReLU(),
        head=nn.Linear(d2, d3),
    ))


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes held during one training step, by kind (see :func:`training_memory`)."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    cuda_peak: int | None = None

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations


def _nbytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


def training_memory(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, lr: float = 1e-3
) -> TrainingMemory:
    """Count the memory of one Adam step on a copy of ``model`` (``model`` is untouched).

    * parameters: every parameter, frozen or not (the forward pass needs them all);
    * gradients: one tensor per *trainable* parameter;
    * optimizer: Adam's two moment estimates (and step counters) per trainable parameter;
    * activations: the tensors autograd saves for the backward pass, counted once per storage
      (parameters it saves are already counted).

    Their sum bounds the peak of a training step from above. On CUDA the measured
    ``torch.cuda.max_memory_allocated`` of the same step is reported as ``cuda_peak``.
    """
    model = copy.deepcopy(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("training_memory: expected a model with trainable parameters but got none")
    optimizer = torch.optim.Adam(trainable, lr=lr)
    counted = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in counted:
            saved[ptr] = _nbytes(t)
        return t

    cuda = inputs.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(inputs.device)
        torch.cuda.reset_peak_memory_stats(inputs.device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
    cuda_peak = torch.cuda.max_memory_allocated(inputs.device) if cuda else None
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    return TrainingMemory(
        parameters=sum(_nbytes(p) for p in model.parameters()),
        gradients=sum(_nbytes(p.grad) for p in trainable if p.grad is not None),
        optimizer=sum(_nbytes(t) for t in state),
        activations=sum(saved.values()),
        cuda_peak=cuda_peak,
    )


@dataclass(frozen=True)
class FinetuneRun:
    """One row of the fine-tuning experiment (§8.2)."""

    name: str
    trainable: int  # parameter entries that receive gradients
    memory: TrainingMemory  # bytes of one training step, by kind
    new_accuracy: float  # test accuracy on the new task (digits 5-9)
    old_accuracy: float  # old task (digits 0-4) through the old head, adapters switched on


@dataclass
class FinetuneExperiment:
    """Everything the notebook shows: the pretrained model, one adapted model per run, ΔW."""

    pretrained: nn.Sequential
    pretrained_accuracy: float  # old-task test accuracy before adaptation
    runs: list[FinetuneRun]
    models: dict[str, nn.Module]
    full_update: dict[str, torch.Tensor]  # ΔW = W_full − W₀ of fc1 and fc2, on the CPU


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


def finetune_experiment(
    ranks: Sequence[int] = (1, 2, 4, 8),
    dora_rank: int | None = 4,
    hidden: int = 128,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> FinetuneExperiment:
    """Pretrain on digits 0-4, then adapt to digits 5-9 in several ways (§8.2).

    The network is :func:`digits_mlp` ``(64, hidden, hidden, 5)`` trained with Adam on
    scikit-learn's bundled 8×8 digits. For the new task every run gets a fresh 5-way head
    (trained in every run) and then adapts the body ``fc1``, ``fc2``:

    * ``full``: every weight trains;
    * ``head only``: the body stays frozen (LoRA with r = 0);
    * ``LoRA r=k``: :func:`apply_lora` on ``fc1`` and ``fc2`` (``lora_alpha = 2r``);
    * ``DoRA r=k``: the same with :class:`DoRALinear`.

    Each run records its trainable parameters, the memory of one training step
    (:func:`training_memory` at ``batch_size``), and test accuracy on the new task and on the
    old task (the adapted body under the *old* head: how far the features moved).
    """
    from la_dl.device import default_device
    from la_dl.mlp import load_digits, train_classifier

    device = torch.device(device) if device is not None else default_device()
    x_tr, y_tr, x_te, y_te = load_digits(device, seed=seed)
    old_tr, old_te = y_tr < 5, y_te < 5
    x_new, y_new = x_tr[~old_tr], y_tr[~old_tr] - 5  # digits 5-9 as classes 0-4
    x_new_te, y_new_te = x_te[~old_te], y_te[~old_te] - 5

    torch.manual_seed(seed)
    pretrained = digits_mlp((64, hidden, hidden, 5)).to(device)
    train_classifier(pretrained, x_tr[old_tr], y_tr[old_tr], epochs, lr, batch_size=batch_size, seed=seed)
    pretrained.requires_grad_(False)

    plans: list[tuple[str, int | None, bool]] = [("full", None, False), ("head only", 0, False)]
    plans += [(f"LoRA r={r}", r, False) for r in ranks]
    if dora_rank is not None:
        plans.append((f"DoRA r={dora_rank}", dora_rank, True))

    runs, models = [], {}
    for name, r, dora in plans:
        model = copy.deepcopy(pretrained)
        torch.manual_seed(seed + 1)  # the same fresh head and adapters' A in every run
        model.head = nn.Linear(hidden, 5).to(device)
        if r is None:
            model.requires_grad_(True)
        elif r > 0:
            apply_lora(model, ["fc1", "fc2"], r, lora_alpha=2 * r, use_dora=dora)
        model.head.requires_grad_(True)
        memory = training_memory(model, x_new[:batch_size], y_new[:batch_size])
        train_classifier(model, x_new, y_new, epochs, lr, batch_size=batch_size, seed=seed)
        old_view = nn.Sequential(*list(model.children())[:-1], pretrained.head)  # old head
        runs.append(FinetuneRun(
            name, trainable_parameter_count(model), memory,
            _accuracy(model, x_new_te, y_new_te), _accuracy(old_view, x_te[old_te], y_te[old_te]),
        ))
        models[name] = model

    full = models["full"]
    full_update = {
        layer: (getattr(full, layer).weight - getattr(pretrained, layer).weight).detach().cpu()
        for layer in ("fc1", "fc2")
    }
    return FinetuneExperiment(
        pretrained, _accuracy(pretrained, x_te[old_te], y_te[old_te]), runs, models, full_update
    )
