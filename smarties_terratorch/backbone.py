"""SMARTIES backbones in TerraTorch's registry.

Importing this module registers ``smarties_vit_tiny_patch16``, ``smarties_vit_base_patch16`` and
``smarties_vit_large_patch16`` in ``TERRATORCH_BACKBONE_REGISTRY`` (``import smarties_terratorch`` does it for you
once TerraTorch is imported, in either order). A TerraTorch config then only names the backbone:

.. code-block:: yaml

    model_args:
      backbone: smarties_vit_base_patch16
      backbone_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]   # same order as the data's bands
      backbone_ckpt_path: /data/weights/smarties-v1-vitb.safetensors

The backbone returns the raw token sequence ``[B, 1 + N, D]`` (CLS first, no final norm) of every block in
``out_indices`` (default: all blocks, like Prithvi), which is what TerraTorch's ViT necks expect
(``SelectIndices`` -> ``ReshapeTokensToImage`` -> ``LearnedInterpolateToPyramidal`` -> ``UperNetDecoder``, or
``ReshapeTokensToImage``/``AggregateTokens`` -> ``IdentityDecoder`` for classification).
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import Callback
from terratorch.registry import TERRATORCH_BACKBONE_REGISTRY
from timm.models._features import feature_take_indices

from .models.vit import SmartiesViT, create_smarties_vit
from .spectrum import ResolvedBands, concat_bands

__all__ = [
    "SmartiesBackbone",
    "SmartiesBackbones",
    "smarties_vit_base_patch16",
    "smarties_vit_large_patch16",
    "smarties_vit_tiny_patch16",
]

log = logging.getLogger(__name__)

# Keys TerraTorch's factory forwards to every backbone (see EncoderDecoderFactory); anything else is a typo.
_TERRATORCH_EXTRAS = {"padding"}


class SmartiesBackbone(SmartiesViT):
    """A :class:`SmartiesViT` with TerraTorch's backbone contract.

    ``forward(x, **kwargs)`` returns a list of ``[B, 1 + N, D']`` token tensors, one per ``out_indices`` entry,
    with ``D' = D`` or ``S * D`` for late fusion of S modalities; ``out_channels`` lists ``D'`` per output.
    State-dict keys are the released layout (no wrapper prefix), so official files load directly.

    Args:
        out_indices: blocks to return (negative counts from the end); ``None`` = all blocks.
        modality_bands: for multi-modal inputs (a dict of tensors), the band list per modality.
        fusion: ``"early"`` (one pass over all modalities' bands, one token average), ``"late"`` (one pass per
            modality, tokens concatenated on the channel dim: the paper's "feature concatenation" ablation) or
            ``"mixup"`` (the paper's BigEarthNet-MM "mixup concatenation", exactly two modalities: two
            complementary 50/50 token-mixed views, one pass each, tokens concatenated on the channel dim).
        mixup_eval_seed: with ``fusion="mixup"``, the seed of the token-mix positions in eval mode, so evaluation
            is reproducible (the release draws them at random at evaluation too); ``None`` = random. Training
            always draws fresh positions from the global RNG.
        **kwargs: :class:`SmartiesViT` arguments (``bands``, ``sensor``, ``img_size``, ``weighting``, ...).
    """

    def __init__(
        self,
        out_indices: Sequence[int] | None = None,
        modality_bands: Mapping[str, Any] | None = None,
        fusion: Literal["early", "late", "mixup"] = "early",
        mixup_eval_seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        if fusion not in ("early", "late", "mixup"):
            raise ValueError(f"fusion must be 'early', 'late' or 'mixup', got {fusion!r}")
        if fusion == "mixup" and len(modality_bands or {}) != 2:
            raise ValueError(
                "fusion='mixup' (BigEarthNet-MM mixup concatenation) needs exactly two modalities in "
                f"modality_bands, got {sorted(modality_bands or {})}"
            )
        super().__init__(**kwargs)
        depth = len(self.blocks)
        if out_indices is not None:
            out_indices = list(out_indices)
            bad = [i for i in out_indices if not isinstance(i, int) or not -depth <= i < depth]
            if bad or not out_indices:
                raise ValueError(
                    f"out_indices {out_indices}: {bad or 'empty'} out of range for a backbone with {depth} blocks "
                    f"(use 0..{depth - 1}, or -{depth}..-1 from the end)."
                )
        self.out_indices, _ = feature_take_indices(len(self.blocks), None if out_indices is None else list(out_indices))
        self.fusion = fusion
        self.mixup_eval_seed = mixup_eval_seed
        self.modality_bands = {m: self.resolve(b, None) for m, b in (modality_bands or {}).items()}
        separate = fusion in ("late", "mixup") and self.modality_bands
        width = self.embed_dim * (len(self.modality_bands) if separate else 1)
        self.out_channels = [width] * len(self.out_indices)

    def freeze(self) -> None:
        """Freeze every parameter (TerraTorch's ``freeze_backbone: true``)."""
        self.requires_grad_(False)

    def _modality_inputs(self, x: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, ResolvedBands]]:
        missing = set(x) - set(self.modality_bands)
        if missing:
            raise ValueError(
                f"Modalities {sorted(missing)} have no band list: set backbone_modality_bands with one list per "
                f"modality (configured: {sorted(self.modality_bands)})."
            )
        absent = [m for m in self.modality_bands if m not in x]
        if self.fusion == "late" and absent:
            raise ValueError(
                f"Late fusion concatenates the tokens of every modality in modality_bands "
                f"({sorted(self.modality_bands)}), so out_channels assume all of them; the input lacks {absent}."
            )
        return {m: (x[m], self.modality_bands[m]) for m in self.modality_bands if m in x}

    def forward(self, x: torch.Tensor | Mapping[str, torch.Tensor], **kwargs: Any) -> list[torch.Tensor]:
        """Token sequences of the ``out_indices`` blocks. Extra batch keys (TerraTorch passes them) are ignored."""
        if not isinstance(x, Mapping):
            return self.forward_block_tokens(x, self.out_indices)
        inputs = self._modality_inputs(x)
        if self.fusion == "early":
            stacked = torch.cat([t for t, _ in inputs.values()], dim=1)
            bands = concat_bands(*(b for _, b in inputs.values()), allow_duplicates=self.allow_duplicate_bands)
            return self.forward_block_tokens(stacked, self.out_indices, bands=bands)
        if self.fusion == "mixup":
            return self._forward_mixup(inputs)
        per_modality = [self.forward_block_tokens(t, self.out_indices, bands=b) for t, b in inputs.values()]
        return [torch.cat(level, dim=-1) for level in zip(*per_modality)]

    def mixup_positions(self, batch: int, num_tokens: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[B, N]`` bool: positions view 1 takes from the first modality (half of them, random per sample, as the
        release: argsort of uniform noise). Seeded by ``mixup_eval_seed`` in eval mode."""
        if not self.training and self.mixup_eval_seed is not None:
            gen = torch.Generator().manual_seed(int(self.mixup_eval_seed))
            noise = torch.rand(batch, num_tokens, generator=gen).to(device)
        else:
            noise = torch.rand(batch, num_tokens, device=device)
        keep = noise.argsort(dim=1)[:, : int(num_tokens * 0.5)]
        return torch.zeros(batch, num_tokens, dtype=torch.bool, device=device).scatter_(1, keep, True)

    def _forward_mixup(self, inputs: dict[str, tuple[torch.Tensor, ResolvedBands]]) -> list[torch.Tensor]:
        """BigEarthNet-MM "mixup concatenation" (paper-table §2.4): embed both modalities, build two complementary
        token-mixed views, encode each (CLS + position embedding + blocks), concatenate per block on channels."""
        if len(inputs) != 2:
            raise ValueError(
                f"fusion='mixup' needs both modalities {sorted(self.modality_bands)}, got {sorted(inputs)}"
            )
        (xa, ba), (xb, bb) = inputs.values()
        grid_a, grid_b = self._check_input(xa, ba), self._check_input(xb, bb)
        if grid_a != grid_b:
            raise ValueError(
                f"fusion='mixup' mixes tokens position by position: the modalities must have the same size, got "
                f"{tuple(xa.shape[-2:])} and {tuple(xb.shape[-2:])}"
            )
        ta, tb = self.spectrum_projection(xa, ba), self.spectrum_projection(xb, bb)
        first = self.mixup_positions(ta.shape[0], ta.shape[1], ta.device).unsqueeze(-1)
        views = (torch.where(first, ta, tb), torch.where(first, tb, ta))
        per_view = [self.run_blocks(self.add_cls_and_pos(tokens, grid_a), self.out_indices) for tokens in views]
        return [torch.cat(level, dim=-1) for level in zip(*per_view)]

    def prepare_features_for_image_model(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Tokens -> ``[B, D, h, w]`` maps (TerraTorch's legacy path when no necks are configured)."""
        out = []
        for tokens in features:
            patches = tokens[:, self.num_prefix_tokens :]
            n = patches.shape[1]
            h = int(round(n**0.5))
            if h * h != n:
                raise ValueError(f"{n} patch tokens do not form a square grid: configure ReshapeTokensToImage instead")
            out.append(patches.transpose(1, 2).reshape(patches.shape[0], -1, h, h))
        return out


def _parameters(fn: Any) -> set[str]:
    return {n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}


# Arguments the registered factories take themselves (see _make_factory).
_FACTORY_PARAMS = {"bands", "model_bands", "pretrained", "ckpt_path", "revision", "out_indices", "img_size", "patch_size"}


def _build(
    variant: str,
    bands: Any,
    model_bands: Any,
    pretrained: bool | str,
    ckpt_path: str | Path | None,
    revision: str | None,
    out_indices: Sequence[int] | None,
    img_size: int,
    patch_size: int | None,
    kwargs: dict[str, Any],
) -> SmartiesBackbone:
    if bands is not None and model_bands is not None:
        raise ValueError("Give either bands or model_bands (an alias), not both.")
    if patch_size not in (None, 16):
        raise ValueError(f"SMARTIES uses 16x16 patches; backbone_patch_size={patch_size} is not supported.")
    for key in _TERRATORCH_EXTRAS:
        kwargs.pop(key, None)
    allowed = (_parameters(SmartiesViT.__init__) | _parameters(SmartiesBackbone.__init__)) - _FACTORY_PARAMS
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        hints = {k: difflib.get_close_matches(k, sorted(allowed | _FACTORY_PARAMS), n=1) for k in unknown}
        msg = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
        raise TypeError(f"{variant}: unknown backbone argument(s) {msg}.")
    model = create_smarties_vit(
        variant,
        pretrained,
        ckpt_path,
        revision,
        model_cls=SmartiesBackbone,
        out_indices=out_indices,
        bands=bands if bands is not None else model_bands,
        img_size=img_size,
        **kwargs,
    )
    if model.default_bands is not None:
        log.info("%s bands:\n%s", variant, model.default_bands.describe())
    return model


def _factory_doc(variant: str, what: str) -> str:
    return f"""TerraTorch backbone: {what}.

    Args:
        bands: one band per input channel, in the data's channel order: anything ``resolve_bands`` accepts
            (``HLSBands`` names/members, S2 codes, ``VV``/``VH``, range keys, wavelengths). ``model_bands`` is an alias.
        pretrained: ``True`` loads the released weights from the Hub (needs a pinned ``revision``), a string names
            a declared weights tag.
        ckpt_path: local checkpoint, loaded whatever ``pretrained`` says (local first).
        revision: Hub commit for ``pretrained``.
        out_indices: blocks to return; ``None`` = all.
        img_size: pre-training grid of ``pos_embed`` (other input sizes are interpolated).
        patch_size: must be 16 if given (TerraTorch forwards it).
        **kwargs: ``sensor``, ``modality_bands``, ``fusion`` (early/late/mixup), ``mixup_eval_seed``, ``weighting``,
            ``global_pool``, ``drop_path_rate``, ...;
            TerraTorch's ``padding`` is accepted and ignored (the factory pads); unknown keys raise ``TypeError``.
    """


def _make_factory(variant: str, what: str) -> Any:
    def factory(
        bands: Any = None,
        pretrained: bool | str = False,
        ckpt_path: str | Path | None = None,
        revision: str | None = None,
        out_indices: Sequence[int] | None = None,
        img_size: int = 224,
        model_bands: Any = None,
        patch_size: int | None = None,
        **kwargs: Any,
    ) -> SmartiesBackbone:
        return _build(variant, bands, model_bands, pretrained, ckpt_path, revision, out_indices, img_size, patch_size, kwargs)

    factory.__name__ = factory.__qualname__ = variant  # the registry key is the function name
    factory.__doc__ = _factory_doc(variant, what)
    factory.__module__ = __name__
    return TERRATORCH_BACKBONE_REGISTRY.register(factory)


smarties_vit_tiny_patch16 = _make_factory("smarties_vit_tiny_patch16", "tiny SMARTIES ViT for tests (no released weights)")
smarties_vit_base_patch16 = _make_factory("smarties_vit_base_patch16", "SMARTIES ViT-B/16 (released: smarties-v1-vitb)")
smarties_vit_large_patch16 = _make_factory("smarties_vit_large_patch16", "SMARTIES ViT-L/16 (released: smarties-v1-vitl)")


class SmartiesBackbones(Callback):
    """A no-op Lightning callback whose only job is to be importable from a YAML ``class_path``.

    Naming it under ``trainer.callbacks`` makes ``terratorch fit`` import this package (and so register the
    SMARTIES backbones) before the model is built, from any working directory, with no ``custom_modules_path``.
    """
