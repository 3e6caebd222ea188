"""Lightweight Temporal Attention Encoder (L-TAE) for image time series.

L-TAE (Garnot & Landrieu, "Lightweight Temporal Self-Attention for Classifying Satellite Images Time Series",
2020) collapses a sequence of ``T`` feature vectors into one: every head has a single learned *master query*, attends
over the dates with keys computed from the (normalised, projected) inputs, and averages its own slice of the
channels with those weights; the heads' outputs are concatenated and passed through an MLP. Applied to every pixel
(or token) position independently, it fuses a multi-temporal feature map into a single-date one.

:class:`LTAE` follows the variant PANGAEA's multi-temporal UPerNet uses (``pangaea.decoders.ltae.LTAE2d``, built by
``SegMTUPerNet`` with ``multi_temporal_strategy: ltae``): input GroupNorm, a width-preserving input projection, no
positional encoding, 16 heads with 4-dimensional keys, one ``Linear + BatchNorm1d + ReLU`` MLP layer, dropout and an
output GroupNorm. :func:`convert_pangaea_state_dict` maps a PANGAEA ``LTAE2d`` state dict onto it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["LTAE", "convert_pangaea_state_dict"]


class LTAE(nn.Module):
    """L-TAE over the date axis of ``[N, T, C]`` sequences (one sequence per pixel or token position).

    Args:
        in_channels: channels ``C`` of every date's features; must be divisible by ``n_head``.
        n_head: attention heads (each averages ``d_model / n_head`` channels).
        d_k: width of the keys and of each head's master query.
        d_model: width after the input projection (default ``in_channels``); must be divisible by ``n_head``.
        mlp: widths of the output MLP after the input ``d_model`` (default ``[d_model]``: one layer, width kept).
        dropout: dropout after the MLP.
        attn_dropout: dropout on the attention weights.

    Shape:
        ``forward(x)``: ``x`` is ``[N, T, C]``; returns ``[N, mlp[-1]]`` and, with ``return_attention=True``, also
        the attention weights ``[N, n_head, T]``.
    """

    def __init__(
        self,
        in_channels: int,
        n_head: int = 16,
        d_k: int = 4,
        d_model: int | None = None,
        mlp: Sequence[int] | None = None,
        dropout: float = 0.2,
        attn_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        d_model = in_channels if d_model is None else d_model
        widths = [d_model, *(mlp if mlp is not None else [d_model])]
        for name, value in (("in_channels", in_channels), ("d_model", d_model), ("mlp[-1]", widths[-1])):
            if value % n_head:
                raise ValueError(f"L-TAE: {name}={value} is not divisible by n_head={n_head}; choose another n_head.")
        self.n_head, self.d_k, self.d_model = n_head, d_k, d_model
        self.out_channels = widths[-1]
        # GroupNorm over (channels of a group x dates), per sequence: normalises each pixel's time series.
        self.in_norm = nn.GroupNorm(n_head, in_channels)
        self.in_proj = nn.Linear(in_channels, d_model)
        self.query = nn.Parameter(torch.empty(n_head, d_k))
        self.key = nn.Linear(d_model, n_head * d_k)
        self.attn_drop = nn.Dropout(attn_dropout)
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.BatchNorm1d(widths[i + 1]), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.GroupNorm(n_head, widths[-1])
        # He-style init of the query and key weights, as the L-TAE reference (std sqrt(2 / d_k)).
        std = math.sqrt(2.0 / d_k)
        nn.init.normal_(self.query, std=std)
        nn.init.normal_(self.key.weight, std=std)

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse the dates of ``x`` ``[N, T, C]`` into ``[N, C_out]`` (and the attention ``[N, n_head, T]``)."""
        n, t, _ = x.shape
        h = self.in_proj(self.in_norm(x.transpose(1, 2)).transpose(1, 2))  # [N, T, d_model]
        keys = self.key(h).view(n, t, self.n_head, self.d_k)
        scores = torch.einsum("hk,nthk->nht", self.query, keys) / math.sqrt(self.d_k)
        attn = self.attn_drop(scores.softmax(dim=-1))  # [N, heads, T]
        values = h.view(n, t, self.n_head, self.d_model // self.n_head)
        out = torch.einsum("nht,nthd->nhd", attn, values).reshape(n, self.d_model)  # heads concatenated
        out = self.out_norm(self.dropout(self.mlp(out)))
        return (out, attn) if return_attention else out

    def forward_map(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse a feature-map time series ``[B, C, T, H, W]`` (PANGAEA's layout) into ``[B, C_out, H, W]``.

        With ``return_attention=True`` also returns the attention ``[n_head, B, T, H, W]`` (PANGAEA's layout).
        """
        b, c, t, hh, ww = x.shape
        out, attn = self(x.permute(0, 3, 4, 2, 1).reshape(b * hh * ww, t, c), return_attention=True)
        out = out.view(b, hh, ww, -1).permute(0, 3, 1, 2)
        if not return_attention:
            return out
        return out, attn.view(b, hh, ww, self.n_head, t).permute(3, 0, 4, 1, 2)


def convert_pangaea_state_dict(state_dict: Mapping[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """Map a PANGAEA ``LTAE2d`` state dict (e.g. a ``SegMTUPerNet`` checkpoint's ``tmap.*`` entries with
    ``prefix="tmap."``) onto :class:`LTAE`'s keys; other keys are ignored.

    Raises:
        KeyError: a key of PANGAEA's ``LTAE2d`` this module has no counterpart for (e.g. a positional encoder).
    """
    renames = {"inconv.": "in_proj.", "attention_heads.fc1_k.": "key.", "attention_heads.Q": "query"}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        for old, new in renames.items():
            if name.startswith(old):
                name = new + name[len(old) :]
                break
        else:
            if not name.startswith(("in_norm.", "mlp.", "out_norm.")):
                raise KeyError(f"PANGAEA L-TAE key {key!r} has no counterpart in smarties_terratorch's LTAE.")
        if name == "in_proj.weight":
            value = value.squeeze(-1)  # Conv1d(kernel 1) weight [out, in, 1] -> Linear [out, in]
        out[name] = value
    return out
