"""SMARTIES as a PANGAEA encoder (``pangaea-bench``), without editing PANGAEA.

PANGAEA builds its encoder with ``hydra.utils.instantiate(cfg.encoder)``, calls ``load_encoder_weights(logger)``
and then feeds ``forward({modality: tensor})``; its UPerNet wants one feature map per ``output_layers`` entry.
:class:`SmartiesEncoder` implements that contract on top of :class:`~smarties_terratorch.models.vit.SmartiesViT`.

Any band set works, as with PANGAEA's DOFA config: ``input_bands: ${dataset.bands}`` hands every dataset band to
the encoder, and each name goes through :func:`plan_bands`:

1. a per-dataset map (``dataset_band_maps[<dataset_name>][<modality>]``) for datasets whose Sentinel-2-style names
   mislead (DynamicEarthNet's Planet ``B5`` is NIR, SpaceNet 7 is 8-bit RGB, ...), then the per-modality
   ``band_map``, then the name itself; the result is anything
   :func:`~smarties_terratorch.spectrum.resolve_bands` accepts (range key, ``SENSOR:BAND``, wavelength);
2. a map value ``null`` drops the channel (bands SMARTIES has no projection for: S2 ``B10``, cloud masks, SAR
   ratios);
3. channels PANGAEA's preprocessing zero-fills are dropped too. ``BandPadding`` pads exactly the encoder bands
   whose names are not in the dataset's band list, so comparing ``input_bands`` with ``dataset_bands``
   (``${dataset.bands}``) at construction tells which channels will be zeros; no pixel values are inspected.

SMARTIES averages the projections of the bands it is given, so a dropped channel is left out of that average
rather than entering it as a fake zero band. All modalities are fused early: their kept channels form one band
list and one ViT pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from logging import Logger
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn

from ..checkpoints import CheckpointError, WeightsUnavailableError, refuse_url
from ..models.vit import SmartiesViT, default_cfgs, variant_of
from ..pretrained import load_pretrained
from ..spectrum import ResolvedBands, concat_bands, resolve_bands
from ..weights import WEIGHTS

__all__ = ["PANGAEA_AVAILABLE", "BandPlan", "PangaeaEncoderBase", "SmartiesEncoder", "plan_bands"]

log = logging.getLogger(__name__)


class _StandInEncoder(nn.Module):
    """Local stand-in for ``pangaea.encoders.base.Encoder`` when PANGAEA is not importable.

    Same constructor, attributes and helper methods as PANGAEA's base class (``pangaea-bench`` snapshot
    ``f20f3d3``), so the SMARTIES encoder behaves the same with or without PANGAEA. It never downloads:
    ``download_url`` is only stored (weights come from a local file).
    """

    def __init__(
        self,
        model_name: str,
        input_bands: dict[str, list[str]],
        input_size: int,
        embed_dim: int,
        output_layers: list[int],
        output_dim: int | list[int],
        multi_temporal: bool,
        multi_temporal_output: bool,
        pyramid_output: bool,
        encoder_weights: str | Path,
        download_url: str,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.input_bands = input_bands
        self.input_size = input_size
        self.embed_dim = embed_dim
        self.output_layers = output_layers
        self.output_dim = [output_dim] * len(output_layers) if isinstance(output_dim, int) else list(output_dim)
        self.encoder_weights = encoder_weights
        self.multi_temporal = multi_temporal
        self.multi_temporal_output = multi_temporal_output
        self.pyramid_output = pyramid_output
        self.download_url = download_url

    def load_encoder_weights(self, logger: Logger) -> None:
        raise NotImplementedError

    def enforce_single_temporal(self) -> None:
        """Called by PANGAEA's Siamese change-detection decoders; a no-op, as in PANGAEA."""

    def parameters_warning(
        self,
        missing: dict[str, torch.Size],
        incompatible_shape: dict[str, tuple[torch.Size, torch.Size]],
        logger: Logger,
    ) -> None:
        """Log parameters the checkpoint lacks and those whose shapes differ (model shape, file shape)."""
        if missing:
            logger.warning("Missing parameters:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(missing.items())))
        if incompatible_shape:
            logger.warning(
                "Incompatible parameters:\n"
                + "\n".join(f"{k}: expected {v[0]} but found {v[1]}" for k, v in sorted(incompatible_shape.items()))
            )

    def freeze(self) -> None:
        """Freeze every parameter."""
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError


def _pangaea_base() -> tuple[type[nn.Module], bool]:
    try:
        from pangaea.encoders.base import Encoder
    except ModuleNotFoundError as err:
        # Only "PANGAEA is absent" falls back (PyPI's unrelated `pangaea` package has no `encoders`); a PANGAEA
        # checkout with a missing dependency of its own (gdown, ...) must fail loudly, not run on the stand-in.
        if err.name not in ("pangaea", "pangaea.encoders", "pangaea.encoders.base"):
            raise
        return _StandInEncoder, False
    return Encoder, True


#: The base class in use: PANGAEA's ``Encoder`` when ``pangaea`` is importable, else the local stand-in.
PangaeaEncoderBase, PANGAEA_AVAILABLE = _pangaea_base()


# ------------------------------------------------------------------------------------------------ band plan
@dataclass(frozen=True)
class BandPlan:
    """How the encoder's input channels reach SMARTIES.

    Attributes:
        modalities: ``input_bands`` keys, in the order the channels are concatenated.
        keep: per modality, the positions of its channels that are projected.
        bands: the resolved bands of the kept channels, in concatenated order.
        dropped: ``(modality, band, reason)`` of every channel left out.
    """

    modalities: tuple[str, ...]
    keep: dict[str, tuple[int, ...]]
    bands: ResolvedBands
    dropped: tuple[tuple[str, str, str], ...]

    def describe(self) -> str:
        """The resolution table plus the dropped channels, for logs."""
        lines = [self.bands.describe()]
        lines += [f"dropped {m}:{b} ({why})" for m, b, why in self.dropped]
        return "\n".join(lines)


def _lookup(table: Mapping[str, Any] | None, name: str) -> tuple[bool, Any]:
    """``(found, value)`` for ``name`` in a band map; exact key first, then case-insensitive."""
    if not table:
        return False, None
    if name in table:
        return True, table[name]
    folded = {str(k).upper(): v for k, v in table.items()}
    if name.upper() in folded:
        return True, folded[name.upper()]
    return False, None


def _dataset_maps(dataset_band_maps: Mapping[str, Any] | None, dataset_name: str | None) -> Mapping[str, Any]:
    found, maps = _lookup(dataset_band_maps, dataset_name) if dataset_name else (False, None)
    return maps if found and maps else {}


def plan_bands(
    input_bands: Mapping[str, Sequence[str]],
    band_map: Mapping[str, Mapping[str, Any]] | None = None,
    dataset_band_maps: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    dataset_name: str | None = None,
    dataset_bands: Mapping[str, Sequence[str]] | None = None,
    weighting: str = "released",
    allow_duplicates: bool = False,
) -> BandPlan:
    """Resolve PANGAEA band names per modality to SMARTIES projections (see the module docstring).

    Args:
        input_bands: modality -> band names the encoder receives, in channel order (PANGAEA's ``input_bands``).
        band_map: modality -> {name: target}; a target is anything ``resolve_bands`` accepts, or ``None`` to drop.
        dataset_band_maps: dataset name -> modality -> {name: target}, applied before ``band_map``.
        dataset_name: PANGAEA's ``dataset.dataset_name`` (case-insensitive key of ``dataset_band_maps``).
        dataset_bands: modality -> the dataset's band names (``${dataset.bands}``). Encoder bands absent from it
            are zero-filled by PANGAEA's ``BandPadding`` and dropped here. ``None``: every channel is real.
        weighting: averaged-projection weighting (``resolve_bands``).
        allow_duplicates: accept two channels of one range (e.g. ascending and descending VV).

    Raises:
        ValueError: an unknown or unsupported band (the message says how to map it), duplicates, or no band left.
    """
    ds_maps = _dataset_maps(dataset_band_maps, dataset_name)
    keep: dict[str, tuple[int, ...]] = {}
    per_modality: list[ResolvedBands] = []
    dropped: list[tuple[str, str, str]] = []
    for modality, names in input_bands.items():
        names = [str(n) for n in names]
        available = None if dataset_bands is None else {str(b) for b in dataset_bands.get(modality, ())}
        kept, overrides = [], {}
        for pos, name in enumerate(names):
            if available is not None and name not in available:
                dropped.append((modality, name, "not in the dataset: PANGAEA's BandPadding fills it with zeros"))
                continue
            found, target = _lookup(ds_maps.get(modality), name)
            where = f"dataset_band_maps.{dataset_name}.{modality}"
            if not found:
                found, target = _lookup((band_map or {}).get(modality), name)
                where = f"band_map.{modality}"
            if found and target is None:
                dropped.append((modality, name, f"mapped to null in {where}"))
                continue
            if found:
                overrides[name] = target
            kept.append(pos)
        keep[modality] = tuple(kept)
        if not kept:
            continue
        try:
            per_modality.append(
                resolve_bands(
                    [names[i] for i in kept],
                    weighting=weighting,
                    allow_duplicates=True,  # checked once below, across modalities
                    overrides=overrides,
                )
            )
        except ValueError as err:
            raise ValueError(
                f"SMARTIES cannot use the {modality!r} bands {names} of dataset {dataset_name!r}: {err} Map the band "
                f"in the encoder config, e.g. `++encoder.dataset_band_maps.{dataset_name}.{modality}.<BAND>=<range key "
                f"or SENSOR:BAND>`, or `=null` to leave the channel out."
            ) from err
    if not per_modality:
        raise ValueError(
            f"No band of {dict(input_bands)} reaches SMARTIES (dropped: {dropped}): check encoder.input_bands "
            f"against the dataset's bands and the band maps."
        )
    try:
        bands = concat_bands(*per_modality, allow_duplicates=allow_duplicates)
    except ValueError as err:
        raise ValueError(
            f"{err} In PANGAEA: set encoder.allow_duplicate_bands=true when the channels are distinct acquisitions "
            f"of one band (ascending and descending SAR), or map one of them to null."
        ) from err
    return BandPlan(tuple(input_bands), keep, bands, tuple(dropped))


def _plain(obj: Any) -> Any:
    """OmegaConf containers (Hydra passes them) -> dicts and lists; everything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # OmegaConf comes with Hydra; without it the inputs are plain already
        return obj
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    return obj


# ------------------------------------------------------------------------------------------------ encoder
class SmartiesEncoder(PangaeaEncoderBase):
    """SMARTIES ViT as a PANGAEA encoder (a real subclass of PANGAEA's ``Encoder`` when PANGAEA is importable).

    Args:
        input_bands: modality -> band names, in channel order (``${dataset.bands}`` in the shipped configs).
        input_size: side of the square input PANGAEA crops/resizes/tiles to; a multiple of ``patch_size``.
        embed_dim: token width (768 for ViT-B, 1024 for ViT-L).
        output_layers: blocks whose outputs are returned, strictly increasing (PANGAEA: B ``[3, 5, 7, 11]``,
            L ``[7, 11, 15, 23]``).
        output_dim: channels per returned map; must equal ``embed_dim`` (no projection is added).
        encoder_weights: local weights file (``.safetensors`` in the official layout, or ``.pt``/``.pth``), a
            declared weights tag, or ``None`` for random initialisation.
        download_url: accepted for PANGAEA compatibility; the shipped configs leave it empty (local files only).
        depth, num_heads, patch_size, mlp_ratio: ViT architecture.
        band_map: modality -> {band name: target} (see :func:`plan_bands`).
        dataset_band_maps: dataset name -> modality -> {band name: target}.
        dataset_name: PANGAEA's ``dataset.dataset_name``, selecting the entry of ``dataset_band_maps``.
        dataset_bands: the dataset's bands (``${dataset.bands}``), to know which channels PANGAEA zero-pads.
        multi_temporal: ``False`` (default, like DOFA/CROMA): inputs ``(B, C, H, W)`` (or ``(B, C, 1, H, W)``),
            outputs ``(B, D, h, w)``; PANGAEA's multi-temporal decoders then call the encoder once per frame.
            ``True``: inputs ``(B, C, T, H, W)``, all frames go through the ViT in one batch and outputs are
            ``(B, D, T, h, w)`` (``multi_temporal_output``), for ``seg_upernet_mt_*`` decoders.
        allow_duplicate_bands: accept channels resolving to the same range (BioMassters' ascending/descending
            SAR); they then count once each in SMARTIES' band average.
        weighting: averaged-projection weighting (``"released"`` or ``"inverse_distance"``).
        stats: SMARTIES normalisation statistics applied inside the encoder to the kept channels (a table name
            such as ``S2-L2A``, a mapping or a statistics file; rows found through the band plan, so
            ``B5 -> near_infrared_1`` picks the NIR row). The encoder then needs raw values: use PANGAEA's
            preprocessing without normalisation (``seg_wo_norm``). ``None`` (default): PANGAEA normalises.
        model_name: name in PANGAEA's logs.
    """

    def __init__(
        self,
        input_bands: Mapping[str, Sequence[str]],
        input_size: int = 224,
        embed_dim: int = 768,
        output_layers: Sequence[int] = (3, 5, 7, 11),
        output_dim: int | Sequence[int] | None = None,
        encoder_weights: str | Path | None = None,
        download_url: str | None = None,
        depth: int = 12,
        num_heads: int = 12,
        patch_size: int = 16,
        mlp_ratio: float = 4.0,
        band_map: Mapping[str, Mapping[str, Any]] | None = None,
        dataset_band_maps: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
        dataset_name: str | None = None,
        dataset_bands: Mapping[str, Sequence[str]] | None = None,
        multi_temporal: bool | int = False,
        allow_duplicate_bands: bool = False,
        weighting: str = "released",
        stats: Any = None,
        model_name: str = "smarties",
    ) -> None:
        input_bands = {str(m): [str(b) for b in bands] for m, bands in _plain(input_bands).items()}
        output_layers = [int(i) for i in _plain(output_layers)]
        output_dim = embed_dim if output_dim is None else _plain(output_dim)
        if (
            not output_layers
            or any(not 0 <= i < depth for i in output_layers)
            or output_layers != sorted(set(output_layers))
        ):
            raise ValueError(
                f"output_layers {output_layers} must be strictly increasing block indices in 0..{depth - 1} "
                f"(PANGAEA's ViT-B configs use [3, 5, 7, 11], ViT-L [7, 11, 15, 23])."
            )
        dims = [output_dim] * len(output_layers) if isinstance(output_dim, int) else list(output_dim)
        if dims != [embed_dim] * len(output_layers):
            raise ValueError(
                f"output_dim {output_dim} must be embed_dim ({embed_dim}) for each of the {len(output_layers)} "
                f"output layers: the encoder returns raw ViT tokens."
            )
        if input_size % patch_size:
            raise ValueError(f"input_size {input_size} must be a multiple of patch_size {patch_size}.")
        super().__init__(
            model_name=model_name,
            input_bands=input_bands,
            input_size=input_size,
            embed_dim=embed_dim,
            output_layers=output_layers,
            output_dim=dims,
            multi_temporal=bool(multi_temporal),
            multi_temporal_output=bool(multi_temporal),
            pyramid_output=False,
            encoder_weights=encoder_weights,
            download_url=download_url,
        )
        self.patch_size = patch_size
        self.dataset_name = dataset_name
        self.band_plan = plan_bands(
            input_bands,
            band_map=_plain(band_map),
            dataset_band_maps=_plain(dataset_band_maps),
            dataset_name=dataset_name,
            dataset_bands=_plain(dataset_bands),
            weighting=weighting,
            allow_duplicates=allow_duplicate_bands,
        )
        for modality, name, why in self.band_plan.dropped:
            log.info("SMARTIES encoder: channel %s:%s is left out (%s)", modality, name, why)
        self.vit = SmartiesViT(
            img_size=input_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            weighting=weighting,
            allow_duplicate_bands=allow_duplicate_bands,
            bands=self.band_plan.bands,
            stats=_plain(stats),
        )

    # ------------------------------------------------------------------ weights
    def _weights_file(self) -> Path | str:
        source = str(self.encoder_weights)
        refuse_url(source, "encoder weights")
        path = Path(source).expanduser()
        if path.is_file() or source in WEIGHTS:
            return source
        variant = variant_of(self.embed_dim, len(self.vit.blocks))
        w = default_cfgs[variant].pretrained_cfg if variant else None
        fetch = ""
        if w is not None:
            fetch = (
                f" Download it on a machine with internet access (`hf download {w.repo_id} {w.filename} "
                f"--local-dir {path.parent}`) and copy it there,"
            )
        raise WeightsUnavailableError(
            f"SMARTIES encoder weights {source!r} not found (resolved to {path.resolve()}; relative paths are taken "
            f"from the directory PANGAEA runs in, {Path.cwd()}).{fetch} or point the config at the file: "
            f"encoder.encoder_weights=/abs/path/to/{path.name}. Use encoder.encoder_weights=null for random weights."
        )

    def load_encoder_weights(self, logger: Logger) -> None:
        """Load the official weights (``encoder_weights``) through the package's one loader
        (:func:`~smarties_terratorch.pretrained.load_pretrained`, as the timm factories do).

        Matches checkpoint tensors to the ViT's parameters by name (wrapper prefixes stripped, ``pos_embed``
        resampled to ``input_size``), reports missing and shape-mismatched parameters through PANGAEA's
        ``parameters_warning`` and loads the rest. Also logs the band plan, so it lands in PANGAEA's train log.

        Raises:
            WeightsUnavailableError: the file does not exist (the message names it and where to put it).
            CheckpointError: unreadable file or another architecture (ViT-L weights for a ViT-B config).
        """
        logger.info("SMARTIES band plan (%s):\n%s", self.dataset_name, self.band_plan.describe())
        if self.encoder_weights is None:
            logger.warning("SMARTIES encoder: encoder_weights is null, the encoder keeps its random initialisation.")
            return
        report = load_pretrained(
            self.vit,
            self._weights_file(),  # the ViT's own filter and architecture check apply, as in the timm factories
            strict=False,  # PANGAEA reports missing and mismatched parameters itself (parameters_warning)
            skip_mismatched=True,
        )
        own = dict(self.vit.named_parameters())
        if not report.loaded_keys:
            keys = sorted([*report.unexpected_keys, *report.ignored_keys, *report.mismatched])
            raise CheckpointError(f"{report.path} holds no tensor of the SMARTIES encoder (keys: {keys[:8]}...).")
        missing = {k: own[k].shape for k in report.missing_keys if k in own}
        self.parameters_warning(missing, report.mismatched, logger)
        ignored = sorted([*report.ignored_keys, *report.unexpected_keys])
        if ignored:
            logger.info("SMARTIES encoder: ignored checkpoint tensors not in the encoder: %s", ignored)
        loaded = len([k for k in report.loaded_keys if k in own])
        logger.info("Loaded SMARTIES weights from %s (%d/%d parameters).", report.path, loaded, len(own))

    # ------------------------------------------------------------------ forward
    def _gather(self, x: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int | None]:
        """Kept channels of every modality, concatenated: ``(B*T, C', H, W)`` and ``T`` (``None`` for 4-D input)."""
        missing = [m for m in self.band_plan.modalities if m not in x]
        if missing:
            raise ValueError(f"Input lacks modalities {missing}; the encoder expects {list(self.input_bands)}.")
        parts, frames = [], set()
        for m in self.band_plan.modalities:
            t = x[m]
            if t.ndim not in (4, 5) or t.shape[1] != len(self.input_bands[m]):
                raise ValueError(
                    f"Modality {m!r}: expected (B, {len(self.input_bands[m])}, H, W) or (B, "
                    f"{len(self.input_bands[m])}, T, H, W) for bands {self.input_bands[m]}, got {tuple(t.shape)}."
                )
            frames.add(t.shape[2] if t.ndim == 5 else None)
            keep = self.band_plan.keep[m]
            if keep:
                parts.append(t if len(keep) == t.shape[1] else t[:, list(keep)])
        if len(frames) > 1:
            raise ValueError(f"Modalities mix single- and multi-temporal inputs or time steps: {frames}.")
        (steps,) = frames
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if steps is not None and steps > 1 and not self.multi_temporal:
            raise ValueError(
                f"Got {steps} time steps but the encoder is single-temporal: use a multi-temporal decoder "
                f"(seg_upernet_mt_ltae/_linear, which call the encoder per frame) or encoder.multi_temporal=true."
            )
        if steps is not None:
            x = rearrange(x, "b c t h w -> (b t) c h w")
        return x, steps

    def forward(self, x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """PANGAEA input dict -> one map per ``output_layers`` entry.

        Args:
            x: modality -> ``(B, C_m, H, W)`` or ``(B, C_m, T, H, W)``, ``C_m = len(input_bands[m])`` in
                ``input_bands`` order; H and W multiples of the patch size (normally ``input_size``).

        Returns:
            ``(B, D, H/16, W/16)`` maps (raw block outputs, no final norm), or ``(B, D, T, H/16, W/16)`` when
            ``multi_temporal`` (a 4-D input then counts as ``T = 1``).
        """
        tokens, steps = self._gather(x)
        feats = self.vit.forward_intermediates(
            tokens, indices=self.output_layers, bands=self.band_plan.bands, intermediates_only=True
        )
        if self.multi_temporal:
            return [rearrange(f, "(b t) d h w -> b d t h w", t=steps or 1) for f in feats]
        return feats
