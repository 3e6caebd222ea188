"""SMARTIES backbones in TerraTorch's registry.

Importing this module registers ``smarties_vit_tiny_patch16``, ``smarties_vit_base_patch16`` and
``smarties_vit_large_patch16`` in ``TERRATORCH_BACKBONE_REGISTRY``. The package's startup hook
(``_smarties_terratorch_autoload``, armed at interpreter start and by ``import smarties_terratorch``) imports it as
soon as TerraTorch imports its registry. A TerraTorch config then only names the backbone:

.. code-block:: yaml

    model_args:
      backbone: smarties_vit_base_patch16
      backbone_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]   # same order as the data's bands
      backbone_ckpt_path: /data/weights/smarties-v1-vitb.safetensors
      backbone_stats: S2-L2A        # the model normalises its raw input itself (saved with the checkpoint)

The backbone returns the raw token sequence ``[B, 1 + N, D]`` (CLS first, no final norm) of every block in
``out_indices`` (default: all blocks, like Prithvi), which is what TerraTorch's ViT necks expect
(``SelectIndices`` -> ``ReshapeTokensToImage`` -> ``LearnedInterpolateToPyramidal`` -> ``UperNetDecoder``, or
``ReshapeTokensToImage``/``AggregateTokens`` -> ``IdentityDecoder`` for classification).

For TerraTorch runs, :func:`lightning_callbacks` gives the Lightning callbacks the package's entry point adds to
every Trainer (:class:`BindClsTokenNorms`, :class:`CheckBands`); :class:`SmartiesTiledPredict` and one LightningCLI
workaround (:func:`_keep_requested_tiling`) keep the predict-time tiling you ask for over a checkpoint's.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import _smarties_terratorch_autoload
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI
from terratorch.registry import TERRATORCH_BACKBONE_REGISTRY
from timm.models._features import feature_take_indices
from torch import nn

from .models.vit import SmartiesViT, create_smarties_vit, default_cfgs
from .normalization import SmartiesNormalize
from .spectrum import ResolvedBands, concat_bands, resolve_bands

__all__ = [
    "BackboneConfigError",
    "BindClsTokenNorms",
    "CheckBands",
    "SmartiesBackbone",
    "SmartiesTiledPredict",
    "lightning_callbacks",
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
        stats: normalisation statistics applied inside the model (see :class:`SmartiesViT`); with
            ``modality_bands``, one entry per modality (``{S2: S2-L2A, S1: S1-GRD}``), each resolved for that
            modality's bands.
        **kwargs: :class:`SmartiesViT` arguments (``bands``, ``sensor``, ``img_size``, ``weighting``, ...).
    """

    def __init__(
        self,
        out_indices: Sequence[int] | None = None,
        modality_bands: Mapping[str, Any] | None = None,
        fusion: Literal["early", "late", "mixup"] = "early",
        mixup_eval_seed: int | None = 0,
        stats: Any = None,
        **kwargs: Any,
    ) -> None:
        if fusion not in ("early", "late", "mixup"):
            raise ValueError(f"fusion must be 'early', 'late' or 'mixup', got {fusion!r}")
        if fusion == "mixup" and len(modality_bands or {}) != 2:
            raise ValueError(
                "fusion='mixup' (BigEarthNet-MM mixup concatenation) needs exactly two modalities in "
                f"modality_bands, got {sorted(modality_bands or {})}"
            )
        per_modality = isinstance(stats, Mapping) and bool(modality_bands) and set(stats) <= set(modality_bands)
        super().__init__(**kwargs, stats=None if per_modality else stats)
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
        self.modality_norms = nn.ModuleDict()
        if per_modality:
            self.stats = dict(stats)
            for m, spec in stats.items():
                self.modality_norms[m] = SmartiesNormalize.from_spec(
                    spec, self.modality_bands[m], check_units=True, refuse_normalized=True
                )
        separate = fusion in ("late", "mixup") and self.modality_bands
        width = self.embed_dim * (len(self.modality_bands) if separate else 1)
        self.out_channels = [width] * len(self.out_indices)

    def _check_input(self, x: torch.Tensor, bands: ResolvedBands) -> tuple[int, int]:
        h, w = x.shape[-2:]
        if x.ndim == 4 and (h % self.patch_size or w % self.patch_size):
            # SmartiesViT's message points here ("the TerraTorch backbone pads"); this *is* that backbone.
            p = self.patch_size
            raise ValueError(
                f"Input size {h}x{w} is not divisible by the patch size {p}: the SMARTIES backbone does not pad. "
                f"Build the model with TerraTorch's EncoderDecoderFactory (it pads to a multiple of {2 * p} unless "
                f"backbone_padding is null), or pad/crop the input to a multiple of {p} (e.g. 224x224) yourself."
            )
        return super()._check_input(x, bands)

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
        return {
            m: (self.modality_norms[m](x[m]) if m in self.modality_norms else x[m], self.modality_bands[m])
            for m in self.modality_bands
            if m in x
        }

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
        """BigEarthNet-MM "mixup concatenation" (the paper's S1 + S2 protocol): embed both modalities, build two
        complementary token-mixed views, encode each (CLS + position embedding + blocks), concatenate per block."""
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
# TerraTorch's usual backbone keys (Prithvi, timm, torchgeo) that we accept and check (see _check_common_keys).
_COMMON_KEYS = {"drop_path", "in_channels", "in_chans", "num_frames"}


