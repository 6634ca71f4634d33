"""§5 A Transformer block: attention, a position-wise FFN, residuals and LayerNorm.

An encoder layer is four ingredients in a fixed pattern (§5.1):

* multi-head self-attention (§4.3, :class:`la_dl.attention.MultiHeadAttention`);
* a position-wise feed-forward network ``FFN(x) = W₂ σ(W₁ x + b₁) + b₂`` applied to every
  token on its own (:func:`position_wise_ffn`);
* residual connections ``x + sublayer(x)``, whose Jacobian is ``I + J`` (§5.2);
* layer normalisation (§6, :func:`la_dl.norm.layer_norm`, the same as ``F.layer_norm``).

Post-norm (the original Transformer, torch's default) normalises after each residual sum:
``x = LN(x + SA(x)); x = LN(x + FFN(x))``. Pre-norm normalises the sublayer's input and
leaves the residual path untouched: ``x = x + SA(LN(x)); x = x + FFN(LN(x))``.

A decoder adds a causal mask (:func:`causal_mask`) and cross-attention (queries from the
decoder, keys and values from the encoder). With no recurrence, order enters through
positional encodings (:func:`sinusoidal_positional_encoding`), and a shift by ``k``
positions is one fixed block rotation (:func:`position_shift_matrix`, §5.3).

Shape letters: ``N`` batch, ``L`` sequence length, ``E`` = ``d_model``, ``F`` =
``dim_feedforward``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from la_dl._checks import check_floating, check_positive_int, check_tensor
from la_dl.attention import MultiHeadAttention
from la_dl.norm import layer_norm

__all__ = [
    "causal_mask",
    "sinusoidal_positional_encoding",
    "position_shift_matrix",
    "position_wise_ffn",
    "TransformerEncoderLayer",
    "TransformerEncoder",
]

_ACTIVATIONS = {"relu": torch.relu, "gelu": nn.functional.gelu}


# ----------------------------------------------------------------------------------------
# Masks and positions (§5.2, §5.3)
# ----------------------------------------------------------------------------------------


def causal_mask(
    n: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The additive causal mask of a decoder: ``0`` where ``j <= i``, ``-inf`` above (§5.2).

    Added to the scaled scores before the softmax, ``-inf`` gives the future weight exactly
    zero: token ``i`` attends to tokens ``0..i`` only. Equal to
    ``nn.Transformer.generate_square_subsequent_mask(n)``; being additive, it means the same
    to :func:`la_dl.attention.scaled_dot_product_attention` and to the ``attn_mask`` of
    :class:`~la_dl.attention.MultiHeadAttention` (whose bool masks have opposite meanings).
    """
    check_positive_int("n", "causal_mask", n)
    future = torch.ones(n, n, dtype=torch.bool, device=device).triu(diagonal=1)  # (n, n)
    return torch.zeros(n, n, dtype=dtype, device=device).masked_fill(future, float("-inf"))


