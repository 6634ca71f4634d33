"""What each operation of the chapter costs: FLOPs, bytes moved, arithmetic intensity, time.

Two halves, one convention (a multiply-add is 2 FLOPs, as in ``torch.utils.flop_counter``):

**A Transformer encoder, component by component** (§4, §5, §6; the BERT-tiny exercise).
:class:`EncoderConfig` describes a stack of post-norm encoder layers (BERT-tiny is
:data:`BERT_TINY`: 2 layers, ``d_model`` 128, 2 heads, FFN 512) and :func:`encoder_flops`
counts, for a batch of ``N`` sequences of length ``L`` (``E`` = ``d_model``, ``F`` =
``dim_feedforward``, ``H`` heads of size ``D = E/H``), per layer:

========================  ==========================  ==========================================
component                 matmul FLOPs                other FLOPs (convention below)
========================  ==========================  ==========================================
``attention_projections``  ``4 · 2NLE²`` (Wᵠ,Wᴷ,Wⱽ,Wᴼ)  biases: ``4NLE``
``attention_scores``       ``2NHL²D = 2NL²E`` (QKᵀ)     scale ``NHL²``, softmax ``5NHL²``
``attention_values``       ``2NL²E`` (softmax · V)      –
``ffn``                    ``2 · 2NLEF`` (W₁, W₂)       biases ``NL(F+E)``, activation ``NLF``
``norm``                   –                           ``2 · NL · norm_flops(E)`` (two per layer)
``residual``               –                           ``2NLE`` (two sums per layer)
========================  ==========================  ==========================================

**What ``FlopCounterMode`` counts, and what it does not.** It counts matrix products only
(``mm``, ``addmm``, ``bmm``, convolutions and the fused attention kernels of CUDA), 2 FLOPs
per multiply-add; bias additions inside ``addmm`` are *not* counted, nor is any elementwise
op or reduction (scale, softmax, activation, residual, LayerNorm). So the ``matmul`` column
above, summed, is exactly what it reports (:func:`matmul_flops`, tested for equality). Two
blind spots of torch's own layer, where the counter sees less than the work done:

* ``nn.TransformerEncoderLayer`` in ``eval()`` under ``torch.no_grad()`` takes a fused fast
  path (``aten._transformer_encoder_layer_fwd``) that the counter does not know: it reports 0;
* on a CPU, ``F.scaled_dot_product_attention`` runs ``_scaled_dot_product_flash_attention_for_cpu``,
  which has no FLOP formula: the ``4NL²E`` of the attention core go missing. Under
  ``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)`` the core is plain ``bmm`` s and counted.

The ``other`` column is a convention (torch has no official one): one FLOP per elementwise
result, a reduction over ``d`` values costs ``d``, a softmax over a row of ``S`` costs ``5S``
(max, subtract, exp, sum, divide), any activation 1 per element; normalisation follows
:func:`la_dl.norm.norm_flops`. Embeddings, masks, dropout and a final norm are not counted.

**Any operation of the chapter as a roofline point** (the cost appendix). :class:`OpCost`
holds an operation's FLOPs, the bytes its algorithm moves and the compulsory bytes any
implementation must move (read every input once, write every output once); FLOPs per byte,
the arithmetic intensity, says whether the device's arithmetic or its memory bandwidth
bounds it. :func:`median_time` measures an operation
with ``torch.utils.benchmark``: the benchmark suite (``python -m bench``) and the appendix
notebook both use these functions, so the book shows the numbers the benchmarks check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from la_dl._checks import check_positive_int
from la_dl.norm import norm_flops

__all__ = [
    "EncoderConfig",
    "BERT_TINY",
    "Flops",
    "COMPONENTS",
    "GROUPS",
    "encoder_flops",
    "group_flops",
    "matmul_flops",
    "total_flops",
    "count_matmul_flops",
    "torch_encoder",
    "OpCost",
    "linear_cost",
    "mlp_backward_cost",
    "conv2d_cost",
    "attention_cost",
    "norm_cost",
    "median_time",
    "copy_bandwidth",
    "Operation",
    "Measurement",
    "chapter_operations",
    "measure",
    "measure_attention",
]

COMPONENTS = (
    "attention_projections",
    "attention_scores",
    "attention_values",
    "ffn",
    "norm",
    "residual",
)
# The three-way split of the BERT-tiny exercise: attention, FFN, normalisation (+ residual sums).
GROUPS = {
    "attention": ("attention_projections", "attention_scores", "attention_values"),
    "ffn": ("ffn",),
    "norm": ("norm",),
    "residual": ("residual",),
}
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide


# ----------------------------------------------------------------------------------------
# A Transformer encoder, component by component
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderConfig:
    """A stack of ``num_layers`` encoder layers as in ``nn.TransformerEncoderLayer`` (§5.1).

    ``norm`` is ``"layer"`` (LayerNorm, as in BERT) or ``"rms"`` (RMSNorm, §6.2); it only
    changes the ``norm`` component of :func:`encoder_flops`.
    """

    num_layers: int = 2
    d_model: int = 128
    nhead: int = 2
    dim_feedforward: int = 512
    norm: str = "layer"

    def __post_init__(self) -> None:
        fn = "EncoderConfig"
        for name in ("num_layers", "d_model", "nhead", "dim_feedforward"):
            check_positive_int(name, fn, getattr(self, name))
        if self.d_model % self.nhead:
            raise ValueError(
                f"{fn}: expected d_model divisible by nhead but got d_model={self.d_model}, "
                f"nhead={self.nhead}"
            )
        if self.norm not in ("layer", "rms"):
            raise ValueError(f"{fn}: expected norm 'layer' or 'rms' but got {self.norm!r}")

    @property
    def head_dim(self) -> int:
        """``D = d_model / nhead``, the size of each head's subspace (§4.3)."""
        return self.d_model // self.nhead


