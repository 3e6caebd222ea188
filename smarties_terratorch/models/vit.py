"""SMARTIES Vision Transformer (Sumbul et al., "SMARTIES: Spectrum-Aware Multi-Sensor Auto-Encoder for Remote
Sensing Images", ICCV 2025, arXiv 2506.19585).

A timm ViT whose patch embedding is the spectrum-aware projection of :mod:`.embed`. Parameter names are
exactly the released layout (``cls_token``, ``pos_embed``, ``blocks.{i}.*``, ``norm.*``,
``spectrum_projection.spectrum_embeds.{k}.proj.*``), so the official safetensors files load unchanged.

Bands are given per model (``bands=``/``sensor=`` at construction) or per call; anything
:func:`~smarties_terratorch.spectrum.resolve_bands` accepts works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.models._features import feature_take_indices
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..normalization import SmartiesNormalize
from ..spectrum import NUM_LEARNED_RANGES, ResolvedBands, concat_bands, resolve_bands
from ..weights import SmartiesWeights, register_weights
from .embed import SpectrumAwarePatchEmbed

__all__ = [
    "VARIANTS",
    "SmartiesViT",
    "SmartiesVariant",
    "default_cfgs",
    "variant_of",
    "create_smarties_vit",
    "build_sincos_pos_embed",
    "check_architecture",
    "checkpoint_filter_fn",
    "default_weights_for",
    "smarties_vit_base_patch16",
    "smarties_vit_large_patch16",
    "smarties_vit_tiny_patch16",
]

HeadType = Literal["linear", "linprobe", "conv"]


def build_sincos_pos_embed(embed_dim: int, grid_size: tuple[int, int], cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding ``[1, (1 +) h*w, D]`` as in MAE / the released model.

    The first half of the channels encodes the column (x) coordinate, the second half the row (y); each half is
    ``[sin, cos]`` with frequencies ``1 / 10000**(k / (D/4))``. The CLS row is zeros.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4 for a 2-D sin-cos embedding, got {embed_dim}")
    h, w = grid_size
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 4, dtype=torch.float64) / (embed_dim // 4))
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    emb = torch.cat([encode(cols), encode(rows)], dim=1)
    if cls_token:
        emb = torch.cat([emb.new_zeros(1, embed_dim), emb])
    return emb.float().unsqueeze(0)


def _make_head(head_type: HeadType, in_features: int, num_classes: int, dense_upsample: float) -> nn.Module:
    if num_classes <= 0:
        return nn.Identity()
    if head_type == "linear":  # released fine-tuning head
        return nn.Linear(in_features, num_classes)
    if head_type == "linprobe":  # released linear probe: BatchNorm without affine, then Linear
        return nn.Sequential(nn.BatchNorm1d(in_features, affine=False, eps=1e-6), nn.Linear(in_features, num_classes))
    if head_type == "conv":  # released DFC2020 probe on dense tokens
        return nn.Sequential(
            nn.Conv2d(in_features, num_classes, 1), nn.Upsample(scale_factor=dense_upsample, mode="bilinear")
        )
    raise ValueError(f"head_type must be 'linear', 'linprobe' or 'conv', got {head_type!r}")


_PREFIXES = ("module.", "model.", "encoder.", "backbone.", "net.")
_MAE_ONLY = re.compile(r"^(mask_token|decoder_\w+)(\.|$)")


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt a foreign SMARTIES state dict to ``model``: strip wrapper prefixes (``model.``, ``encoder.``, ...),
    drop MAE-only keys (decoder, mask token) and resample ``pos_embed`` to the model's grid."""
    own = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        while key not in own and key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        if _MAE_ONLY.match(key):
            continue
        if key == "pos_embed" and key in own and value.shape != own[key].shape and value.shape[-1] == own[key].shape[-1]:
            old = int(round((value.shape[1] - 1) ** 0.5))
            value = resample_abs_pos_embed(
                value, list(model.grid_size), [old, old], num_prefix_tokens=1, antialias=False
            )
        out[key] = value
    return out