class BackboneConfigError(ValueError):
    """A backbone key with a value this backbone cannot use; the message names the key and the fix."""


def _alias(kwargs: dict[str, Any], alias: str, name: str) -> None:
    """Move ``kwargs[alias]`` to ``kwargs[name]`` (TerraTorch's spelling -> ours), refusing both at once."""
    if alias not in kwargs:
        return
    if name in kwargs:
        raise BackboneConfigError(f"Give either {name} or {alias} (an alias), not both.")
    kwargs[name] = kwargs.pop(alias)


def _check_common_keys(variant: str, bands: Any, kwargs: dict[str, Any]) -> None:
    """TerraTorch's ``num_frames`` and ``in_channels``/``in_chans``: refused or checked against the bands."""
    frames = kwargs.pop("num_frames", None)
    if frames not in (None, 1):
        raise BackboneConfigError(
            f"{variant} encodes one date at a time: backbone_num_frames={frames} is not supported; for time series "
            f"set backbone_use_temporal: true and backbone_temporal_n_timestamps: {frames} (TerraTorch's "
            f"TemporalWrapper runs the backbone per date) and drop backbone_num_frames."
        )
    if "in_channels" in kwargs and "in_chans" in kwargs:
        raise BackboneConfigError("Give either in_channels or in_chans (an alias), not both.")
    key = "in_channels" if "in_channels" in kwargs else "in_chans"
    channels = kwargs.pop(key, None)
    if channels is None:
        return
    if bands is None and kwargs.get("sensor") is None:
        raise BackboneConfigError(
            f"backbone_{key}={channels} alone does not tell {variant} which spectral projection each channel needs: "
            f"set backbone_bands to one band name per channel (e.g. [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]) "
            f"or backbone_sensor."
        )
    try:
        count = len(resolve_bands(bands, sensor=kwargs.get("sensor"), allow_duplicates=True))
    except (ValueError, TypeError):
        return  # the model build below reports the bad band itself, with its own message
    if int(channels) != count:
        raise BackboneConfigError(
            f"backbone_{key}={channels} but backbone_bands has {count} band(s): give one band name per input "
            f"channel (then backbone_{key} is optional)."
        )