def _frequencies(d_model: int, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """ω_i = 1 / 10000^(2i/d) for i = 0 .. ⌈d/2⌉ - 1."""
    two_i = torch.arange(0, d_model, 2, device=device, dtype=torch.float64)  # (⌈d/2⌉,)
    return torch.exp(-math.log(10000.0) * two_i / d_model).to(dtype)


def sinusoidal_positional_encoding(
    n_positions: int,
    d_model: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""The sinusoidal positional encodings of Vaswani et al. (§5.3), shape ``(n_positions, d_model)``.

    .. math::
        \mathrm{PE}_{(pos, 2i)} = \sin(pos\,\omega_i), \quad
        \mathrm{PE}_{(pos, 2i+1)} = \cos(pos\,\omega_i), \quad \omega_i = 10000^{-2i/d}

    Column pairs ``(2i, 2i+1)`` are a point on a circle turning with angular speed ``ω_i``:
    fast in the first columns, slow in the last. (An odd ``d_model`` ends with a sine.)
    """
    fn = "sinusoidal_positional_encoding"
    check_positive_int("n_positions", fn, n_positions)
    check_positive_int("d_model", fn, d_model)
    pos = torch.arange(n_positions, device=device, dtype=torch.float64)[:, None]  # (n, 1)
    angles = pos * _frequencies(d_model, device, torch.float64)  # (n, ⌈d/2⌉)  pos·ω_i
    pe = torch.zeros(n_positions, d_model, device=device, dtype=torch.float64)  # (n, d)
    pe[:, 0::2] = torch.sin(angles)  # even columns
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # odd columns
    return pe.to(dtype)


def position_shift_matrix(
    k: int,
    d_model: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""The matrix ``R_k`` with ``PE(pos + k) = R_k · PE(pos)`` for every ``pos`` (§5.3).

    Block diagonal, one 2×2 rotation per frequency, by the angle addition formulas:

    .. math::
        \begin{pmatrix}\sin((p+k)\omega)\\ \cos((p+k)\omega)\end{pmatrix} =
        \begin{pmatrix}\cos k\omega & \sin k\omega\\ -\sin k\omega & \cos k\omega\end{pmatrix}
        \begin{pmatrix}\sin p\omega\\ \cos p\omega\end{pmatrix}

    ``R_k`` depends on the offset ``k`` only, not on ``pos``: relative position is a fixed
    rotation of feature space. It is orthogonal, and ``R_j R_k = R_{j+k}``. Row vectors
    (the rows of :func:`sinusoidal_positional_encoding`) shift by ``PE @ R_k.T``.
    """
    fn = "position_shift_matrix"
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{fn}: expected k to be an int but got {type(k).__name__}")
    check_positive_int("d_model", fn, d_model)
    if d_model % 2:
        raise ValueError(
            f"{fn}: expected an even d_model (sine/cosine pairs) but got d_model={d_model}"
        )
    angle = k * _frequencies(d_model, device, torch.float64)  # (d/2,)  k·ω_i
    cos, sin = torch.cos(angle), torch.sin(angle)  # (d/2,)
    blocks = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks).to(dtype)  # (d, d)


# ----------------------------------------------------------------------------------------
# The sublayers as plain functions
# ----------------------------------------------------------------------------------------


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x Wᵀ + b (§1): ``weight`` is ``(out, in)`` as in ``nn.Linear``."""
    out = x @ weight.transpose(0, 1)  # (..., out)
    return out if bias is None else out + bias


def position_wise_ffn(
    input: torch.Tensor,
    weight1: torch.Tensor,
    bias1: torch.Tensor | None,
    weight2: torch.Tensor,
    bias2: torch.Tensor | None,
    activation: str = "relu",
) -> torch.Tensor:
    r"""``FFN(x) = W₂ σ(W₁ x + b₁) + b₂`` on every token independently (§5.1).

    ``W₁`` is ``(F, E)`` and expands each token to ``F`` features (typically ``F = 4E``),
    ``W₂`` is ``(E, F)`` and projects back. The same two matrices act on each row of an
    ``(N, L, E)`` input: no token sees another here; mixing across tokens is attention's job.
    """
    fn = "position_wise_ffn"
    check_tensor("input", fn, input)
    check_floating("input", fn, input)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{fn}: expected activation 'relu' or 'gelu' but got {activation!r}")
    E = input.shape[-1]
    for name, w in (("weight1", weight1), ("weight2", weight2)):
        check_tensor(name, fn, w)
        if w.ndim != 2:
            raise ValueError(f"{fn}: expected {name} to be 2-D but got shape {tuple(w.shape)}")
    if weight1.shape[1] != E or weight2.shape != (E, weight1.shape[0]):
        raise ValueError(
            f"{fn}: expected weight1 of shape (F, {E}) and weight2 of shape ({E}, F) but got "
            f"{tuple(weight1.shape)} and {tuple(weight2.shape)}"
        )
    hidden = _ACTIVATIONS[activation](_linear(input, weight1, bias1))  # (..., F)  expand
    return _linear(hidden, weight2, bias2)  # (..., E)  project back


# ----------------------------------------------------------------------------------------
# Modules that load torch's state_dicts
# ----------------------------------------------------------------------------------------


class _LayerNorm(nn.Module):
    """Holds ``weight`` (γ) and ``bias`` (β) under nn.LayerNorm's names.

    Computes :func:`la_dl.norm.layer_norm` (§6.1) over the last dim, ``d_model``.
    """

    def __init__(self, d_model: int, eps: float, bias: bool, **factory: object) -> None:
        super().__init__()
        self.normalized_shape, self.eps = (d_model,), eps
        self.weight = nn.Parameter(torch.ones(d_model, **factory))  # type: ignore[arg-type]
        self.bias = nn.Parameter(torch.zeros(d_model, **factory)) if bias else None  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class TransformerEncoderLayer(nn.Module):
    """One encoder block (§5.1), a drop-in for :class:`torch.nn.TransformerEncoderLayer`.

    Same constructor arguments and parameter names (``self_attn``, ``linear1``,
    ``linear2``, ``norm1``, ``norm2``), so ``load_state_dict`` of a torch layer works.
    ``norm_first=False`` is post-norm, ``True`` pre-norm::

        post-norm:  x = LN₁(x + SA(x));   x = LN₂(x + FFN(x))
        pre-norm:   x = x + SA(LN₁(x));   x = x + FFN(LN₂(x))

    ``src_mask`` and ``src_key_padding_mask`` follow ``nn.MultiheadAttention`` (a bool
    ``True`` blocks; a float mask is added). ``is_causal=True`` without a ``src_mask`` uses
    :func:`causal_mask` (torch requires the mask itself).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        fn = "TransformerEncoderLayer"
        check_positive_int("dim_feedforward", fn, dim_feedforward)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{fn}: expected activation 'relu' or 'gelu' but got {activation!r}")
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=True, **factory)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **factory)  # W₁ (F, E)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **factory)  # W₂ (E, F)
        self.norm1 = _LayerNorm(d_model, layer_norm_eps, bias, **factory)
        self.norm2 = _LayerNorm(d_model, layer_norm_eps, bias, **factory)
        self.dropout = nn.Dropout(dropout)  # after the FFN's activation
        self.dropout1 = nn.Dropout(dropout)  # on the attention sublayer's output
        self.dropout2 = nn.Dropout(dropout)  # on the FFN sublayer's output
        self.activation, self.batch_first, self.norm_first = activation, batch_first, norm_first

    def _sa_block(self, x: torch.Tensor, attn_mask: torch.Tensor | None,
                  key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """SA(x): self-attention, queries, keys and values all from x."""
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False)  # (N, L, E)
        return self.dropout1(out)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        """FFN(x) = W₂ dropout(σ(W₁x + b₁)) + b₂, token by token."""
        sigma = _ACTIVATIONS[self.activation]
        hidden = sigma(_linear(x, self.linear1.weight, self.linear1.bias))  # (N, L, F)
        out = _linear(self.dropout(hidden), self.linear2.weight, self.linear2.bias)  # (N, L, E)
        return self.dropout2(out)

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """``(N, L, E)`` if ``batch_first`` else ``(L, N, E)`` in, the same shape out."""
        fn = "TransformerEncoderLayer"
        check_tensor("src", fn, src)
        E = self.self_attn.embed_dim
        if src.ndim != 3 or src.shape[-1] != E:
            raise ValueError(
                f"{fn}: expected src of shape (N, L, {E}) or (L, N, {E}) but got {tuple(src.shape)}"
            )
        x = src if self.batch_first else src.transpose(0, 1)  # (N, L, E)
        if is_causal and src_mask is None:
            src_mask = causal_mask(x.shape[1], device=x.device, dtype=x.dtype)  # (L, L)
        if self.norm_first:  # pre-norm: the residual path x -> x + ... is never normalised
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask)  # (N, L, E)
            x = x + self._ff_block(self.norm2(x))  # (N, L, E)
        else:  # post-norm: normalise each residual sum
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask))  # (N, L, E)
            x = self.norm2(x + self._ff_block(x))  # (N, L, E)
        return x if self.batch_first else x.transpose(0, 1)


class TransformerEncoder(nn.Module):
    """``num_layers`` copies of an encoder layer, then an optional final norm.

    A drop-in for :class:`torch.nn.TransformerEncoder` (parameters under ``layers.0.``,
    ``layers.1.``, …, and ``norm.``), so the state of a torch encoder loads. Pre-norm
    stacks usually end with a final LayerNorm: pass ``norm``, for example
    ``TransformerEncoderLayer(...).norm1`` copied, or any module mapping ``E`` to ``E``.
    """

    def __init__(
        self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: nn.Module | None = None
    ) -> None:
        super().__init__()
        fn = "TransformerEncoder"
        if not isinstance(encoder_layer, TransformerEncoderLayer):
            raise TypeError(
                f"{fn}: expected encoder_layer to be a la_dl TransformerEncoderLayer but got "
                f"{type(encoder_layer).__name__}"
            )
        check_positive_int("num_layers", fn, num_layers)
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers, self.norm = num_layers, norm

    def forward(
        self,
        src: torch.Tensor,
        mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """The layers in order, each fed the previous one's output; same shapes as a layer."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal)
        return x if self.norm is None else self.norm(x)
