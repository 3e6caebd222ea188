"""Lightning side of the SMARTIES segmentation data modules (HLS burn scars, DFC2020, SpaceNet7, DynamicEarthNet,
SICKLE, land cover).

The readers live in :mod:`smarties_terratorch.datasets` (one torch ``Dataset`` per dataset, pixels through the
raster layer, SMARTIES normalisation per sample: see :mod:`smarties_terratorch.datasets.segmentation`). A data
module here only knows

- which samples form each split (:meth:`SmartiesSegmentationDataModule.items`, the dataset's protocol),
- the normalisation statistics (a released table, explicit values, or ``statistics: compute`` on the training
  split, :func:`compute_statistics`),
- the training augmentations (torchvision v2: random crop, PANGAEA's ``RandomCropToEncoder``; flips; rotations by
  multiples of 90 degrees, applied jointly to image and mask, :func:`segmentation_augmentation`),
- and the loaders (:class:`~smarties_terratorch.datamodules.base.SmartiesDataModule`).

Batches are ``{"image": float [B, C, H, W] (or [B, C, T, H, W] for time series, or a dict of modalities),
"mask": long [B, H, W]}``: what TerraTorch's ``SemanticSegmentationTask`` expects, with nothing else (TerraTorch
forwards extra batch keys to the model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from torchvision.transforms import v2

from ..augmentation import ImageTransform, RandomRot90
from ..datasets.segmentation import (
    IGNORE_INDEX,
    SegmentationDataset,
)
from ..io import write_text
from ..normalization import NormalizationSpec, SmartiesNormalize, compute_statistics
from .base import SmartiesDataModule

__all__ = ["SmartiesSegmentationDataModule", "segmentation_augmentation", "statistics_error"]

log = logging.getLogger(__name__)


def statistics_error(where: str, err: Exception) -> Exception:
    """``err`` (from :meth:`SmartiesNormalize.from_spec`, which names the table or file) prefixed with the data
    module's name, same type."""
    return type(err)(f"{where}: {err}")


class _RandomCrop(v2.RandomCrop):
    """``v2.RandomCrop`` whose error for a too-small sample names the setting to change."""

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        if h < self.size[0] or w < self.size[1]:
            raise ValueError(f"crop_size {self.size[0]} is larger than the sample ({h} x {w}); lower crop_size.")
        return super().make_params(flat_inputs)


def segmentation_augmentation(
    crop_size: int | None = None, flips: bool = False, rot90: bool = False
) -> ImageTransform | None:
    """Training augmentation of image and mask, in this order: random ``crop_size`` crop, random horizontal then
    vertical flip (p = 0.5 each), random quarter turn. ``None`` when nothing is asked for.

    The random draws are those of the global torch RNG, one per step (a crop along a side that equals
    ``crop_size`` draws nothing).
    """
    steps: list[Any] = []
    if crop_size is not None:
        steps.append(_RandomCrop(crop_size))
    if flips:
        steps += [v2.RandomHorizontalFlip(0.5), v2.RandomVerticalFlip(0.5)]
    if rot90:
        steps.append(RandomRot90())
    return ImageTransform(v2.Compose(steps)) if steps else None


class SmartiesSegmentationDataModule(SmartiesDataModule):
    """Base of the SMARTIES segmentation data modules: subclasses implement :meth:`items` (the split rules) and
    :meth:`dataset` (the reader of :mod:`smarties_terratorch.datasets`).

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
        self._reader: SegmentationDataset | None = None

    # --- to implement -------------------------------------------------------------------------------------------
    @property
    def output_bands(self) -> list[str]:
        """Names of the delivered channels, in order."""
        raise NotImplementedError

    def items(self, split: str) -> list[Any]:
        """Sample descriptors of ``split`` (``train``, ``val``, ``test``); raise if the data are not found."""
        raise NotImplementedError

    def dataset(self, items: Sequence[Any], **kwargs: Any) -> SegmentationDataset:
        """The dataset reader of ``items``; ``kwargs`` are :class:`SegmentationDataset` options (``normalize``,
        ``ignore_index``, ``num_classes``, ``scale``, ``image_size``, ``transforms``, ``groups``)."""
        raise NotImplementedError

    def default_statistics_bands(self) -> list[str] | None:
        """Table bands for a table name when ``statistics_bands`` is not given."""
        return None

    def modality_groups(self) -> dict[str, list[int]] | None:
        """Split delivered channels into modalities (``None`` = one tensor)."""
        return None

    # --- shared -------------------------------------------------------------------------------------------------
    def reader(self) -> SegmentationDataset:
        """A dataset without samples, for :meth:`load` and :meth:`describe` (built once)."""
        if self._reader is None:
            self._reader = self.dataset([], ignore_index=self.ignore_index)
        return self._reader

    def load(self, item: Any) -> tuple[np.ndarray, np.ndarray]:
        """Read one sample: raw image ``[C, H, W]``/``[C, T, H, W]`` (NaN = nodata) and mask ``[H, W]``."""
        return self.reader().load(item)

    def describe(self, item: Any) -> str:
        """Where a sample comes from, for error messages."""
        return self.reader().describe(item)

    def train_transforms(self) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """Augmentation of training samples: random crop (``crop_size``) and flips (``augment``)."""
        return segmentation_augmentation(self.crop_size, flips=self.augment)

    def build_dataset(self, split: str) -> SegmentationDataset:
        return self.dataset(
            self.items(split),
            normalize=self.normalizer(),
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
            scale=self.scale,
            image_size=self.image_size,
            transforms=self.train_transforms() if split == "train" else None,
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
        # num_classes=None: mask values are checked when training reads the sample, not while computing statistics.
        ds = self.dataset(
            [items[i] for i in picks],
            ignore_index=self.ignore_index,
            num_classes=None,
            scale=self.scale,
            image_size=self.image_size,
        )
        return compute_statistics((ds.raw(i)[0] for i in range(len(ds))), band_names=self.output_bands, **kwargs)