def _resolve_hub_revision(variant: str, pretrained: bool | str, ckpt_path: Any, revision: str | None) -> str | None:
    """The Hub commit ``pretrained`` downloads (:func:`~smarties_terratorch.hub.resolve_revision`: the given
    or declared pin, else the repo's current commit, logged; offline the newest cached one), with the error
    phrased in the config's keys."""
    if not pretrained or ckpt_path is not None or revision is not None:
        return revision
    from .checkpoints import WeightsUnavailableError
    from .hub import resolve_revision
    from .models.vit import default_weights_for
    from .weights import get_weights

    try:
        weights = get_weights(pretrained) if isinstance(pretrained, str) else default_weights_for(variant)
    except KeyError as err:  # TerraTorch's registry turns a KeyError into "could not be instantiated from any source"
        raise BackboneConfigError(f"backbone_pretrained: {err.args[0]}") from None
    try:
        return resolve_revision(weights)
    except WeightsUnavailableError as err:
        raise BackboneConfigError(
            f"backbone_pretrained: could not resolve the current commit of {weights.repo_id} on the Hugging Face "
            f"Hub and it is not in the Hub cache ({str(err).split('. ')[0]}); set backbone_revision: <commit> or "
            f"download {weights.filename} and set backbone_ckpt_path: <file>."
        ) from err


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
        raise BackboneConfigError("Give either bands or model_bands (an alias), not both.")
    bands = bands if bands is not None else model_bands
    if patch_size not in (None, 16):
        raise BackboneConfigError(f"SMARTIES uses 16x16 patches; backbone_patch_size={patch_size} is not supported.")
    for key in _TERRATORCH_EXTRAS:
        kwargs.pop(key, None)
    _alias(kwargs, "drop_path", "drop_path_rate")
    allowed = (_parameters(SmartiesViT.__init__) | _parameters(SmartiesBackbone.__init__)) - _FACTORY_PARAMS
    unknown = sorted(set(kwargs) - allowed - _COMMON_KEYS)
    if unknown:
        pool = sorted(allowed | _FACTORY_PARAMS | _COMMON_KEYS)
        hints = {k: difflib.get_close_matches(k, pool, n=1) for k in unknown}
        msg = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
        raise TypeError(f"{variant}: unknown backbone argument(s) {msg}.")
    _check_common_keys(variant, bands, kwargs)
    revision = _resolve_hub_revision(variant, pretrained, ckpt_path, revision)
    model = create_smarties_vit(
        variant,
        pretrained,
        ckpt_path,
        revision,
        model_cls=SmartiesBackbone,
        out_indices=out_indices,
        bands=bands,
        img_size=img_size,
        **kwargs,
    )
    if model.default_bands is not None:
        log.info("%s bands:\n%s", variant, model.default_bands.describe())
    for norm in [model.input_norm, *model.modality_norms.values()]:
        if norm is not None:
            log.info("%s normalises its input with %s (%s)", variant, norm.source, norm.units)
    return model


def _factory_doc(variant: str, what: str) -> str:
    return f"""TerraTorch backbone: {what}.

    Args:
        bands: one band per input channel, in the data's channel order: anything ``resolve_bands`` accepts
            (``HLSBands`` names/members, S2 codes, ``VV``/``VH``, range keys, wavelengths). ``model_bands`` is an alias.
        pretrained: ``True`` downloads the variant's released weights from the Hugging Face Hub (at the declared
            commit, else at the repo's current commit, which is logged), a string names a declared weights tag.
        ckpt_path: local checkpoint, loaded whatever ``pretrained`` says (local first).
        revision: Hub commit for ``pretrained``.
        out_indices: blocks to return; ``None`` = all.
        img_size: pre-training grid of ``pos_embed`` (other input sizes are interpolated).
        patch_size: must be 16 if given (TerraTorch forwards it).
        stats: SMARTIES normalisation statistics the model applies to its raw input itself (YAML:
            ``backbone_stats: S2-L2A``): a table name, a mapping with ``mean``/``std``/``p1``/``p99`` (and
            ``bands``) or a statistics file, resolved for ``bands``. Saved in the checkpoint's hyperparameters,
            so fit, test, predict and ``smarties predict`` all normalise alike; the data module then must not
            normalise (a batch that looks normalised twice is refused; one in other units gets one warning).
        **kwargs: ``sensor``, ``modality_bands``, ``fusion`` (early/late/mixup), ``mixup_eval_seed``, ``weighting``,
            ``global_pool``, ``drop_path_rate`` (``drop_path`` is an alias), ...; ``in_channels``/``in_chans`` are
            checked against the number of bands; ``num_frames`` > 1 is refused (use TerraTorch's
            ``backbone_use_temporal``); TerraTorch's ``padding`` is accepted and ignored (the TerraTorch model pads);
            unknown keys raise ``TypeError``.
    """


def _make_factory(variant: str) -> Any:
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
        try:
            return _build(
                variant, bands, model_bands, pretrained, ckpt_path, revision, out_indices, img_size, patch_size, kwargs
            )
        except KeyError as err:  # TerraTorch's registry would swallow it ("not instantiated from any source")
            raise BackboneConfigError(f"{variant}: {err.args[0] if err.args else err}") from err
        except Exception as err:
            # One line, logged as the error happens: under `terratorch fit -c` jsonargparse reports the exception
            # only inside ~100 lines of union-type diagnostics, so this line is the first the user sees; in Python
            # it precedes the traceback that repeats it.
            log.error("%s", err if str(err).startswith(variant) else f"{variant}: {err}")
            raise

    factory.__name__ = factory.__qualname__ = variant  # the registry key is the function name
    factory.__doc__ = _factory_doc(variant, default_cfgs[variant].description)
    factory.__module__ = __name__
    return TERRATORCH_BACKBONE_REGISTRY.register(factory)