BERT_TINY = EncoderConfig(num_layers=2, d_model=128, nhead=2, dim_feedforward=512)


@dataclass(frozen=True)
class Flops:
    """FLOPs of one component, split by what ``FlopCounterMode`` can see.

    ``matmul``: matrix products (what ``FlopCounterMode`` counts, 2 per multiply-add);
    ``other``: elementwise ops and reductions, by the convention of this module's docstring.
    """

    matmul: int
    other: int

    @property
    def total(self) -> int:
        return self.matmul + self.other

    def __add__(self, other: Flops) -> Flops:
        return Flops(self.matmul + other.matmul, self.other + other.other)

    def __mul__(self, k: int) -> Flops:
        return Flops(self.matmul * k, self.other * k)

    __rmul__ = __mul__


def _check_config(fn: str, config: object) -> EncoderConfig:
    if not isinstance(config, EncoderConfig):
        raise TypeError(f"{fn}: expected config to be an EncoderConfig but got {type(config).__name__}")
    return config


def encoder_flops(config: EncoderConfig, seq_len: int, batch: int = 1) -> dict[str, Flops]:
    """FLOPs of a forward pass of the whole stack, per component (see the module docstring).

    ``seq_len`` is ``L`` and ``batch`` is ``N``: the input is ``(N, L, d_model)``. Returns a
    dict ordered as :data:`COMPONENTS`, each value summed over the ``num_layers`` layers.
    Example (BERT-tiny, one sequence of 128 tokens)::

        >>> flops = encoder_flops(BERT_TINY, seq_len=128)
        >>> flops["ffn"].matmul          # 2 layers · 2 GEMMs · 2·128·128·512
        67108864
    """
    fn = "encoder_flops"
    _check_config(fn, config)
    L = check_positive_int("seq_len", fn, seq_len)
    N = check_positive_int("batch", fn, batch)
    E, H, F = config.d_model, config.nhead, config.dim_feedforward
    tokens = N * L  # every row of the (N·L, E) activation matrix
    scores = N * H * L * L  # entries of the (N, H, L, L) score tensor
    per_layer = {
        # Q, K, V and the output projection: four (N·L, E) x (E, E) GEMMs, plus their biases.
        "attention_projections": Flops(4 * 2 * tokens * E * E, 4 * tokens * E),
        # QKᵀ per head: (L, D) x (D, L), H·D = E; then ÷√d_k and the row-wise softmax.
        "attention_scores": Flops(2 * N * L * L * E, scores + SOFTMAX_FLOPS_PER_ELEMENT * scores),
        # softmax(·) V per head: (L, L) x (L, D).
        "attention_values": Flops(2 * N * L * L * E, 0),
        # W₁ (F, E) expands, W₂ (E, F) projects back; biases F + E, activation F per token.
        "ffn": Flops(2 * 2 * tokens * E * F, tokens * (F + E) + tokens * F),
        # Two normalisations per layer (after attention, after the FFN), one row per token.
        "norm": Flops(0, 2 * tokens * sum(norm_flops(config.norm, E).values())),
        # x + SA(x) and x + FFN(x).
        "residual": Flops(0, 2 * tokens * E),
    }
    return {name: per_layer[name] * config.num_layers for name in COMPONENTS}