def _describe(dim: int, depth: int) -> str:
    name = variant_of(dim, depth)
    return f"{default_cfgs[name].label} ({name})" if name else f"a ViT with D={dim}, {depth} blocks"


def check_architecture(sd: Mapping[str, torch.Tensor], model: nn.Module, path: str | Path) -> None:
    """Raise a :class:`~smarties_terratorch.checkpoints.CheckpointError` naming both variants when ``sd`` (from
    ``path``) is not ``model``'s ViT size."""
    from ..checkpoints import CheckpointError  # keeps Lightning out of a bare model import

    if "cls_token" not in sd:
        return
    dim = sd["cls_token"].shape[-1]
    depth = 1 + max((int(m[1]) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    own_dim, own_depth = model.cls_token.shape[-1], len(model.blocks)
    if (dim, depth) != (own_dim, own_depth):
        raise CheckpointError(
            f"{path} holds {_describe(dim, depth)} (D={dim}, {depth} blocks) but the model is "
            f"{_describe(own_dim, own_depth)} (D={own_dim}, {own_depth} blocks): build the matching model."
        )


class SmartiesViT(nn.Module):
    """SMARTIES encoder: spectrum-aware patch embedding + ViT blocks.

    Args:
        img_size: pre-training image size; ``pos_embed`` is stored for this grid and interpolated (bicubic,
            CLS kept) for other input sizes. Any H, W divisible by ``patch_size`` work, square or not.
        patch_size: patch side (16).
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / D.
        qkv_bias: bias on the qkv projection (True in the release).
        num_classes: classes of the head; 0 gives an encoder that returns features.
        global_pool: ``"token"`` (CLS after the final norm, the release's default) or ``"avg"`` (mean of patch
            tokens through a fresh ``fc_norm``, the release's ``global_pool=True``; ``norm`` is then absent).
        head_type: ``"linear"`` (fine-tune), ``"linprobe"`` (BatchNorm1d(affine=False) + Linear) or ``"conv"``
            (1x1 conv + bilinear upsampling on dense tokens, the released DFC2020 probe).
        num_modalities: sources concatenated by late fusion in front of the head (2 for BigEarthNet-MM).
        bands: default band list (see :func:`~smarties_terratorch.spectrum.resolve_bands`); per-call bands win.
        sensor: default sensor preset for bare band names (``"S2-L2A"``, ``"S1"``, ``"RGB"``, ...).
        weighting: averaged-projection weighting, ``"released"`` (default) or ``"inverse_distance"``.
        allow_duplicate_bands: accept a band list that names the same range twice (see ``resolve_bands``).
        drop_path_rate: stochastic depth (the released fine-tunes effectively used 0).
        projection_scale: the released constant 12 multiplying the band mean.
        dense_upsample: upsampling factor of the ``"conv"`` head (96/14 for DFC2020).
        stats: SMARTIES normalisation statistics applied to the input inside the model (first thing in every
            forward), for the model's ``bands``: a table name (``"S2-L2A"``), a mapping with ``mean``/``std``/
            ``p1``/``p99`` lists or a statistics file: anything
            :meth:`~smarties_terratorch.normalization.SmartiesNormalize.from_spec` accepts. The model then takes raw
            values (digital numbers, reflectance, dB, as the statistics expect), warns once
            (:class:`~smarties_terratorch.normalization.UnitsWarning`) when the first batches do not fit those units
            and refuses input that was already normalised
            (:class:`~smarties_terratorch.normalization.NormalizedTwiceError`). ``None`` (default): inputs arrive
            normalised.
    """

    #: How :func:`~smarties_terratorch.pretrained.load_pretrained` maps and checks a weights file for this model
    #: when the caller passes no ``filter_fn``/``check_fn``.
    pretrained_filter_fn = staticmethod(checkpoint_filter_fn)
    pretrained_check_fn = staticmethod(check_architecture)

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_classes: int = 0,
        global_pool: Literal["token", "avg"] = "token",
        head_type: HeadType = "linear",
        num_modalities: int = 1,
        bands: Sequence[Any] | str | None = None,
        sensor: str | None = None,
        weighting: str = "released",
        allow_duplicate_bands: bool = False,
        drop_path_rate: float = 0.0,
        projection_scale: float = 12.0,
        dense_upsample: float = 96 / 14,
        stats: Any = None,
    ) -> None:
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(f"img_size {img_size} must be divisible by patch_size {patch_size}")
        self.patch_size = patch_size
        self.img_size = img_size
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.embed_dim = self.num_features = embed_dim
        self.num_prefix_tokens = 1
        self.global_pool = global_pool
        self.num_classes = num_classes
        self.head_type = head_type
        self.weighting = weighting
        self.allow_duplicate_bands = allow_duplicate_bands
        self.grad_checkpointing = False
        self.default_sensor = sensor
        self.default_bands = (
            self.resolve(bands, sensor=sensor) if bands is not None or sensor is not None else None
        )

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(build_sincos_pos_embed(embed_dim, self.grid_size))
        self.spectrum_projection = SpectrumAwarePatchEmbed(
            patch_size, embed_dim, NUM_LEARNED_RANGES, projection_scale
        )
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # python floats: meta-device safe
        self.blocks = nn.Sequential(
            *(
                Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=dpr[i], norm_layer=norm_layer)
                for i in range(depth)
            )
        )
        # The release swaps `norm` for a fresh `fc_norm` in global-pool mode, so only one of them has keys.
        self.norm = norm_layer(embed_dim) if global_pool == "token" else nn.Identity()
        self.fc_norm = norm_layer(embed_dim) if global_pool == "avg" else nn.Identity()
        self.head = _make_head(head_type, embed_dim * num_modalities, num_classes, dense_upsample)
        self._init_weights()
        self.stats: Any = None
        self.input_norm: SmartiesNormalize | None = None
        self.set_stats(stats)

    # ------------------------------------------------------------------ normalisation
    def set_stats(self, stats: Any) -> None:
        """Normalise inputs inside the model with ``stats`` (see the class arguments); ``None`` switches it off.

        The statistics are resolved for the model's default bands (``BLUE`` finds a table's ``B02`` row).
        Their buffers are not part of the state dict: they come from the constructor arguments, which
        TerraTorch saves in the checkpoint's hyperparameters.
        """
        if stats is None:
            self.stats, self.input_norm = None, None
            return
        if self.default_bands is None:
            raise ValueError(
                "stats needs the model's bands to pick the statistics rows: build the model with bands=[...] "
                "(TerraTorch: backbone_bands) or sensor=..."
            )
        # input normalised twice is refused, other unit mismatches warn
        norm = SmartiesNormalize.from_spec(stats, bands=self.default_bands, check_units=True, refuse_normalized=True)
        self.stats, self.input_norm = stats, norm.to(self.pos_embed.device)

    def normalize_input(self, x: torch.Tensor, bands: ResolvedBands) -> torch.Tensor:
        """``x`` normalised with the model's statistics (unchanged when it has none)."""
        if self.input_norm is None:
            return x
        if bands is not self.default_bands and bands.spectra != self.default_bands.spectra:
            raise ValueError(
                f"This model normalises its input with {self.input_norm.source} for its bands "
                f"({', '.join(self.default_bands.names)}), but this call gives bands {', '.join(bands.names)}: "
                f"call it without bands=, or build a model for these bands."
            )
        return self.input_norm(x)

    # ------------------------------------------------------------------ init
    def _init_weights(self) -> None:
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for emb in self.spectrum_projection.spectrum_embeds:  # as MAE's patch embedding
            nn.init.xavier_uniform_(emb.proj.weight)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:  # noqa: ARG002 (timm's signature)
        """Parameter groups for timm's ``param_groups_layer_decay`` (and ``group_parameters``).

        timm's ViT convention for the stem (layer 0: ``cls_token``, ``pos_embed`` and the spectral projections,
        our patch embedding) and the blocks (block ``i`` is layer ``i + 1``). Unlike timm's ViT, which files the
        final norm with the last block, the final norm (``norm``/``fc_norm``) and the head form a layer of their
        own, last: the MAE/BEiT rule that the SMARTIES fine-tuning follows, so they train at the full rate.
        """
        return dict(
            stem=r"^cls_token|^pos_embed|^spectrum_projection",
            blocks=r"^blocks\.(\d+)",
            head=r"^norm|^fc_norm|^head",
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    # ------------------------------------------------------------------ bands
    def resolve(self, bands: Any = None, sensor: str | None = None) -> ResolvedBands:
        """Resolve a band list with this model's weighting; ``None`` gives the model's default bands."""
        if isinstance(bands, ResolvedBands):
            return bands
        if bands is None and sensor is None:
            if self.default_bands is None:
                raise ValueError(
                    "No bands given: pass bands=[...] or sensor=... to forward(), or set them when building the "
                    "model (e.g. smarties_vit_base_patch16(bands=['B02', 'B03', 'B04', 'B08']))."
                )
            return self.default_bands
        return resolve_bands(
            bands,
            sensor=sensor if sensor is not None else self.default_sensor,
            weighting=self.weighting,
            allow_duplicates=self.allow_duplicate_bands,
        )

    # ------------------------------------------------------------------ embedding
    def _check_input(self, x: torch.Tensor, bands: ResolvedBands) -> tuple[int, int]:
        if x.ndim != 4:
            raise ValueError(f"Expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[1] != len(bands):
            raise ValueError(
                f"The input has {x.shape[1]} channels but {len(bands)} bands were given ({', '.join(bands.names)}): "
                f"give one band name per channel, in channel order."
            )
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"Input size {h}x{w} is not divisible by the patch size {self.patch_size}: pad or resize it "
                f"(e.g. to 224x224). The TerraTorch backbone pads automatically."
            )
        return h // self.patch_size, w // self.patch_size

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        if grid == self.grid_size:
            return self.pos_embed
        # DeiT-style: keep the CLS row, resize the grid bicubically (no anti-aliasing, as the authors do).
        return resample_abs_pos_embed(
            self.pos_embed, list(grid), list(self.grid_size), num_prefix_tokens=1, antialias=False
        )

    def embed(self, x: torch.Tensor, bands: Any = None, sensor: str | None = None) -> torch.Tensor:
        """Tokens entering the first block: ``[B, 1 + h*w, D]`` (CLS first, position embedding added)."""
        resolved = self.resolve(bands, sensor)
        grid = self._check_input(x, resolved)
        x = self.normalize_input(x, resolved)
        return self.add_cls_and_pos(self.spectrum_projection(x, resolved), grid)

    def add_cls_and_pos(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``[B, h*w, D]`` -> ``[B, 1 + h*w, D]``: CLS prepended, position embedding of ``grid`` added."""
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        return torch.cat([cls, tokens], dim=1) + self._pos_embed(grid).to(tokens.dtype)

    def _run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    # ------------------------------------------------------------------ forward
    def forward_features(self, x: torch.Tensor, bands: Any = None, sensor: str | None = None) -> torch.Tensor:
        """All tokens after the last block and the final norm: ``[B, 1 + h*w, D]``."""
        x = self.embed(x, bands, sensor)
        for block in self.blocks:
            x = self._run_block(block, x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool tokens (CLS or mean of patch tokens + ``fc_norm``) and apply the head."""
        x = x[:, 0] if self.global_pool == "token" else x[:, self.num_prefix_tokens :].mean(dim=1)
        x = self.fc_norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, bands: Any = None, sensor: str | None = None) -> torch.Tensor:
        """Image batch ``[B, C, H, W]`` with one band per channel -> features ``[B, D]`` or logits.

        With ``head_type="conv"`` the head runs on the dense last-block tokens (segmentation logits).
        """
        if self.head_type == "conv" and self.num_classes > 0:
            return self.head(self.forward_dense(x, bands, sensor))
        return self.forward_head(self.forward_features(x, bands, sensor))

    def forward_dense(self, x: torch.Tensor, bands: Any = None, sensor: str | None = None) -> torch.Tensor:
        """Patch tokens of the last block **without** the final norm, ``[B, D, h, w]`` (the release's ``all_tokens``)."""
        return self.forward_intermediates(x, indices=1, bands=bands, sensor=sensor, intermediates_only=True)[0]

    def forward_block_tokens(
        self, x: torch.Tensor, indices: int | Sequence[int] | None = None, bands: Any = None, sensor: str | None = None
    ) -> list[torch.Tensor]:
        """Raw outputs ``[B, 1 + h*w, D]`` (CLS first, no norm) of the selected blocks, stopping after the last one.

        This is what TerraTorch's ViT necks (``SelectIndices`` -> ``ReshapeTokensToImage``) expect.
        """
        return self.run_blocks(self.embed(x, bands, sensor), indices)

    def run_blocks(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """Run the blocks on embedded tokens ``[B, 1 + N, D]`` up to the last selected one and return the selected
        blocks' outputs, in the order of ``indices`` (duplicates kept)."""
        take, max_index = feature_take_indices(len(self.blocks), indices)
        feats = {}
        for i, block in enumerate(self.blocks[: max_index + 1]):
            x = self._run_block(block, x)
            if i in take:
                feats[i] = x
        return [feats[i] for i in take]

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        *,
        bands: Any = None,
        sensor: str | None = None,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: Literal["NCHW", "NLC"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Any] | tuple[torch.Tensor, list[Any]]:
        """Forward pass that also returns the outputs of selected blocks (timm's feature-extraction API).

        Args:
            x: image batch ``[B, C, H, W]``; H and W divisible by the patch size.
            indices: ``None`` for every block, an int ``n`` for the last ``n`` blocks, or a list of block
                indices (negative counts from the end).
            bands: band list for this call (default: the model's bands).
            sensor: sensor preset for bare band names.
            return_prefix_tokens: also return the CLS token of each selected block, as ``(spatial, cls)`` pairs.
            norm: apply the final norm to the intermediates (the release's dense output has no norm).
            stop_early: stop after the last selected block (the returned final features are then that block's).
            output_fmt: ``"NCHW"`` for ``[B, D, h, w]`` maps or ``"NLC"`` for ``[B, h*w, D]`` tokens.
            intermediates_only: return only the list of intermediates.

        Returns:
            The list of intermediates, or ``(final normed tokens [B, 1 + h*w, D], intermediates)``.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        resolved = self.resolve(bands, sensor)
        h, w = self._check_input(x, resolved)
        take, max_index = feature_take_indices(len(self.blocks), indices)
        x = self.embed(x, resolved)
        blocks = self.blocks if not (stop_early or intermediates_only) else self.blocks[: max_index + 1]
        intermediates = []
        for i, block in enumerate(blocks):
            x = self._run_block(block, x)
            if i in take:
                y = self.norm(x) if norm else x
                prefix, spatial = y[:, : self.num_prefix_tokens], y[:, self.num_prefix_tokens :]
                if output_fmt == "NCHW":
                    spatial = spatial.reshape(spatial.shape[0], h, w, -1).permute(0, 3, 1, 2)
                intermediates.append((spatial, prefix) if return_prefix_tokens else spatial)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def forward_multimodal(
        self,
        inputs: Mapping[str, torch.Tensor],
        bands: Mapping[str, Any] | None = None,
        fusion: Literal["late", "early"] = "late",
        pre_logits: bool = False,
    ) -> torch.Tensor:
        """Encode several co-registered sources (e.g. ``{"S2": x_s2, "S1": x_s1}``).

        Args:
            inputs: modality name -> ``[B, C_m, H_m, W_m]``.
            bands: modality name -> band list; a missing entry uses the modality name as a sensor preset.
            fusion: ``"late"`` encodes each source separately and concatenates the pooled features (``[B, S*D]``,
                the paper's BigEarthNet-MM protocol; build the model with ``num_modalities=S`` for a head);
                ``"early"`` stacks all bands into one input, so one pass averages every band's projection.
            pre_logits: return features without the head.
        """
        bands = dict(bands or {})
        resolved = {m: self.resolve(bands.get(m), None if m in bands else m) for m in inputs}
        if fusion == "early":
            x = torch.cat(list(inputs.values()), dim=1)
            merged = concat_bands(*resolved.values(), allow_duplicates=self.allow_duplicate_bands)
            return self.forward_head(self.forward_features(x, merged), pre_logits)
        if fusion != "late":
            raise ValueError(f"fusion must be 'late' or 'early', got {fusion!r}")
        feats = torch.cat(
            [self.forward_head(self.forward_features(x, resolved[m]), pre_logits=True) for m, x in inputs.items()],
            dim=-1,
        )
        return feats if pre_logits else self.head(feats)


@dataclass(frozen=True)
class SmartiesVariant:
    """One SMARTIES architecture and its pretrained config: the single source the factories, the TerraTorch
    backbones, the CLI, the weights defaults and the PANGAEA encoder read.

    Attributes:
        depth: transformer blocks.
        embed_dim: token width D.
        num_heads: attention heads.
        pretrained_cfg: the released encoder weights that ``pretrained=True`` loads (Hub repo, file, revision pin,
            sha256 when declared, licence; ``None``: none released).
        label: short human name used in messages (``"ViT-B/16"``).
    """

    depth: int
    embed_dim: int
    num_heads: int
    pretrained_cfg: SmartiesWeights | None = None
    label: str = ""

    @property
    def weights(self) -> str | None:
        """Tag of the released encoder weights (``None``: none released)."""
        return self.pretrained_cfg.name if self.pretrained_cfg is not None else None

    def model_kwargs(self) -> dict[str, int]:
        """The :class:`SmartiesViT` arguments that make this architecture."""
        return {"embed_dim": self.embed_dim, "depth": self.depth, "num_heads": self.num_heads}

    @property
    def description(self) -> str:
        released = f"released weights {self.weights}" if self.weights else "no released weights"
        return f"SMARTIES {self.label} (D={self.embed_dim}, {self.depth} blocks, {self.num_heads} heads; {released})"


_PRETRAINED_ON = "pretrained on BigEarthNet S2/S1, fMoW-S2 and fMoW-RGB"

#: The variant table (timm's ``default_cfgs``): factory name -> architecture and pretrained config (the released
#: encoder weights; the fine-tuned task weights are declared in :mod:`smarties_terratorch.weights`).
default_cfgs: dict[str, SmartiesVariant] = {
    "smarties_vit_tiny_patch16": SmartiesVariant(depth=2, embed_dim=64, num_heads=2, label="tiny ViT/16 (tests)"),
    "smarties_vit_base_patch16": SmartiesVariant(
        depth=12,
        embed_dim=768,
        num_heads=12,
        pretrained_cfg=SmartiesWeights(
            "smarties-v1-vitb",
            "smarties_vit_base_patch16",
            "gsumbul/SMARTIES-v1-ViT-B",
            "smarties-v1-vitb.safetensors",
            description=f"SMARTIES ViT-B/16 encoder {_PRETRAINED_ON}",
        ),
        label="ViT-B/16",
    ),
    "smarties_vit_large_patch16": SmartiesVariant(
        depth=24,
        embed_dim=1024,
        num_heads=16,
        pretrained_cfg=SmartiesWeights(
            "smarties-v1-vitl",
            "smarties_vit_large_patch16",
            "gsumbul/SMARTIES-v1-ViT-L",
            "smarties-v1-vitl.safetensors",
            description=f"SMARTIES ViT-L/16 encoder {_PRETRAINED_ON}",
        ),
        label="ViT-L/16",
    ),
}

# As timm's register_model: the encoders' weights become known by tag (smarties_terratorch.weights.get_weights).
register_weights(*(cfg.pretrained_cfg for cfg in default_cfgs.values() if cfg.pretrained_cfg is not None))

#: ``default_cfgs`` as constructor arguments (name -> ``embed_dim``/``depth``/``num_heads``).
VARIANTS: dict[str, dict[str, int]] = {name: cfg.model_kwargs() for name, cfg in default_cfgs.items()}


def variant_of(embed_dim: int, depth: int) -> str | None:
    """The factory name of the variant with this width and depth (e.g. read from a checkpoint), if any."""
    return next((n for n, c in default_cfgs.items() if (c.embed_dim, c.depth) == (embed_dim, depth)), None)


def default_weights_for(arch: str) -> SmartiesWeights:
    """The released encoder weights of a factory (``pretrained=True`` without a path).

    Raises:
        WeightsUnavailableError: ``arch`` has no released weights.
    """
    cfg = default_cfgs.get(arch)
    if cfg is None or cfg.pretrained_cfg is None:
        from ..checkpoints import WeightsUnavailableError  # keeps Lightning out of a bare model import

        raise WeightsUnavailableError(
            f"No released weights exist for {arch}; pass ckpt_path=... (a local checkpoint) or pretrained=False."
        )
    return cfg.pretrained_cfg


def create_smarties_vit(
    variant: str,
    pretrained: bool | str = False,
    ckpt_path: str | Path | None = None,
    revision: str | None = None,
    model_cls: type[SmartiesViT] = SmartiesViT,
    **kwargs: Any,
) -> SmartiesViT:
    """Build ``variant`` (a key of :data:`default_cfgs`) and load weights: ``ckpt_path`` whenever given (local first),
    else ``pretrained`` (``True`` = the variant's released weights, a string = a declared weights tag), fetched
    from the Hub at ``revision``, else at the declared or the repo's current commit (logged; see
    :func:`~smarties_terratorch.hub.resolve_revision`). Loading goes through
    :func:`~smarties_terratorch.pretrained.load_pretrained` with this module's :func:`checkpoint_filter_fn` and
    :func:`check_architecture` (timm's ``pretrained_filter_fn``)."""
    if variant not in default_cfgs:
        raise ValueError(f"Unknown SMARTIES variant {variant!r}; choose one of {', '.join(default_cfgs)}.")
    model = model_cls(**{**default_cfgs[variant].model_kwargs(), **kwargs})
    if ckpt_path is not None or pretrained:
        from ..pretrained import load_pretrained  # imports no model; lazily: keeps Lightning and the Hub client out

        source = ckpt_path if ckpt_path is not None else (pretrained if isinstance(pretrained, str) else None)
        load_pretrained(
            model,
            source if source is not None else default_weights_for(variant),
            filter_fn=checkpoint_filter_fn,
            check_fn=check_architecture,
            revision=revision,
        )
    return model


def smarties_vit_tiny_patch16(pretrained: bool | str = False, **kwargs: Any) -> SmartiesViT:
    """Tiny SMARTIES ViT (D=64, 2 blocks, 2 heads) for tests; same layout as the released parity fixture."""
    return create_smarties_vit("smarties_vit_tiny_patch16", pretrained, **kwargs)


def smarties_vit_base_patch16(pretrained: bool | str = False, **kwargs: Any) -> SmartiesViT:
    """SMARTIES ViT-B/16 (D=768, 12 blocks, 12 heads; released weights ``smarties-v1-vitb``)."""
    return create_smarties_vit("smarties_vit_base_patch16", pretrained, **kwargs)


def smarties_vit_large_patch16(pretrained: bool | str = False, **kwargs: Any) -> SmartiesViT:
    """SMARTIES ViT-L/16 (D=1024, 24 blocks, 16 heads; released weights ``smarties-v1-vitl``)."""
    return create_smarties_vit("smarties_vit_large_patch16", pretrained, **kwargs)