# One registered factory per row of the variant table, spelled out so each can be imported by name
# (tests/test_variants.py checks that none is missing).
smarties_vit_tiny_patch16 = _make_factory("smarties_vit_tiny_patch16")
smarties_vit_base_patch16 = _make_factory("smarties_vit_base_patch16")
smarties_vit_large_patch16 = _make_factory("smarties_vit_large_patch16")


class BindClsTokenNorms(Callback):
    """Binds the model's ``SmartiesClsToken`` necks to the backbone's final norm at ``setup``.

    TerraTorch's own ``ClassificationTask`` builds necks from the channel list alone, so a neck cannot reach the
    backbone by itself (:class:`~smarties_terratorch.tasks.classification.SmartiesClassificationTask` binds when it
    builds its model). The package's Lightning entry point adds this callback to every TerraTorch run.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        model = getattr(pl_module, "model", None)
        # Only a model built with the neck has imported its module; others need nothing (and no import).
        if isinstance(model, torch.nn.Module) and "smarties_terratorch.tasks.classification" in sys.modules:
            from .tasks.classification import bind_cls_token_norms

            bind_cls_token_norms(model)


# The data module attributes that name the channels the model receives, most specific first: TerraTorch's generic
# data modules' ``output_bands`` (``dataset_bands`` when no subset is taken), this package's data modules' ``bands``.
_DATA_BAND_ATTRIBUTES = ("output_bands", "bands", "dataset_bands")


def _data_bands(datamodule: Any) -> tuple[str, list[str | Enum]] | None:
    """``(attribute, band list)`` of the first attribute that names the data's bands, or ``None``.

    Names only: TerraTorch also accepts channel indices there, which say nothing about the spectrum.
    """
    for attribute in _DATA_BAND_ATTRIBUTES:
        value = getattr(datamodule, attribute, None)
        if isinstance(value, (list, tuple)) and value and all(isinstance(b, (str, Enum)) for b in value):
            return attribute, list(value)
    return None


def _band_mismatch(backbone: SmartiesBackbone, datamodule: Any) -> str | None:
    """The error message when the data module and the backbone name different bands, else ``None``."""
    data = _data_bands(datamodule)
    if backbone.default_bands is None or backbone.modality_bands or data is None:
        return None  # one side does not name a single band list: nothing to compare
    attribute, names = data
    try:
        given = resolve_bands(names, sensor=backbone.default_sensor, allow_duplicates=True)
    except (ValueError, TypeError):
        return None  # names this package cannot read (custom channels): not ours to judge
    ours = backbone.default_bands
    # Compared as projections, so a band agrees under any of its names (BLUE, B02, S2:B02).
    if given.spectra == ours.spectra:
        return None
    if len(given) != len(ours):
        how = f"{len(given)} channels but {len(ours)} bands in backbone_bands"
    else:
        differ = [str(i) for i, (a, b) in enumerate(zip(given, ours)) if a.spectrum != b.spectrum]
        how = f"position {', '.join(differ)}"
    names = [b.value if isinstance(b, Enum) else b for b in names]
    return (
        f"The data module's {attribute} {names} do not match the SMARTIES backbone's bands {ours.names} ({how}): "
        f"set model_args.backbone_bands to one band per data channel, in the data's order (backbone_bands: {names})."
    )


class CheckBands(Callback):
    """Stops a run at ``setup`` when the data module and the SMARTIES backbone name different bands.

    Both sides are read through :func:`~smarties_terratorch.spectrum.resolve_bands`, so ``BLUE``, ``B02`` and
    ``S2:B02`` agree. Silent when either side names no bands (a data module without ``output_bands``,
    ``dataset_bands`` or ``bands``; a backbone built from ``modality_bands`` or without bands). The package's
    Lightning entry point adds it to every TerraTorch run.

    Raises:
        BackboneConfigError: naming both lists and ``backbone_bands``, the key to fix.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        backbone = next((m for m in pl_module.modules() if isinstance(m, SmartiesBackbone)), None)
        if datamodule is None or backbone is None:
            return
        message = _band_mismatch(backbone, datamodule)
        if message:
            raise BackboneConfigError(message)