def group_flops(flops: dict[str, Flops]) -> dict[str, Flops]:
    """Sum :func:`encoder_flops`' components into :data:`GROUPS` (attention, ffn, norm, residual)."""
    missing = [name for name in COMPONENTS if name not in flops]
    if missing:
        raise ValueError(f"group_flops: expected the components {COMPONENTS} but got {tuple(flops)}")
    return {
        group: sum((flops[name] for name in names), Flops(0, 0)) for group, names in GROUPS.items()
    }


def matmul_flops(config: EncoderConfig, seq_len: int, batch: int = 1, backward: bool = False) -> int:
    """The matmul FLOPs of the stack: exactly what ``FlopCounterMode`` reports for it.

    Forward: ``num_layers · (8NLE² + 4NL²E + 4NLEF)``. With ``backward=True`` the backward
    pass is added: every product ``Y = AB`` costs two more of the same size (``∂A = ∂Y Bᵀ``,
    ``∂B = Aᵀ ∂Y``, §2.2), so the total is 3x the forward, provided the input requires grad
    (otherwise the first layer's input gradient is never formed).
    """
    forward = sum(c.matmul for c in encoder_flops(config, seq_len, batch).values())
    return 3 * forward if backward else forward


def total_flops(config: EncoderConfig, seq_len: int, batch: int = 1) -> int:
    """All forward FLOPs of the stack: matmuls plus the elementwise convention."""
    return sum(c.total for c in encoder_flops(config, seq_len, batch).values())


def count_matmul_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run ``fn(*args, **kwargs)`` under ``FlopCounterMode`` and return its total (matmuls only).

    A thin wrapper that reads nothing else: compare it with :func:`matmul_flops`. For
    ``nn.TransformerEncoder`` on a CPU, call it inside
    ``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)`` (see the module docstring).
    """
    if not callable(fn):
        raise TypeError(f"count_matmul_flops: expected fn to be callable but got {type(fn).__name__}")
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def torch_encoder(
    config: EncoderConfig,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.TransformerEncoder:
    """``nn.TransformerEncoder`` of ``config`` (post-norm, ReLU, no dropout, ``batch_first``).

    Only ``norm="layer"`` exists in torch's layer; an RMSNorm config is refused.
    """
    fn = "torch_encoder"
    _check_config(fn, config)
    if config.norm != "layer":
        raise ValueError(
            f"{fn}: expected norm 'layer' (torch's layer has no RMSNorm) but got {config.norm!r}"
        )
    layer = nn.TransformerEncoderLayer(
        config.d_model, config.nhead, config.dim_feedforward, dropout=0.0, batch_first=True,
        device=device, dtype=dtype,
    )
    return nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)


# ----------------------------------------------------------------------------------------
# Any operation as a roofline point: FLOPs, bytes moved, arithmetic intensity
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpCost:
    """One operation at one size: its shapes, FLOPs and the bytes it must at least move."""

    name: str
    shapes: str  # e.g. "(256, 512) x (512, 512)ᵀ"
    flops: int
    bytes_moved: int  # by the algorithm named (im2col, naive attention store intermediates)
    min_bytes: int | None = None  # compulsory traffic of the operation, if less than bytes_moved

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte: high means compute-bound, low memory-bound."""
        return self.flops / self.bytes_moved

    @property
    def compulsory_bytes(self) -> int:
        """Inputs read once, outputs written once: what *any* implementation must move."""
        return self.bytes_moved if self.min_bytes is None else self.min_bytes

    @property
    def max_intensity(self) -> float:
        """FLOPs over compulsory bytes: the intensity no implementation can exceed (the roofline's x)."""
        return self.flops / self.compulsory_bytes


