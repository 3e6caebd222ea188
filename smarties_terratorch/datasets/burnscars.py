"""HLS Burn Scars (``ibm-nasa-geospatial/hls_burn_scars``) reader.

On-disk layout (the Hugging Face release ``hls_burn_scars.tar.gz``, as TerraTorch's ``FireScarsNonGeoDataModule`` and
PANGAEA's ``HLSBurnScars`` read it)::

    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4_merged.tif   6 bands, float32
    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4.mask.tif     1 band: 0 / 1, -1 = no data
    <root>/validation/...                                                          same naming

Images are HLS S30 (Sentinel-2-harmonised) surface reflectance in 0-1 units, bands BLUE, GREEN, RED, NIR_NARROW,
SWIR_1, SWIR_2 (PANGAEA calls them B2, B3, B4, B8A, B11, B12). Images and masks are paired by file stem (not only by
sorted position), so a missing or extra file is reported by name.

A thin reader: torchgeo 0.8.1 has no HLS burn scars dataset (TerraTorch's ``FireScarsNonGeoDataset`` reads the same
files but pairs them by sorted position and normalises with plain mean/std).

Nodata: pixels that are NaN, equal to the raster's nodata tag or to one of ``nodata_values`` (HLS fill -9999; PANGAEA
treats 9999 as invalid) in any band get the ignore index in the mask; mask value -1 is ignored as well.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import RasterReader, read_raster
from .segmentation import SegmentationDataset, no_files_error, select_channels

__all__ = ["FOLDERS", "HLSBurnScars", "HLS_BANDS", "HLS_TO_S2", "IMAGE_SUFFIX", "MASK_SUFFIX", "find_pairs"]

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
#: The release's two folders.
FOLDERS = {"training": "training", "validation": "validation"}

PathType = str | os.PathLike


def find_pairs(root: PathType, folder: str, what: str = "HLS burn scars") -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of ``<root>/<folder>``, sorted and paired by file stem.

    Raises:
        FileNotFoundError: the folder is missing or holds no images / no masks.
        ValueError: images and masks do not pair up (the message lists the lonely files).
    """
    path = Path(root) / FOLDERS.get(folder, folder)
    images = {p.name[: -len(IMAGE_SUFFIX)]: p for p in path.glob(f"*{IMAGE_SUFFIX}")}
    masks = {p.name[: -len(MASK_SUFFIX)]: p for p in path.glob(f"*{MASK_SUFFIX}")}
    if not images:
        raise no_files_error(path, f"*{IMAGE_SUFFIX}", f"{what} images")
    if not masks:
        raise no_files_error(path, f"*{MASK_SUFFIX}", f"{what} masks")
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images or lonely_masks:
        raise ValueError(
            f"{what}: {len(images)} images (*{IMAGE_SUFFIX}) and {len(masks)} masks "
            f"(*{MASK_SUFFIX}) in {path} do not pair up by name. Images without mask: "
            f"{[images[s].name for s in lonely_images[:5]]}; masks without image: "
            f"{[masks[s].name for s in lonely_masks[:5]]}."
        )
    return [(images[s], masks[s]) for s in sorted(images)]


class HLSBurnScars(SegmentationDataset):
    """HLS burn scars samples: ``{"image": float [C, H, W], "mask": long [H, W]}`` (0 / 1, ignore index).

    Args:
        root: folder holding ``training/`` and ``validation/``; relative sample paths are resolved under it.
        samples: ``(image, mask)`` path pairs, e.g. from :func:`find_pairs`.
        bands: names of the file channels, in file order (change only for a re-packed copy).
        output_bands: subset of ``bands`` to deliver, in order (``None`` = all).
        nodata_values: raw values treated as nodata in addition to NaN and the raster's nodata tag.
        **kwargs: :class:`SegmentationDataset` options (``normalize``, ``scale``, ``transforms``, ...).
    """

    def __init__(
        self,
        root: PathType,
        samples: Sequence[tuple[PathType, PathType]],
        bands: Sequence[str] = HLS_BANDS,
        output_bands: Sequence[str] | None = None,
        nodata_values: Sequence[float] = (-9999.0, 9999.0),
        **kwargs: Any,
    ) -> None:
        self.root = Path(root)
        self.bands = list(bands)
        self.channels = select_channels(self.bands, output_bands, type(self).__name__)
        self.nodata_values = list(nodata_values)
        kwargs.setdefault("num_classes", 2)
        items = [(self.root / image, self.root / mask) for image, mask in samples]
        super().__init__(items, num_channels=len(self.channels), **kwargs)

    def describe(self, item: tuple[Path, Path]) -> str:
        return f"HLS burn scars image {item[0]}"

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
