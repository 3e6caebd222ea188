"""Spectrum-aware patch embedding of SMARTIES.

The released model projects every band's 16x16 patch with the ``Linear`` of its spectral range and takes
``12 x mean`` over bands. That map is linear and fixed once the band list is known, so

    token = (12 / C) * sum_c W_c p_c + (12 / C) * sum_c b_c,   W_c = sum_k M[c, k] W_k

where ``M`` mixes the learned projections per band (one-hot, or two weights for averaged ranges). We fold
``M`` into one ``[D, C*16*16]`` matrix and run a single GEMM over the patchified input: the cost of timm's
patch embedding, no ``[B, h, w, C, D]`` buffer, no ``unique()`` loop, no data-dependent shapes. (A GEMM
rather than ``conv2d``: on CPU it is faster here and its fp32 rounding is closer to the per-band formula.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..spectrum import NUM_LEARNED_RANGES, ResolvedBands

__all__ = ["SpectralProjection", "SpectrumAwarePatchEmbed", "mixing_matrix"]


def mixing_matrix(bands: ResolvedBands) -> tuple[list[int], torch.Tensor]:
    """The learned projections a band set uses and its ``[C, U]`` mixing matrix over them (float64)."""
    used = sorted({k for band in bands for k, _ in band.sources})
    col = {k: j for j, k in enumerate(used)}
    mix = torch.zeros(len(bands), len(used), dtype=torch.float64)
    for c, band in enumerate(bands):
        for k, w in band.sources:
            mix[c, col[k]] += w
    return used, mix


class SpectralProjection(nn.Module):
    """``Linear(patch_size**2 -> D)`` of one spectral range (state-dict key ``...{k}.proj``)."""

    def __init__(self, patch_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(patch_dim, embed_dim)


class SpectrumAwarePatchEmbed(nn.Module):
    """Per-range patch projections fused into one convolution for a given band set.

    Args:
        patch_size: patch side in pixels.
        embed_dim: token width D.
        num_projections: learned ranges (17 in the released model).
        projection_scale: the released constant 12 (the maximum number of band slots), applied whatever C is.
    """

    def __init__(
        self,
        patch_size: int = 16,
        embed_dim: int = 768,
        num_projections: int = NUM_LEARNED_RANGES,
        projection_scale: float = 12.0,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.projection_scale = projection_scale
        #: images patchified per GEMM in eager inference (no autograd, not compiling); see forward.
        self.inference_chunk = 2
        self.spectrum_embeds = nn.ModuleList(
            SpectralProjection(patch_size * patch_size, embed_dim) for _ in range(num_projections)
        )
        # CPU mixing matrices per band set; band sets are few, so this stays tiny.
        self._mix_cache: dict[ResolvedBands, tuple[list[int], torch.Tensor]] = {}
        self._fused_cache: dict[ResolvedBands, tuple[Any, torch.Tensor, torch.Tensor]] = {}

    def _mixing(self, bands: ResolvedBands) -> tuple[list[int], torch.Tensor]:
        if bands not in self._mix_cache:
            used, mix = mixing_matrix(bands)
            if used[-1] >= len(self.spectrum_embeds):
                raise ValueError(f"Band set uses projection {used[-1]}, the model has {len(self.spectrum_embeds)}.")
            self._mix_cache[bands] = (used, mix)
        return self._mix_cache[bands]

    def fused_weights(self, bands: ResolvedBands) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``[D, C*p*p]`` matrix and ``[D]`` bias equivalent to the released per-band formula.

        Without autograd (inference) the result is cached per band set and reused until a projection changes
        (tensor version counters and storage are part of the key), so repeated calls neither recompute nor
        re-allocate it.
        """
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._fuse(bands)
        used, _ = self._mixing(bands)
        projs = [self.spectrum_embeds[k].proj for k in used]
        key = tuple((p.weight.data_ptr(), p.weight._version, p.bias.data_ptr(), p.bias._version) for p in projs)
        cached = self._fused_cache.get(bands)
        if cached is None or cached[0] != key:
            cached = (key, *self._fuse(bands))
            self._fused_cache[bands] = cached
        return cached[1], cached[2]

    def _fuse(self, bands: ResolvedBands) -> tuple[torch.Tensor, torch.Tensor]:
        used, mix = self._mixing(bands)
        ref = self.spectrum_embeds[used[0]].proj.weight
        mix = mix.to(device=ref.device, dtype=ref.dtype) * (self.projection_scale / len(bands))
        weight = torch.stack([self.spectrum_embeds[k].proj.weight for k in used])  # [U, D, p*p]
        bias = torch.stack([self.spectrum_embeds[k].proj.bias for k in used])  # [U, D]
        return torch.einsum("cu,udq->dcq", mix, weight).flatten(1), mix.sum(0) @ bias

    def forward(self, x: torch.Tensor, bands: ResolvedBands) -> torch.Tensor:
        """Embed ``x [B, C, H, W]`` into tokens ``[B, (H/p)*(W/p), D]`` (row-major patch order)."""
        weight, bias = self.fused_weights(bands)
        # The model's dtype decides the compute dtype (as for any nn.Linear); under autocast, autocast does.
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(weight.dtype)
        p = self.patch_size
        chunk = self.inference_chunk
        if torch.is_grad_enabled() or torch.compiler.is_compiling() or x.shape[0] <= chunk:
            patches = rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
            return F.linear(patches, weight, bias)
        # Eager inference: patchify a few images at a time, so the patch copy of the input never exists whole
        # (a third of the peak memory at B=32, 12 bands) and each GEMM's operands stay in cache (faster too).
        first = F.linear(rearrange(x[:chunk], "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p), weight, bias)
        out = first.new_empty(x.shape[0], *first.shape[1:])
        out[:chunk] = first
        for i in range(chunk, x.shape[0], chunk):
            patches = rearrange(x[i : i + chunk], "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
            out[i : i + chunk] = F.linear(patches, weight, bias)
        return out
