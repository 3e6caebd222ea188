"""Shared machinery of the SMARTIES segmentation data modules (HLS burn scars, DFC2020, SpaceNet7, DynamicEarthNet,
SICKLE).

Every dataset module only knows *where* its samples are and *how to read one* (its real on-disk layout). Everything
else happens here, identically for all datasets, per sample, on read:

1. the channel count of the file is checked against the configured band list (clear error naming the file);
2. ``scale`` converts raw units (e.g. HLS reflectance 0-1 -> x 10000 DN, to reuse the Sentinel-2 L2A statistics);
3. every pixel that is NaN/nodata in *any* band (and any date) becomes ``ignore_index`` in the mask, so it never
   counts in the loss or the metrics, and the image value there is set to the band mean after normalisation (0);
4. SMARTIES' two-step normalisation (``clip((x - p1) / (p99 - p1), 0, 1)``, then ``(x - mean) / std``) with released
   statistics (a table of ``data/normalization.yaml``), explicit values, or statistics computed on the training
   split with the same rule (``statistics: compute``, see :func:`compute_statistics`);
5. optional resize to the model input (``image_size``, images bilinear, masks nearest), random crop for training
   (``crop_size``, PANGAEA's ``RandomCropToEncoder``) and flips (``augment``).

Batches are ``{"image": float [B, C, H, W] (or [B, C, T, H, W] for time series, or a dict of modalities),
"mask": long [B, H, W]}``: what TerraTorch's ``SemanticSegmentationTask`` expects, with nothing else (TerraTorch
forwards extra batch keys to the model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import Dataset

from ..io import write_text
from ..transforms import NormalizationSpec, SmartiesNormalize, compute_statistics
from .base import SmartiesDataModule

__all__ = [
    "IGNORE_INDEX",
    "SegmentationDataset",
    "SmartiesSegmentationDataModule",
    "check_mask_values",
    "compute_statistics",
    "no_files_error",
    "select_channels",
    "statistics_error",
]

log = logging.getLogger(__name__)

#: Mask value of pixels that count neither in the loss nor in the metrics (set ``ignore_index: -1`` in the task).
IGNORE_INDEX = -1

Loader = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def statistics_error(where: str, err: Exception) -> Exception:
    """``err`` (from :meth:`SmartiesNormalize.from_spec`, which names the table or file) prefixed with the data
    module's name, same type."""
    return type(err)(f"{where}: {err}")