class SmartiesTiledPredict(Callback):
    """Makes ``predict`` tile the way you asked, even when a checkpoint says otherwise.

    ``terratorch predict -c cfg.yaml --ckpt_path run.ckpt`` with ``tiled_inference_parameters`` in ``cfg.yaml`` (or
    on the command line) would otherwise predict untiled whenever the checkpoint was trained without them:
    Lightning's CLI restores the checkpoint's hyperparameters over yours.

    Args:
        tiled_inference_parameters: the tiling to use (TerraTorch's keys: ``h_crop``, ``w_crop``, ``h_stride``,
            ``w_stride``, ``average_patches``, ...), set on the task at the start of ``predict`` and logged.
            ``None``: the command's own ``model.init_args.tiled_inference_parameters``, which the CLI then keeps
            over the checkpoint's (see :func:`_keep_requested_tiling`; in TerraTorch runs with the autoload on this
            happens without the callback).
    """

    def __init__(self, tiled_inference_parameters: dict[str, Any] | None = None) -> None:
        self.tiled_inference_parameters = dict(tiled_inference_parameters) if tiled_inference_parameters else None

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        requested = self.tiled_inference_parameters
        if not requested or not hasattr(pl_module, "tiled_inference_parameters"):
            return  # nothing asked here, or not a TerraTorch task that tiles
        current = pl_module.tiled_inference_parameters
        if dict(current or {}) == requested:
            return
        pl_module.tiled_inference_parameters = dict(requested)
        if "tiled_inference_parameters" in getattr(pl_module, "hparams", {}):
            pl_module.hparams["tiled_inference_parameters"] = dict(requested)
        _log_tiling(requested, current)


def _log_tiling(requested: dict[str, Any], checkpoint: Any) -> None:
    log.info(  # what was asked for: information, not a warning
        "predict: tiled_inference_parameters=%s applied (the checkpoint's hyperparameters had %s)",
        requested,
        checkpoint,
    )


_TILING_KEY = "model.init_args.tiled_inference_parameters"


def _tiling_kept(config: Any) -> bool:
    """Whether this run asks to keep its own tiling: the entry point's callbacks are on (a TerraTorch run with the
    autoload on) or the config lists :class:`SmartiesTiledPredict` under ``trainer.callbacks``."""
    if _smarties_terratorch_autoload.enabled() and "terratorch" in sys.modules:
        return True
    callbacks = config.get("trainer.callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    name = f"{__name__}.{SmartiesTiledPredict.__name__}"
    return any(getattr(c, "class_path", None) == name for c in callbacks)


def _keep_requested_tiling(parse_ckpt_path: Any) -> Any:
    """``LightningCLI._parse_ckpt_path`` that keeps the ``predict`` command's own ``tiled_inference_parameters``
    over the checkpoint's hyperparameters, which it merges over the parsed config.

    The package's one workaround for upstream behaviour; it goes when Lightning lets explicit arguments win (the
    issue we would file, and Lightning-AI/pytorch-lightning#21455 proposes this fix):

        LightningCLI: hyperparameters from --ckpt_path override values given explicitly on the command line
        `predict -c cfg.yaml --ckpt_path run.ckpt --model.init_args.x 1` instantiates the model with the x saved
        in run.ckpt: `_parse_ckpt_path` merges the checkpoint's hparams over the parsed config. Explicitly given
        values (command line, config files) should win over checkpoint hparams, which should act as defaults.
    """

    @functools.wraps(parse_ckpt_path)
    def keep(cli: LightningCLI) -> None:
        config = cli.config
        subcommand = config.get("subcommand")
        sub = config.get(subcommand) if subcommand == "predict" else None
        requested = sub.get(_TILING_KEY) if sub is not None and _tiling_kept(sub) else None
        parse_ckpt_path(cli)
        if not requested:
            return
        config = cli.config[subcommand]
        restored = config.get(_TILING_KEY)
        if dict(restored or {}) != dict(requested):
            config[_TILING_KEY] = requested
            _log_tiling(dict(requested), restored)

    keep.keeps_requested_tiling = True
    return keep


def _install_tiling_workaround() -> None:
    """Wrap ``LightningCLI._parse_ckpt_path`` once (this module may be reloaded; Lightning may drop the method)."""
    parse = getattr(LightningCLI, "_parse_ckpt_path", None)
    if parse is not None and not getattr(parse, "keeps_requested_tiling", False):
        LightningCLI._parse_ckpt_path = _keep_requested_tiling(parse)  # noqa: SLF001 (see _keep_requested_tiling)


_install_tiling_workaround()


def lightning_callbacks() -> list[Callback]:
    """Callbacks for Lightning's ``lightning.pytorch.callbacks_factory`` entry point (TerraTorch runs only):
    :class:`BindClsTokenNorms` and :class:`CheckBands`."""
    return [BindClsTokenNorms(), CheckBands()]


# Registers this package's TerraTorch necks (TemporalLTAE, SmartiesClsToken) whenever the backbones are registered.
from . import necks as _necks  # noqa: E402, F401
