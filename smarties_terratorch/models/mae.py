"""SMARTIES masked auto-encoder for pre-training.

The encoder is a plain :class:`~smarties_terratorch.models.vit.SmartiesViT` (same parameter names, so
``save_weights(mae.encoder, ...)`` writes the official encoder layout); this module adds the MAE decoder
(512-d, 8 blocks, 16 heads by default), one reconstruction head per learned spectral range, random masking and
cross-sensor token mixup.

One training sample is a pair of co-registered images of two sensors (``x_a`` with bands ``bands_a``, ``x_b``
with ``bands_b``, same size). Order of operations (as released): embed both -> token mixup -> position embedding
-> masking (the same mask for both views) -> CLS -> encoder -> decoder, one pass per view (here both views share
one batched pass).

Cross-sensor token mixup (ratio 0.5): for each sample half of the token positions (a random permutation) take
the token of image ``a``, the rest that of image ``b``. Reconstruction targets follow the tokens: a position
taken from ``a`` must be reconstructed in ``a``'s bands. Two variants:

* ``mixup="mirrored"`` (default, the paper's description): view 1 takes ``a`` where view 2 takes ``b`` and vice
  versa, so both views are 50/50 mixes and every position of both images is seen once.
* ``mixup="released"`` (the authors' released pretraining code, for reproduction): view 1 is the 50/50 mix,
  view 2 is pure ``b``. Image ``a`` then contributes to half the tokens of one view only.
* ``mixup="none"``: view 1 is ``a``, view 2 is ``b`` (no mixing).

Band slots: the released data pipeline tiles every image to 12 band slots (RGB x 4, S1 x 6) so that batches
stack. Tiling changes nothing mathematically: the patch embedding is ``12 x mean`` over band slots, a band
repeated ``k`` times in ``C k`` slots has the same mean; the per-patch reconstruction loss is a mean over slots
too, and so are the norm-pix statistics (with the biased variance used here). We therefore feed each sensor's
real bands only and keep batches homogeneous per source, which saves the compute of the duplicated slots
(``tests/test_pretrain.py`` checks that tiled and untiled inputs give the same embedding and loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.models.vision_transformer import Block
from torch import nn

from ..spectrum import ResolvedBands
from .embed import mixing_matrix
from .vit import VARIANTS, SmartiesViT, build_sincos_pos_embed, create_smarties_vit

__all__ = ["MAEOutput", "MixupMode", "SmartiesMAE", "mixup_positions", "random_masking"]

MixupMode = Literal["mirrored", "released", "none"]


@dataclass
class MAEOutput:
    """Result of :meth:`SmartiesMAE.forward`.

    Attributes:
        loss: scalar, mean of the two views' losses.
        view_losses: ``[2]`` loss of view 1 and view 2.
        mask: ``[B, N]`` float, 1 where a patch was masked (shared by both views).
        from_a: ``[2, B, N]`` bool, True where a view's token comes from image ``a``.
    """

    loss: torch.Tensor
    view_losses: torch.Tensor
    mask: torch.Tensor
    from_a: torch.Tensor


def random_masking(
    batch: int, num_tokens: int, mask_ratio: float, device: torch.device, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking by argsort of uniform noise.

    Returns:
        ``(ids_keep [B, K], ids_restore [B, N], mask [B, N])`` with ``K = int(N * (1 - mask_ratio))``; ``mask`` is 1
        for removed tokens, in the original token order.
    """
    keep = int(num_tokens * (1 - mask_ratio))
    if keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} leaves no visible token out of {num_tokens}")
    noise = torch.rand(batch, num_tokens, generator=generator, device=device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(batch, num_tokens, device=device)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore)


