"""HLS Burn Scars (``ibm-nasa-geospatial/hls_burn_scars``) data module for SMARTIES segmentation.

The reader and the file layout: :mod:`smarties_terratorch.datasets.burnscars`.

Splits (``protocol``):

- ``"pangaea"`` (default, PANGAEA's protocol): train / val = a fixed random 90 / 10 split of ``training/``
  (``numpy.random.RandomState(23).permutation``, the same permutation as PANGAEA's
  ``sklearn.train_test_split(test_size=0.1, random_state=23)``), test = ``validation/``.
- ``"terratorch"``: train = ``training/``, val = test = ``validation/`` (TerraTorch's burn-scars example).

Normalisation choice (SMARTIES released no burn-scars statistics): by default the 0-1 reflectance is multiplied by
``scale=10000`` and normalised with the released **Sentinel-2 L2A** statistics of the same bands (B02, B03, B04,
B8A, B11, B12): HLS S30 is Sentinel-2 surface reflectance harmonised to Landsat, i.e. the product family SMARTIES
was pre-trained on (BigEarthNet L2A, reflectance x 10000), which matters most for a frozen encoder. The alternative,
``statistics: compute`` with ``scale: 1.0``, estimates dataset-specific p1/p99/mean/std on the training split with
the same two-step rule. Report which one you used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..datasets.burnscars import HLS_BANDS, HLS_TO_S2, HLSBurnScars, find_pairs
from ..datasets.segmentation import select_channels
from .segmentation import SmartiesSegmentationDataModule

# The layout constants are re-exported: they were importable from here before the reader moved.
__all__ = ["HLSBurnScarsDataModule", "pangaea_train_val_split"]

def pangaea_train_val_split(n: int, val_fraction: float = 0.1, seed: int = 23) -> tuple[list[int], list[int]]:
    """PANGAEA's train/val split of the sorted ``training/`` files: ``(train indices, val indices)``.

    Same permutation as ``sklearn.model_selection.train_test_split(range(n), test_size=val_fraction,
    random_state=seed)`` (ShuffleSplit: the first ``ceil(val_fraction * n)`` entries of
    ``RandomState(seed).permutation(n)`` are the validation set), without needing scikit-learn.
    """
    perm = np.random.RandomState(seed).permutation(n)
    n_val = math.ceil(val_fraction * n)
    return perm[n_val:].tolist(), perm[:n_val].tolist()


class HLSBurnScarsDataModule(SmartiesSegmentationDataModule):
    """HLS burn scars, SMARTIES-normalised per sample (layout and choices: module docstring).

    Args:
        root: folder holding ``training/`` and ``validation/``.
        bands: names of the 6 file channels, in file order (change only for a re-packed copy).
        output_bands: subset of ``bands`` to deliver, in order (``None`` = all); ``backbone_bands`` must match.
        protocol: ``"pangaea"`` or ``"terratorch"`` splits.
        val_fraction: PANGAEA's validation share of ``training/``.
        split_seed: PANGAEA's split seed.
        nodata_values: raw values treated as nodata in addition to NaN and the raster's nodata tag.
        statistics, statistics_bands, statistics_file, stats_samples, scale, ignore_index, image_size, crop_size,
            augment, batch_size, num_workers, drop_last: see :class:`SmartiesSegmentationDataModule`. With a
            ``S2-*`` table, ``statistics_bands`` defaults to the Sentinel-2 twin of each band (:data:`HLS_TO_S2`).
    """

    dataset_name = "HLS burn scars"

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        output_bands: list[str] | None = None,
        protocol: Literal["pangaea", "terratorch"] = "pangaea",
        val_fraction: float = 0.1,
        split_seed: int = 23,
        nodata_values: list[float] | None = None,
        statistics: str | dict[str, list[float]] = "S2-L2A",
        scale: float = 10000.0,
        crop_size: int | None = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            statistics=statistics,
            scale=scale,
            num_classes=2,
            crop_size=crop_size,
            **kwargs,
        )
        if protocol not in ("pangaea", "terratorch"):
            raise ValueError(f"protocol must be 'pangaea' or 'terratorch', got {protocol!r}")
        self.root = Path(root).expanduser()
        self.bands = list(bands) if bands is not None else list(HLS_BANDS)
        self.channels = select_channels(self.bands, output_bands, type(self).__name__)
        self.protocol = protocol
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.nodata_values = [-9999.0, 9999.0] if nodata_values is None else list(nodata_values)
        self._pairs: dict[str, list[tuple[Path, Path]]] = {}

    @property
    def output_bands(self) -> list[str]:
        return [self.bands[i] for i in self.channels]

    def default_statistics_bands(self) -> list[str] | None:
        if isinstance(self.statistics, str) and self.statistics.upper().startswith("S2"):
            unknown = [b for b in self.output_bands if b not in HLS_TO_S2]
            if unknown:
                raise ValueError(
                    f"{type(self).__name__}: no Sentinel-2 twin for bands {unknown}; set statistics_bands explicitly."
                )
            return [HLS_TO_S2[b] for b in self.output_bands]
        return None

    def pairs(self, folder: str) -> list[tuple[Path, Path]]:
        """``(image, mask)`` paths of ``training`` or ``validation``, sorted and paired by stem (read once)."""
        if folder not in self._pairs:
            self._pairs[folder] = find_pairs(self.root, folder, self.dataset_name)
        return self._pairs[folder]

    def items(self, split: str) -> list[tuple[Path, Path]]:
        if split == "predict":
            split = "test"
        if self.protocol == "terratorch":
            return self.pairs("training" if split == "train" else "validation")
        if split == "test":
            return self.pairs("validation")
        pairs = self.pairs("training")
        train, val = pangaea_train_val_split(len(pairs), self.val_fraction, self.split_seed)
        return [pairs[i] for i in (train if split == "train" else val)]

    def dataset(self, items: Sequence[tuple[Path, Path]], **kwargs: Any) -> HLSBurnScars:
        return HLSBurnScars(
            self.root, items, self.bands, self.output_bands, nodata_values=self.nodata_values, **kwargs
        )