def _sizes(fn: str, **sizes: object) -> None:
    for name, value in sizes.items():
        check_positive_int(name, fn, value)


def linear_cost(batch: int, d_in: int, d_out: int, element_size: int = 4) -> OpCost:
    """``Y = X Wᵀ``, ``X: (B, d_in)``, ``W: (d_out, d_in)`` (§1.3): ``2 B d_in d_out`` FLOPs.

    Bytes: read ``X`` and ``W``, write ``Y``. At ``B = 1`` the intensity is below 0.5 FLOP/byte
    for any width (a matrix-vector product is memory-bound); it grows like ``B`` until ``W``'s
    bytes no longer dominate.
    """
    _sizes("linear_cost", batch=batch, d_in=d_in, d_out=d_out, element_size=element_size)
    flops = 2 * batch * d_in * d_out
    moved = element_size * (batch * d_in + d_out * d_in + batch * d_out)
    return OpCost("linear", f"({batch}, {d_in}) x ({d_out}, {d_in})ᵀ", flops, moved)


def mlp_backward_cost(
    batch: int, sizes: tuple[int, ...], element_size: int = 4, input_grad: bool = False
) -> OpCost:
    """The backward pass of an MLP with layer widths ``sizes`` (§2.2), matmuls only.

    Per layer ``d_in → d_out``: ``∂W = Δᵀ X`` and ``∂X = Δ W`` are two GEMMs of
    ``2 B d_in d_out`` FLOPs each. The first layer's ``∂X`` is only formed with
    ``input_grad=True`` (autograd skips it when the input does not require grad).
    Bytes: read ``Δ``, ``X``, ``W``; write ``∂W`` and ``∂X``.
    """
    fn = "mlp_backward_cost"
    if len(sizes) < 2:
        raise ValueError(f"{fn}: expected at least two layer widths but got {tuple(sizes)}")
    _sizes(fn, batch=batch, element_size=element_size, **{f"sizes[{i}]": s for i, s in enumerate(sizes)})
    flops = moved = 0
    for layer, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        first = layer == 0 and not input_grad
        flops += 2 * batch * d_in * d_out * (1 if first else 2)
        reads = batch * d_out + batch * d_in + d_out * d_in  # Δ, X, W
        writes = d_out * d_in + (0 if first else batch * d_in)  # ∂W, ∂X
        moved += element_size * (reads + writes)
    return OpCost("mlp backward", f"B={batch}, widths {tuple(sizes)}", flops, moved)