def mixup_positions(
    batch: int, num_tokens: int, ratio: float, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[B, N]`` bool: the ``int(N * ratio)`` positions (random per sample) that take image ``a``'s token."""
    noise = torch.rand(batch, num_tokens, generator=generator, device=device)
    take = noise.argsort(dim=1)[:, : int(num_tokens * ratio)]
    return torch.zeros(batch, num_tokens, dtype=torch.bool, device=device).scatter_(1, take, True)


class SmartiesMAE(nn.Module):
    """SMARTIES MAE: spectrum-aware encoder, shared decoder, per-range reconstruction heads.

    Args:
        variant: encoder architecture (a key of :data:`~smarties_terratorch.models.vit.VARIANTS`).
        img_size: training image side (the sin-cos position embeddings are built for it).
        patch_size: patch side.
        decoder_embed_dim: decoder width (512 in the paper).
        decoder_depth: decoder blocks (8).
        decoder_num_heads: decoder attention heads (16).
        mlp_ratio: MLP width ratio of the decoder blocks.
        mask_ratio: share of masked tokens (0.75); the mask is shared by both views.
        mixup_ratio: share of view-1 tokens taken from image ``a`` (0.5).
        mixup: ``"mirrored"`` (paper, default), ``"released"`` (one-sided, as the released code) or ``"none"``.
        norm_pix_loss: normalise each patch's target over all its band values (mean 0, biased variance 1).
        encoder_ckpt_path: optional encoder weights to start from (official layout).
        **encoder_kwargs: more :class:`SmartiesViT` arguments (``weighting``, ``drop_path_rate``, ...).
    """

    def __init__(
        self,
        variant: str = "smarties_vit_base_patch16",
        img_size: int = 224,
        patch_size: int = 16,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mlp_ratio: float = 4.0,
        mask_ratio: float = 0.75,
        mixup_ratio: float = 0.5,
        mixup: MixupMode = "mirrored",
        norm_pix_loss: bool = True,
        encoder_ckpt_path: str | None = None,
        **encoder_kwargs: Any,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown encoder variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if mixup not in ("mirrored", "released", "none"):
            raise ValueError(f"mixup must be 'mirrored', 'released' or 'none', got {mixup!r}")
        if not 0.0 <= mask_ratio < 1.0 or not 0.0 <= mixup_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1) and mixup_ratio in [0, 1], got {mask_ratio}, {mixup_ratio}")
        self.mask_ratio = mask_ratio
        self.mixup_ratio = mixup_ratio
        self.mixup = mixup
        self.norm_pix_loss = norm_pix_loss
        self.encoder: SmartiesViT = create_smarties_vit(
            variant, img_size=img_size, patch_size=patch_size, num_classes=0, **encoder_kwargs
        )
        enc = self.encoder
        # MAE keeps the sin-cos position embeddings fixed (the released encoder stores them as a parameter).
        enc.pos_embed.requires_grad_(False)
        num_heads = len(enc.spectrum_projection.spectrum_embeds)

        self.decoder_embed = nn.Linear(enc.embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            build_sincos_pos_embed(decoder_embed_dim, enc.grid_size), requires_grad=False
        )
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_blocks = nn.Sequential(
            *(
                Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
                for _ in range(decoder_depth)
            )
        )
        self.decoder_norm = norm_layer(decoder_embed_dim)
        # One head per learned range, in the encoder's projection order (released: `decoder_preds.{k}`).
        self.decoder_preds = nn.ModuleList(nn.Linear(decoder_embed_dim, patch_size**2) for _ in range(num_heads))
        self._init_weights()
        if encoder_ckpt_path is not None:
            from ..pretrained import load_pretrained  # lazily: keeps Lightning and the Hub client out

            load_pretrained(enc, encoder_ckpt_path)  # the ViT's own filter and architecture check apply

    def _init_weights(self) -> None:
        # The released MAE initialisation: xavier-uniform Linear weights everywhere (encoder included), zero
        # biases, LayerNorm (1, 0), CLS and mask token N(0, 0.02).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names excluded from weight decay beyond 1-D tensors: none (the release decays CLS and mask token)."""
        return set()

    # ------------------------------------------------------------------ targets
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, N, C, p*p]`` (row-major patches)."""
        p = self.encoder.patch_size
        return rearrange(x, "b c (h p1) (w p2) -> b (h w) c (p1 p2)", p1=p, p2=p)

    def _target(self, x: torch.Tensor) -> torch.Tensor:
        target = self.patchify(x).flatten(2)  # [B, N, C*p*p]
        if self.norm_pix_loss:
            # Biased variance: invariant to band-slot tiling (the unbiased one differs by a factor (n-1)/n).
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True, unbiased=False)
            target = (target - mean) / (var + 1e-6) ** 0.5
        return target

    def _head_weights(self, bands: ResolvedBands) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band reconstruction heads as one ``[C*p*p, Dd]`` matrix: band ``c`` uses the head of its range, or
        the same weighted mix of heads as its embedding for averaged ranges."""
        used, mix = mixing_matrix(bands)
        ref = self.decoder_preds[used[0]].weight
        mix = mix.to(device=ref.device, dtype=ref.dtype)
        weight = torch.stack([self.decoder_preds[k].weight for k in used])  # [U, p*p, Dd]
        bias = torch.stack([self.decoder_preds[k].bias for k in used])  # [U, p*p]
        return torch.einsum("cu,uqd->cqd", mix, weight).flatten(0, 1), (mix @ bias).flatten()

    def _token_loss(self, decoded: torch.Tensor, target: torch.Tensor, bands: ResolvedBands) -> torch.Tensor:
        """Squared error averaged over a patch's values: ``[B', N]``."""
        weight, bias = self._head_weights(bands)
        pred = F.linear(decoded, weight, bias)
        return (pred - target).pow(2).mean(dim=-1)

    # ------------------------------------------------------------------ forward
    def forward_encoder(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Visible tokens ``[B, N, D]`` (position embedding added) -> encoded ``[B, 1 + K, D]`` after ``norm``."""
        enc = self.encoder
        x = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in enc.blocks:
            x = enc._run_block(block, x)
        return enc.norm(x)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoded ``[B, 1 + K, D]`` -> decoded patch tokens ``[B, N, Dd]`` (CLS dropped)."""
        x = self.decoder_embed(latent)
        n = ids_restore.shape[1]
        masked = self.mask_token.expand(x.shape[0], n + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:], masked], dim=1)
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        x = self.decoder_norm(self.decoder_blocks(x))
        return x[:, 1:]

    def forward(
        self,
        x_a: torch.Tensor,
        bands_a: Any,
        x_b: torch.Tensor,
        bands_b: Any,
        generator: torch.Generator | None = None,
    ) -> MAEOutput:
        """MAE loss of a batch of co-registered image pairs.

        Args:
            x_a: ``[B, C_a, H, W]`` images of the first sensor (normalised).
            bands_a: band names of ``x_a`` (anything ``resolve_bands`` takes, or a ``ResolvedBands``).
            x_b: ``[B, C_b, H, W]`` images of the second sensor, same ``H, W``.
            bands_b: band names of ``x_b``.
            generator: RNG for masking and mixup positions (pass a seeded one for reproducible steps).
        """
        enc = self.encoder
        ra, rb = enc.resolve(bands_a), enc.resolve(bands_b)
        grid = enc._check_input(x_a, ra)
        if enc._check_input(x_b, rb) != grid or x_a.shape[0] != x_b.shape[0]:
            raise ValueError(
                f"Paired images must have the same batch and size, got {tuple(x_a.shape)}, {tuple(x_b.shape)}"
            )
        if grid != enc.grid_size:
            raise ValueError(f"Pre-training input must be {enc.img_size}, got {tuple(x_a.shape[-2:])}")
        batch, n = x_a.shape[0], grid[0] * grid[1]
        ta, tb = enc.spectrum_projection(x_a, ra), enc.spectrum_projection(x_b, rb)

        if self.mixup == "none":
            first = torch.zeros(batch, n, dtype=torch.bool, device=x_a.device)
            from_a = torch.stack([~first, first])
        else:
            first = mixup_positions(batch, n, self.mixup_ratio, x_a.device, generator)
            second = ~first if self.mixup == "mirrored" else torch.zeros_like(first)
            from_a = torch.stack([first, second])
        # Both views in one batch of 2B: [view 1 samples, view 2 samples].
        src = from_a.flatten(0, 1).unsqueeze(-1)
        tokens = torch.where(src, ta.repeat(2, 1, 1), tb.repeat(2, 1, 1)) + enc.pos_embed[:, 1:]

        ids_keep, ids_restore, mask = random_masking(batch, n, self.mask_ratio, x_a.device, generator)
        ids_keep, ids_restore = ids_keep.repeat(2, 1), ids_restore.repeat(2, 1)  # same mask for both views
        decoded = self.forward_decoder(self.forward_encoder(tokens, ids_keep), ids_restore)

        loss_a = self._token_loss(decoded, self._target(x_a).repeat(2, 1, 1), ra)
        loss_b = self._token_loss(decoded, self._target(x_b).repeat(2, 1, 1), rb)
        per_token = torch.where(src.squeeze(-1), loss_a, loss_b).view(2, batch, n)
        view_losses = (per_token * mask).sum(dim=(1, 2)) / (mask.sum() + 1e-6)
        return MAEOutput(view_losses.mean(), view_losses, mask, from_a)
