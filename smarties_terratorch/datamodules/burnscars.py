"""HLS Burn Scars (``ibm-nasa-geospatial/hls_burn_scars``) for SMARTIES segmentation.

On-disk layout (the Hugging Face release ``hls_burn_scars.tar.gz``, as TerraTorch's ``FireScarsNonGeoDataModule`` and
PANGAEA's ``HLSBurnScars`` read it)::

    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4_merged.tif   6 bands, float32
    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4.mask.tif     1 band: 0 / 1, -1 = no data
    <root>/validation/...                                                          same naming

Images are HLS S30 (Sentinel-2-harmonised) surface reflectance in 0-1 units, bands BLUE, GREEN, RED, NIR_NARROW,
SWIR_1, SWIR_2 (PANGAEA calls them B2, B3, B4, B8A, B11, B12). Images and masks are paired by file stem (not only by
sorted position), so a missing or extra file is reported by name.

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

Nodata: pixels that are NaN, equal to the raster's nodata tag or to one of ``nodata_values`` (HLS fill -9999; PANGAEA
treats 9999 as invalid) in any band get the ignore index in the mask; mask value -1 is ignored as well.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..io import RasterReader, read_raster
from .segmentation import SmartiesSegmentationDataModule, no_files_error, select_channels

__all__ = ["HLS_BANDS", "HLSBurnScarsDataModule", "HLS_TO_S2", "pangaea_train_val_split"]

#: Channels of a ``*_merged.tif`` file, in file order (TerraTorch ``HLSBands`` names).
HLS_BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
#: The Sentinel-2 band of each HLS S30 band (rows of the ``S2-L2A`` statistics table).
HLS_TO_S2 = {
    "COASTAL_AEROSOL": "B01",
    "BLUE": "B02",
    "GREEN": "B03",
    "RED": "B04",
    "RED_EDGE_1": "B05",
    "RED_EDGE_2": "B06",
    "RED_EDGE_3": "B07",
    "NIR_BROAD": "B08",
    "NIR_NARROW": "B8A",
    "WATER_VAPOR": "B09",
    "SWIR_1": "B11",
    "SWIR_2": "B12",
}
IMAGE_SUFFIX = "_merged.tif"
MASK_SUFFIX = ".mask.tif"
FOLDERS = {"training": "training", "validation": "validation"}


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
        """``(image, mask)`` paths of ``training`` or ``validation``, sorted and paired by stem."""
        if folder not in self._pairs:
            path = self.root / FOLDERS[folder]
            images = {p.name[: -len(IMAGE_SUFFIX)]: p for p in path.glob(f"*{IMAGE_SUFFIX}")}
            masks = {p.name[: -len(MASK_SUFFIX)]: p for p in path.glob(f"*{MASK_SUFFIX}")}
            if not images:
                raise no_files_error(path, f"*{IMAGE_SUFFIX}", f"{self.dataset_name} images")
            if not masks:
                raise no_files_error(path, f"*{MASK_SUFFIX}", f"{self.dataset_name} masks")
            lonely_images = sorted(set(images) - set(masks))
            lonely_masks = sorted(set(masks) - set(images))
            if lonely_images or lonely_masks:
                raise ValueError(
                    f"{self.dataset_name}: {len(images)} images (*{IMAGE_SUFFIX}) and {len(masks)} masks "
                    f"(*{MASK_SUFFIX}) in {path} do not pair up by name. Images without mask: "
                    f"{[images[s].name for s in lonely_images[:5]]}; masks without image: "
                    f"{[masks[s].name for s in lonely_masks[:5]]}."
                )
            self._pairs[folder] = [(images[s], masks[s]) for s in sorted(images)]
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

    def describe(self, item: tuple[Path, Path]) -> str:
        return f"{self.dataset_name} image {item[0]}"

    def load(self, item: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = item
        with RasterReader(image_path, gdal_cache_mb=16) as reader:
            if reader.count != len(self.bands):
                raise ValueError(
                    f"{image_path}: {reader.count} bands in the file but {len(self.bands)} band names configured "
                    f"({self.bands}); the band list must name every channel of the file, in file order."
                )
            image = reader.read()[self.channels]
        for value in self.nodata_values:
            image[image == value] = np.nan
        mask = read_raster(mask_path, indexes=[1])[0]
        mask = np.where(np.isnan(mask) | (mask == -1), self.ignore_index, mask).astype(np.int64)
        return image, mask