def conv2d_cost(
    batch: int,
    in_channels: int,
    size: int,
    out_channels: int,
    kernel_size: int,
    padding: int = 0,
    stride: int = 1,
    element_size: int = 4,
    im2col: bool = False,
) -> OpCost:
    """A square ``K x K`` convolution of an ``(N, C_in, S, S)`` input (§3.2).

    FLOPs ``2 N C_out S_out² C_in K²`` (the GEMM ``W_row X_col``). Bytes: input, weight and
    output once; with ``im2col=True`` also writing and reading back ``X_col``, about ``K²``
    times the input: the memory the im2col route pays for its one big GEMM.
    """
    fn = "conv2d_cost"
    _sizes(fn, batch=batch, in_channels=in_channels, size=size, out_channels=out_channels,
           kernel_size=kernel_size, stride=stride, element_size=element_size)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{fn}: expected padding to be an int >= 0 but got {padding!r}")
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(
            f"{fn}: expected the kernel ({kernel_size}) to fit the padded input ({size} + 2·{padding}) "
            f"but got an output of size {out}"
        )
    patch = in_channels * kernel_size**2  # one column of X_col
    flops = 2 * batch * out_channels * out * out * patch
    moved = batch * in_channels * size * size + out_channels * patch + batch * out_channels * out * out
    compulsory = moved
    if im2col:
        moved += 2 * batch * patch * out * out  # write X_col, read it back for the GEMM
    K = kernel_size
    shapes = f"({batch}, {in_channels}, {size}, {size}) * ({out_channels}, {in_channels}, {K}, {K})"
    return OpCost("conv2d (im2col)" if im2col else "conv2d", shapes, flops, element_size * moved,
                  element_size * compulsory)


