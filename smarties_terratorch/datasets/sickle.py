"""SICKLE reader (Cauvery delta paddy mapping, Landsat-8 incl. thermal; also S2 and S1).

Layout established from the dataset's official code (``Depanshu-Sani/SICKLE``: ``utils/dataset.py``, ``train.py``,
the demo notebook's ``sickle_toy_dataset``) and confirmed by third-party readers of the release::

    <root>/images/<SAT>/npy/<UNIQUE_ID>/*.npz  one file per acquisition, one 2-D array per band:
                                               L8: SR_B1 ... SR_B7 (Collection-2 L2 surface reflectance DN), ST_B10
                                               (surface temperature DN); S2: B1 ... B12, B8A; S1: VV, VH.
                                               The acquisition date is the first 8-digit YYYYMMDD token of the name
                                               (Earth Engine ids, e.g. LC08_142051_20180105.npz).
    <root>/masks/<R>m/<UNIQUE_ID>.tif          R = 3, 10 or 30; band 1 plot id (0 = none), band 2 crop type
                                               (1 = paddy, >= 2 other crops, 0 = none), bands 3-6 sowing /
                                               transplanting / harvesting day and yield.

Older snapshots of the official code use ``<root>/<SAT>/npy/...`` and ``<root>/masks/yield_distributed/<R>m/...``;
both layouts are detected (:func:`image_dir`, :func:`mask_path`).

A sample is one plot time series reduced to one acquisition (``acquisition``: ``"middle"``, ``"first"``, ``"last"``
or ``"least_nodata"`` among those whose first band is nodata on less than ``max_nodata_fraction`` of the pixels,
the authors' rule; if none passes, the one with the least nodata). Acquisitions lacking a requested band are
skipped, never zero-filled (the official code zero-fills a missing last band). Mask: class 0 = paddy,
1 = non-paddy; pixels outside plots, and pixels of plots that belong to another split (the authors' rule), get the
ignore index.

A thin reader: torchgeo 0.8.1 has no SICKLE dataset.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..io import RasterReader
from .segmentation import SegmentationDataset

__all__ = ["SICKLE", "SICKLE_BANDS", "SICKLE_CLASSES", "acquisition_date", "image_dir", "mask_path"]

log = logging.getLogger(__name__)

#: npz keys per satellite, in the official code's order.
SICKLE_BANDS = {
    "L8": ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10"],
    "S2": ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"],
    "S1": ["VV", "VH"],
}
SICKLE_CLASSES = ["paddy", "non-paddy"]
_DATE = re.compile(r"(?<!\d)(\d{8})(?!\d)")

PathType = str | os.PathLike


def acquisition_date(name: str) -> dt.date | None:
    """The first valid ``YYYYMMDD`` token of a file name (Earth Engine ids of L8, S2 and S1), else ``None``."""
    for token in _DATE.findall(name):
        try:
            return dt.date(int(token[:4]), int(token[4:6]), int(token[6:]))
        except ValueError:
            continue
    return None


def image_dir(root: PathType, satellite: str, uid: str) -> Path:
    """The npz folder of sample ``uid`` (current layout, or the older one if only that exists)."""
    new = Path(root) / "images" / satellite / "npy" / uid
    old = Path(root) / satellite / "npy" / uid
    return new if new.is_dir() or not old.is_dir() else old


def mask_path(root: PathType, resolution: int, uid: str) -> Path:
    """The mask GeoTIFF of sample ``uid`` at ``resolution`` m (current layout, or the older one if only that
    exists)."""
    new = Path(root) / "masks" / f"{resolution}m" / f"{uid}.tif"
    old = Path(root) / "masks" / "yield_distributed" / f"{resolution}m" / f"{uid}.tif"
    return new if new.is_file() or not old.is_file() else old


class SICKLE(SegmentationDataset):
    """SICKLE crop-type samples from one acquisition: ``{"image": float [C, h, w], "mask": long [H, W]}``
    (0 = paddy, 1 = non-paddy, ignore index; image and mask differ in size unless ``image_size`` is set).

    Args:
        root: dataset root.
        samples: ``(uid, in-season npz files sorted by date, plot ids of the split)`` per sample.
        satellite: ``"L8"``, ``"S2"`` or ``"S1"`` (folder names).
        bands: npz keys to read, in order (default :data:`SICKLE_BANDS` of ``satellite``).
        mask_resolution: 3, 10 or 30 m masks.
        acquisition: ``"middle"``, ``"first"``, ``"last"`` or ``"least_nodata"``.
        nodata_value: raw value meaning "no data" (Landsat Collection-2 fill 0; ``None`` = none).
        max_nodata_fraction: the authors' acquisition filter (fraction of nodata pixels in the first band).
        **kwargs: :class:`SegmentationDataset` options (``normalize``, ``image_size``, ...).
    """

    def __init__(
        self,
        root: PathType,
        samples: Sequence[tuple[str, Sequence[PathType], Iterable[int]]],
        satellite: Literal["L8", "S2", "S1"] = "L8",
        bands: Sequence[str] | None = None,
        mask_resolution: int = 10,
        acquisition: Literal["middle", "first", "last", "least_nodata"] = "middle",
        nodata_value: float | None = 0.0,
        max_nodata_fraction: float = 0.25,
        **kwargs: Any,
    ) -> None:
        if satellite not in SICKLE_BANDS:
            raise ValueError(f"satellite must be one of {list(SICKLE_BANDS)}, got {satellite!r}")
        if acquisition not in ("middle", "first", "last", "least_nodata"):
            raise ValueError(f"acquisition must be middle, first, last or least_nodata, got {acquisition!r}")
        self.root = Path(root)
        self.satellite = satellite
        self.bands = list(bands) if bands is not None else list(SICKLE_BANDS[satellite])
        self.mask_resolution = mask_resolution
        self.acquisition = acquisition
        self.nodata_value = nodata_value
        self.max_nodata_fraction = max_nodata_fraction
        kwargs.setdefault("num_classes", len(SICKLE_CLASSES))
        items = [(str(uid), [self.root / f for f in files], frozenset(plots)) for uid, files, plots in samples]
        super().__init__(items, num_channels=len(self.bands), **kwargs)

    def image_dir(self, uid: str) -> Path:
        """The npz folder of sample ``uid``."""
        return image_dir(self.root, self.satellite, uid)

    def mask_path(self, uid: str) -> Path:
        """The mask file of sample ``uid``."""
        return mask_path(self.root, self.mask_resolution, uid)

    def describe(self, item: tuple[str, list[Path], frozenset[int]]) -> str:
        return f"SICKLE sample {item[0]} ({self.image_dir(item[0])})"

    def _read_npz(self, path: Path) -> np.ndarray | None:
        with np.load(path) as npz:
            missing = [b for b in self.bands if b not in npz.files]
            if missing:
                log.debug("SICKLE: %s lacks bands %s; acquisition skipped", path, missing)
                return None
            arrays = [np.asarray(npz[b], dtype=np.float32) for b in self.bands]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise ValueError(f"{path}: bands {self.bands} must be 2-D arrays of one shape, got {sorted(shapes)}")
        image = np.stack(arrays)
        if self.nodata_value is not None:
            image[image == self.nodata_value] = np.nan
        return image

    def load(self, item: tuple[str, list[Path], frozenset[int]]) -> tuple[np.ndarray, np.ndarray]:
        uid, files, plots = item
        candidates = []
        for path in files:
            image = self._read_npz(path)
            if image is not None:
                candidates.append((float(np.isnan(image[0]).mean()), path, image))
        if not candidates:
            raise ValueError(
                f"SICKLE sample {uid}: none of its {len(files)} in-season acquisitions in {self.image_dir(uid)} has "
                f"all bands {self.bands}."
            )
        good = [c for c in candidates if c[0] < self.max_nodata_fraction]
        if not good or self.acquisition == "least_nodata":
            image = min(candidates, key=lambda c: c[0])[2]
        else:
            index = {"first": 0, "last": len(good) - 1, "middle": (len(good) - 1) // 2}[self.acquisition]
            image = good[index][2]
        return image, self._mask(uid, plots)

    def _mask(self, uid: str, plots: frozenset[int]) -> np.ndarray:
        path = self.mask_path(uid)
        with RasterReader(path, gdal_cache_mb=16) as reader:
            if reader.count < 2:
                raise ValueError(
                    f"{path}: {reader.count} band(s); SICKLE masks have plot id and crop type bands (>= 2)."
                )
            # A nodata pixel (NaN) has no plot and no crop type: it is ignored below.
            plot, crop = np.nan_to_num(reader.read()[:2], nan=0.0)
        crop_type = crop.astype(np.int64) - 1
        crop_type[crop_type > 1] = 1  # every other crop -> non-paddy
        ignore = (crop_type < 0) | (plot <= 0)
        other_split = ~np.isin(plot.astype(np.int64), list(plots))
        crop_type[ignore | other_split] = self.ignore_index
        return crop_type