def check_mask_values(mask: np.ndarray, num_classes: int, ignore_index: int, where: str) -> None:
    """Raise if ``mask`` holds values other than ``0..num_classes-1`` and ``ignore_index`` (e.g. a 0/255 mask)."""
    bad = np.setdiff1d(np.unique(mask), np.r_[np.arange(num_classes), ignore_index])
    if bad.size:
        raise ValueError(
            f"{where}: mask values {bad.tolist()[:10]} are neither a class (0..{num_classes - 1}) nor the ignore index "
            f"{ignore_index}. Check num_classes, or the label encoding of this file."
        )


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize the last two dims of ``x`` (any leading dims)."""
    if tuple(x.shape[-2:]) == size:
        return x
    lead = x.shape[:-2]
    flat = x.reshape(1, -1, *x.shape[-2:])
    if mode == "nearest":
        out = F.interpolate(flat.float(), size=size, mode="nearest-exact")
    else:
        out = F.interpolate(flat, size=size, mode=mode, align_corners=False, antialias=True)
    return out.reshape(*lead, *size).to(x.dtype)


class SegmentationDataset(Dataset):
    """Samples of one split: ``load(item) -> (raw image [C, H, W] or [C, T, H, W] float with NaN = nodata,
    mask [H, W] int with ignore_index already applied)`` plus the shared steps of the module docstring.

    Args:
        items: one entry per sample, passed to ``load``.
        load: reads one sample in its dataset's layout.
        normalize: SMARTIES normalisation (``[..., C, H, W]``).
        num_channels: expected ``C``.
        describe: ``item -> str`` naming the sample's files in errors.
        ignore_index: mask value of ignored pixels.
        num_classes: if given, mask values are validated (:func:`check_mask_values`).
        scale: multiplies the raw image before normalising.
        image_size: resize image (bilinear) and mask (nearest) to this side (``None`` = keep).
        crop_size: random crop of this side (training), ``None`` = none.
        augment: random horizontal/vertical flips (training).
        groups: split the channels into a dict of modalities ``{name: [channel indices]}`` (multi-modal backbones).
    """

    def __init__(
        self,
        items: Sequence[Any],
        load: Loader,
        normalize: SmartiesNormalize | Callable[[], SmartiesNormalize],
        num_channels: int,
        describe: Callable[[Any], str] = str,
        ignore_index: int = IGNORE_INDEX,
        num_classes: int | None = None,
        scale: float = 1.0,
        image_size: int | None = None,
        crop_size: int | None = None,
        augment: bool = False,
        groups: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.items = list(items)
        self.load = load
        self._normalize = normalize
        self.num_channels = num_channels
        self.describe = describe
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.scale = scale
        self.image_size = image_size
        self.crop_size = crop_size
        self.augment = augment
        self.groups = {k: list(v) for k, v in groups.items()} if groups else None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def normalize(self) -> SmartiesNormalize:
        if not isinstance(self._normalize, SmartiesNormalize):
            self._normalize = self._normalize()  # lazily computed statistics
        return self._normalize

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw ``(image, mask)`` of a sample, channel count checked and ``scale`` applied (no normalisation)."""
        item = self.items[index]
        image, mask = self.load(item)
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in (3, 4) or image.shape[0] != self.num_channels:
            raise ValueError(
                f"{self.describe(item)}: image has shape {tuple(image.shape)} (channels first) but {self.num_channels} "
                f"bands are configured. The band list must name every channel of the file, in file order."
            )
        if tuple(mask.shape) != tuple(image.shape[-2:]) and self.image_size is None:
            raise ValueError(
                f"{self.describe(item)}: mask shape {tuple(mask.shape)} differs from the image's "
                f"{tuple(image.shape[-2:])}; set image_size to resample both to a common size."
            )
        if self.num_classes is not None:
            check_mask_values(mask, self.num_classes, self.ignore_index, self.describe(item))
        if self.scale != 1.0:
            image = image * np.float32(self.scale)
        return image, np.asarray(mask, dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.raw(index)
        x = torch.from_numpy(np.ascontiguousarray(image))
        y = torch.from_numpy(np.ascontiguousarray(mask))
        invalid = torch.isnan(x).reshape(-1, *x.shape[-2:]).any(dim=0)
        if x.ndim == 4:  # [C, T, H, W] -> normalise per channel over [T, C, H, W]
            x = self.normalize(x.transpose(0, 1)).transpose(0, 1)
        else:
            x = self.normalize(x)
        x = torch.nan_to_num(x, nan=0.0)  # 0 = the band mean after standardisation; those pixels are ignored
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            x = _resize(x, size, "bilinear")
            y = _resize(y, size, "nearest")
            invalid = _resize(invalid, size, "nearest")
        y = torch.where(invalid, torch.full_like(y, self.ignore_index), y)
        if self.crop_size is not None:
            x, y = self._random_crop(x, y, self.crop_size)
        if self.augment:
            if torch.rand(()) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            if torch.rand(()) < 0.5:
                x, y = x.flip(-2), y.flip(-2)
        x = x.contiguous()
        image_out: Any = {k: x[idx] for k, idx in self.groups.items()} if self.groups else x
        return {"image": image_out, "mask": y.contiguous()}

    def _random_crop(self, x: torch.Tensor, y: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = y.shape[-2:]
        if h < size or w < size:
            raise ValueError(f"crop_size {size} is larger than the sample ({h} x {w}); lower crop_size.")
        top = int(torch.randint(0, h - size + 1, ()))
        left = int(torch.randint(0, w - size + 1, ()))
        return x[..., top : top + size, left : left + size], y[..., top : top + size, left : left + size]


class SmartiesSegmentationDataModule(SmartiesDataModule):
    """Base of the SMARTIES segmentation data modules: subclasses implement :meth:`items` and :meth:`load`.

    Args:
        statistics: ``"compute"`` (two-step statistics of the training split, :func:`compute_statistics`), a table
            name of ``data/normalization.yaml`` (with ``statistics_bands``), ``{mean, std, p1, p99}`` lists (one
            value per delivered band), or the path of a JSON/YAML file holding them (what ``smarties stats``
            writes); see :meth:`SmartiesNormalize.from_spec`.
        statistics_bands: for a table name, the table band of each delivered band (``None`` = module default).
        statistics_file: with ``"compute"``: a YAML file to load the statistics from if it exists, else to write
            them to after computing (so they are computed once per dataset; written atomically).
        stats_samples: number of training samples (evenly spaced) used by ``"compute"``.
        scale: multiplies raw values before normalising (units of the statistics).
        ignore_index: mask value of ignored pixels (nodata, unlabelled); use the same in the task.
        num_classes: if given, every mask is checked to hold only ``0..num_classes-1`` and ``ignore_index``.
        image_size: resize every sample to this side (``None`` = native size).
        crop_size: random training crop (PANGAEA's ``RandomCropToEncoder``; ``None`` = whole sample).
        augment: random flips in training.
        batch_size, num_workers, drop_last: loaders (:class:`SmartiesDataModule`).
    """

    #: Name used in messages.
    dataset_name = "dataset"

    def __init__(
        self,
        statistics: str | dict[str, list[float]] = "compute",
        statistics_bands: list[str] | None = None,
        statistics_file: str | None = None,
        stats_samples: int = 32,
        scale: float = 1.0,
        ignore_index: int = IGNORE_INDEX,
        num_classes: int | None = None,
        image_size: int | None = None,
        crop_size: int | None = None,
        augment: bool = False,
        batch_size: int = 8,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, drop_last=drop_last)
        self.statistics = statistics
        self.statistics_bands = statistics_bands
        self.statistics_file = statistics_file
        self.stats_samples = stats_samples
        self.scale = scale
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.image_size = image_size
        self.crop_size = crop_size
        self.augment = augment
        self._normalize: SmartiesNormalize | None = None

    # --- to implement -------------------------------------------------------------------------------------------
    @property
    def output_bands(self) -> list[str]:
        """Names of the delivered channels, in order."""
        raise NotImplementedError

    def items(self, split: str) -> list[Any]:
        """Sample descriptors of ``split`` (``train``, ``val``, ``test``); raise if the data are not found."""
        raise NotImplementedError

    def load(self, item: Any) -> tuple[np.ndarray, np.ndarray]:
        """Read one sample: raw image ``[C, H, W]``/``[C, T, H, W]`` (NaN = nodata) and mask ``[H, W]``."""
        raise NotImplementedError

    def describe(self, item: Any) -> str:
        """Where a sample comes from, for error messages."""
        return f"{self.dataset_name} sample {item}"

    def default_statistics_bands(self) -> list[str] | None:
        """Table bands for a table name when ``statistics_bands`` is not given."""
        return None

    def modality_groups(self) -> dict[str, list[int]] | None:
        """Split delivered channels into modalities (``None`` = one tensor)."""
        return None

    # --- shared -------------------------------------------------------------------------------------------------
    def build_dataset(self, split: str) -> SegmentationDataset:
        train = split == "train"
        return SegmentationDataset(
            self.items(split),
            self.load,
            self.normalizer(),
            num_channels=len(self.output_bands),
            describe=self.describe,
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
            scale=self.scale,
            image_size=self.image_size,
            crop_size=self.crop_size if train else None,
            augment=self.augment and train,
            groups=self.modality_groups(),
        )

    def normalizer(self) -> SmartiesNormalize:
        """The normalisation (built, loaded or computed once).

        Raises:
            FileNotFoundError, ValueError: statistics that do not fit the delivered bands or cannot be read; the
                message names the data module, the table or file, and the channel counts.
        """
        if self._normalize is None:
            stats: NormalizationSpec = self.statistics
            if isinstance(stats, str) and stats.lower() == "compute":
                stats = self._computed_statistics()
            bands = self.statistics_bands if self.statistics_bands is not None else self.default_statistics_bands()
            try:
                # all_bands: a table's rows are picked by name, including bands SMARTIES skips by default (VV/VH).
                self._normalize = SmartiesNormalize.from_spec(
                    stats, bands, channels=len(self.output_bands), all_bands=True
                )
            except (ValueError, TypeError, FileNotFoundError) as err:
                raise statistics_error(type(self).__name__, err) from None
        return self._normalize

    def _computed_statistics(self) -> dict[str, list[float]] | Path:
        path = Path(self.statistics_file).expanduser() if self.statistics_file else None
        if path is not None and path.is_file():
            log.info("%s: SMARTIES statistics loaded from %s", self.dataset_name, path)
            return path  # read by from_spec, so errors name the file
        stats = self.compute_statistics()
        if path is not None:
            write_text(path, yaml.safe_dump(stats, sort_keys=False))
        log.warning(
            "%s: SMARTIES statistics computed on %d training samples (bands %s); put them under "
            "data.init_args.statistics to skip this step next time:\n%s",
            self.dataset_name,
            min(self.stats_samples, len(self.items("train"))),
            self.output_bands,
            yaml.safe_dump(stats, sort_keys=False, default_flow_style=True),
        )
        return stats

    def compute_statistics(self, max_samples: int | None = None, **kwargs: Any) -> dict[str, list[float]]:
        """Two-step SMARTIES statistics (:func:`compute_statistics`) of up to ``max_samples`` training samples
        (default ``stats_samples``), in raw units times ``scale``."""
        items = self.items("train")
        n = min(max_samples or self.stats_samples, len(items))
        picks = np.unique(np.linspace(0, len(items) - 1, n).round().astype(int)) if n else []
        ds = SegmentationDataset(
            [items[i] for i in picks],
            self.load,
            lambda: None,  # type: ignore[arg-type,return-value]  # raw() does not normalise
            len(self.output_bands),
            self.describe,
            scale=self.scale,
            image_size=self.image_size,
        )
        return compute_statistics((ds.raw(i)[0] for i in range(len(ds))), band_names=self.output_bands, **kwargs)


def select_channels(all_bands: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[int]:
    """Positions of ``wanted`` band names in ``all_bands`` (``None`` = all), with a clear error for unknown names."""
    if wanted is None:
        return list(range(len(all_bands)))
    index = {b: i for i, b in enumerate(all_bands)}
    unknown = [b for b in wanted if b not in index]
    if unknown:
        raise ValueError(f"{where}: bands {unknown} are not channels of this dataset ({list(all_bands)}).")
    return [index[b] for b in wanted]


def no_files_error(folder: Path, pattern: str, what: str) -> FileNotFoundError:
    """The error for a folder without matching files (or a missing folder)."""
    if not folder.is_dir():
        return FileNotFoundError(f"{what}: folder {folder} does not exist.")
    others = sorted(p.name for p in folder.iterdir())[:5]
    seen = f" It contains e.g. {others}." if others else " It is empty."
    return FileNotFoundError(f"{what}: no files matching {pattern!r} in {folder}.{seen}")