def attention_cost(
    seq_len: int,
    head_dim: int = 64,
    heads: int = 8,
    batch: int = 1,
    element_size: int = 4,
    tiled: bool = False,
    block_size: int = 128,
) -> OpCost:
    """``softmax(QKᵀ/√d_k) V`` for ``Q, K, V: (N, H, n, d)`` (§4.2, §4.4).

    FLOPs: ``2·2 N H n² d`` for the two matmuls plus ``6 N H n²`` for the scale and the
    softmax. Bytes: the naive four steps write and read the ``(N, H, n, n)`` matrix three
    times over (scores, scaled, weights); the tiled form never stores it but reads ``K``
    and ``V`` once per block of ``block_size`` queries. Naive traffic grows like ``n²``,
    tiled like ``n²d/block_size``, and its *memory* only like ``n``.
    """
    fn = "attention_cost"
    _sizes(fn, seq_len=seq_len, head_dim=head_dim, heads=heads, batch=batch,
           element_size=element_size, block_size=block_size)
    n, d, NH = seq_len, head_dim, batch * heads
    flops = NH * (2 * 2 * n * n * d + (1 + SOFTMAX_FLOPS_PER_ELEMENT) * n * n)
    qkvo = 4 * NH * n * d
    if tiled:
        blocks = -(-n // block_size)  # ⌈n / block⌉ query blocks, each streams K and V
        moved = qkvo + 2 * NH * n * d * (blocks - 1)
    else:
        moved = qkvo + 3 * 2 * NH * n * n  # each of the three n×n steps written, then read
    name = "attention (tiled)" if tiled else "attention (naive)"
    return OpCost(name, f"({batch}, {heads}, {n}, {d}) x3", flops, element_size * moved, element_size * qkvo)


def norm_cost(kind: str, rows: int, d: int, element_size: int = 4) -> OpCost:
    """LayerNorm or RMSNorm of a ``(rows, d)`` matrix with affine parameters (§6).

    FLOPs: ``rows ·`` :func:`la_dl.norm.norm_flops`. Bytes: read ``x`` and the parameters
    (``γ, β`` or ``γ``), write ``y``. Intensity is a few FLOPs per byte at any size: a
    normalisation is always memory-bound, which is why the fused built-ins win.
    """
    fn = "norm_cost"
    if kind not in ("layer", "rms"):
        raise ValueError(f"{fn}: expected kind 'layer' or 'rms' but got {kind!r}")
    _sizes(fn, rows=rows, d=d, element_size=element_size)
    flops = rows * sum(norm_flops(kind, d).values())
    params = 2 * d if kind == "layer" else d
    moved = element_size * (2 * rows * d + params)
    return OpCost(f"{kind}_norm", f"({rows}, {d})", flops, moved)


# ----------------------------------------------------------------------------------------
# Measured time
# ----------------------------------------------------------------------------------------


def median_time(fn: Callable[[], object], min_run_time: float = 0.2, num_threads: int | None = None) -> float:
    """Median seconds per call of ``fn()``, measured by ``torch.utils.benchmark``.

    ``blocked_autorange`` warms up, picks a number of calls per block so that the clock's
    resolution does not matter, synchronises CUDA, and runs blocks for ``min_run_time``
    seconds; the median over blocks shrugs off the bursts of a shared machine.
    """
    if not callable(fn):
        raise TypeError(f"median_time: expected fn to be callable but got {type(fn).__name__}")
    if not min_run_time > 0:
        raise ValueError(f"median_time: expected min_run_time > 0 but got {min_run_time!r}")
    threads = num_threads if num_threads is not None else torch.get_num_threads()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def copy_bandwidth(device: torch.device | str, numel: int = 2**24, min_run_time: float = 0.1) -> float:
    """Measured memory bandwidth of ``device`` in GB/s: a copy reads and writes ``4·numel`` bytes.

    ``numel`` float32 values (64 MiB by default) are far larger than any CPU cache, so the
    copy streams from and to main memory: the slope of the roofline's memory-bound side.
    """
    check_positive_int("numel", "copy_bandwidth", numel)
    src = torch.empty(numel, device=device)
    dst = torch.empty_like(src)
    seconds = median_time(lambda: dst.copy_(src), min_run_time=min_run_time)
    return 2 * 4 * numel / seconds / 1e9


# ----------------------------------------------------------------------------------------
# The chapter's operations, ready to run (the cost appendix)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the chapter at one size: its cost, its la_dl call and torch's."""

    section: str  # "§1", ...
    cost: OpCost
    la_dl: Callable[[], object]
    builtin: Callable[[], object]


@dataclass(frozen=True)
class Measurement:
    """An :class:`Operation` timed: medians, and the rates they imply."""

    section: str
    cost: OpCost
    seconds: float  # la_dl, median per call
    builtin_seconds: float  # the torch built-in, median per call

    @property
    def gflops(self) -> float:
        """Achieved 10⁹ FLOP/s of la_dl's implementation."""
        return self.cost.flops / self.seconds / 1e9

    @property
    def gbytes_per_second(self) -> float:
        """Achieved 10⁹ bytes/s, counting only the minimum traffic of :class:`OpCost`."""
        return self.cost.bytes_moved / self.seconds / 1e9

    @property
    def ratio(self) -> float:
        """la_dl's time over the built-in's."""
        return self.seconds / self.builtin_seconds


def chapter_operations(
    device: torch.device | str | None = None, scale: int = 1, seed: int = 0
) -> list[Operation]:
    """The chapter's operations on random float32 inputs, in section order.

    ``scale`` multiplies the batch-like dimension of each (rows, batch, sequences), so a
    notebook can grow the problems on an accelerator. Each :class:`Operation` pairs the
    la_dl implementation with the torch built-in on the same tensors.
    """
    # Imported here: the sections' modules import nothing from this one, and stay optional.
    from la_dl import attention, backprop, conv, mlp, norm

    check_positive_int("scale", "chapter_operations", scale)
    device = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device)

    ops = []
    d = 1024
    w = randn(d, d) / d**0.5  # (d_out, d_in)
    for B in (1, 256 * scale):
        x = randn(B, d)  # (B, d_in)
        ops.append(Operation("§1", linear_cost(B, d, d), lambda x=x: mlp.linear(x, w),
                             lambda x=x: torch.nn.functional.linear(x, w)))

    B, sizes = 256 * scale, (512, 512, 512, 10)
    weights = [randn(o, i) / i**0.5 for i, o in zip(sizes[:-1], sizes[1:])]  # (H_out, H_in) each
    x, grad_out = randn(B, sizes[0]), randn(B, sizes[-1])  # (B, H_0), (B, H_L)
    _, cache = backprop.mlp_forward_with_cache(x, weights, None, "relu")  # la_dl computes ∂X too,
    leaves = [t.clone().requires_grad_() for t in (x, *weights)]  # so autograd is asked for it
    graph_out, _ = backprop.mlp_forward_with_cache(leaves[0], leaves[1:], None, "relu")
    ops.append(Operation(
        "§2", mlp_backward_cost(B, sizes, input_grad=True),
        lambda: backprop.mlp_backward(grad_out, cache),
        lambda: torch.autograd.grad(graph_out, leaves, grad_out, retain_graph=True),
    ))

    N, C, S = 4 * scale, 64, 28
    image, k = randn(N, C, S, S), randn(C, C, 3, 3) / (9 * C) ** 0.5  # (N, C, S, S), (C_out, C_in, K, K)
    ops.append(Operation("§3", conv2d_cost(N, C, S, C, 3, padding=1, im2col=True),
                         lambda: conv.conv2d(image, k, padding=1),
                         lambda: torch.nn.functional.conv2d(image, k, padding=1)))

    n, H, D = 1024, 4, 64
    q, kk, v = (randn(scale, H, n, D) for _ in range(3))  # (N, H, n, D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    ops.append(Operation("§4", attention_cost(n, D, H, scale),
                         lambda: attention.scaled_dot_product_attention(q, kk, v),
                         lambda: sdpa(q, kk, v)))
    ops.append(Operation("§4", attention_cost(n, D, H, scale, tiled=True),
                         lambda: attention.tiled_attention(q, kk, v, block_size=128),
                         lambda: sdpa(q, kk, v)))

    rows, E = 2048 * scale, 1024
    h, gamma, beta = randn(rows, E), randn(E), randn(E)  # (rows, E), (E,), (E,)
    ops.append(Operation("§6", norm_cost("layer", rows, E),
                         lambda: norm.layer_norm(h, (E,), gamma, beta),
                         lambda: torch.nn.functional.layer_norm(h, (E,), gamma, beta)))
    ops.append(Operation("§6", norm_cost("rms", rows, E),
                         lambda: norm.rms_norm(h, (E,), gamma, eps=1e-6),
                         lambda: torch.nn.functional.rms_norm(h, (E,), gamma, eps=1e-6)))
    return ops


def measure(operations: list[Operation], min_run_time: float = 0.05) -> list[Measurement]:
    """Time each operation's la_dl call and built-in with :func:`median_time`."""
    with torch.no_grad():
        return [
            Measurement(op.section, op.cost, median_time(op.la_dl, min_run_time),
                        median_time(op.builtin, min_run_time))
            for op in operations
        ]


def measure_attention(
    sizes: Sequence[int],
    device: torch.device | str | None = None,
    heads: int = 4,
    head_dim: int = 64,
    block_size: int = 128,
    min_run_time: float = 0.05,
) -> dict[str, list[tuple[float, int | None]]]:
    """Time and peak memory of naive, tiled and built-in attention for each ``n`` in ``sizes``.

    Returns ``{"naive": [(seconds, peak bytes), ...], "tiled": [...], "torch": [...]}``, one
    pair per size: medians from :func:`median_time`, peaks from
    :func:`la_dl.measure.peak_memory` (``None`` where the device cannot tell).
    """
    from la_dl import attention, measure

    device = torch.device(device) if device is not None else torch.device("cpu")
    forms: dict[str, list[tuple[float, int | None]]] = {"naive": [], "tiled": [], "torch": []}
    g = torch.Generator().manual_seed(0)
    for n in sizes:
        check_positive_int("n", "measure_attention", n)
        qkv = [torch.randn(1, heads, n, head_dim, generator=g).to(device) for _ in range(3)]  # (1, H, n, D)
        calls = {  # (the tensors bound now: the lambdas run within this iteration only)
            "naive": lambda qkv=qkv: attention.scaled_dot_product_attention(*qkv),
            "tiled": lambda qkv=qkv: attention.tiled_attention(*qkv, block_size=block_size),
            "torch": lambda qkv=qkv: torch.nn.functional.scaled_dot_product_attention(*qkv),
        }
        with torch.no_grad():
            for name, call in calls.items():
                forms[name].append((median_time(call, min_run_time), measure.peak_memory(call, device)))
    return forms
