"""SpaceNet 7 building-mapping reader (PANGAEA's ``SN7MAPPING`` files).

Layout established from PANGAEA's reader (``pangaea/datasets/spacenet7.py`` in ``yurujaja/pangaea-bench``, same in
``VMarsocci/pangaea-bench``), which reads the SpaceNet 7 training AOIs (SpaceNet AWS ``SN7_buildings_train.tar.gz``)
after PANGAEA's preprocessing, which adds rasterised building masks (``labels_raster/``) and a metadata file::

    <root>/metadata_train.json                                  {aoi_id: [{aoi_id, year, month, mask, label}, ...]}
    <root>/train/<aoi_id>/images_masked/global_monthly_<YYYY>_<MM>_mosaic_<aoi_id>.tif            Planet RGB + alpha,
                                                                                                    uint8, ~1024 x 1024
    <root>/train/<aoi_id>/labels_raster/global_monthly_<YYYY>_<MM>_mosaic_<aoi_id>_Buildings.tif  buildings > 0

``aoi_id`` looks like ``L15-0331E-1257N_1327_3160_13``. A month is used when its metadata entry has ``label: true``
and ``mask: false`` (PANGAEA's rule); without ``metadata_train.json``, every image with a matching
``*_Buildings.tif`` is used (:func:`find_scenes`). Scenes are read resampled (nearest) to ``scene_size`` x
``scene_size`` (1024, as PANGAEA; a few scenes are 1023 px) and cut into ``tile_size`` tiles. Classes: 0 background,
1 building; pixels with alpha = 0 (outside the mosaic / masked) are ignored.

A thin reader: torchgeo 0.8.1's ``SpaceNet7`` reads the same mosaics but rasterises the GeoJSON ``labels*/`` itself
and has no ``metadata_train.json`` rule, so its masks and months are not the ones PANGAEA scores (from
``labels_raster/``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import RasterReader, read_raster
from .segmentation import SegmentationDataset, no_files_error

__all__ = ["SPACENET7_BANDS", "SpaceNet7", "find_scenes", "image_path", "label_path"]

log = logging.getLogger(__name__)

#: Channels of a mosaic (the alpha band marks valid pixels).
SPACENET7_BANDS = ["R", "G", "B"]

PathType = str | os.PathLike
Scene = tuple[str, int, int]


def _image_name(aoi: str, year: int, month: int) -> str:
    return f"global_monthly_{year}_{month:02d}_mosaic_{aoi}.tif"


def image_path(root: PathType, aoi: str, year: int, month: int, image_folder: str = "images_masked") -> Path:
    """The mosaic of ``aoi`` in ``year``/``month``."""
    return Path(root) / "train" / aoi / image_folder / _image_name(aoi, year, month)


def label_path(root: PathType, aoi: str, year: int, month: int, label_folder: str = "labels_raster") -> Path:
    """The rasterised building mask of ``aoi`` in ``year``/``month``."""
    name = _image_name(aoi, year, month).replace(".tif", "_Buildings.tif")
    return Path(root) / "train" / aoi / label_folder / name


def find_scenes(
    root: PathType, image_folder: str = "images_masked", label_folder: str = "labels_raster"
) -> dict[str, list[Scene]]:
    """Usable ``(aoi, year, month)`` scenes per AOI found under ``root/train``.

    Raises:
        FileNotFoundError: no ``train`` folder, no labelled scene, or labelled months of the metadata whose files
            are missing (named).
    """
    root = Path(root)
    train = root / "train"
    if not train.is_dir():
        raise FileNotFoundError(f"SpaceNet7: folder {train} does not exist (expected <root>/train/<aoi_id>/...).")
    meta_file = root / "metadata_train.json"
    scenes: dict[str, list[tuple[str, int, int]]] = {}
    if meta_file.is_file():
        metadata = json.loads(meta_file.read_text())
        for aoi, entries in metadata.items():
            usable = [e for e in entries if e.get("label") and not e.get("mask")]
            keep = [(aoi, int(e["year"]), int(e["month"])) for e in usable]
            files = [label_path(root, *s, label_folder) for s in keep]
            files += [image_path(root, *s, image_folder) for s in keep]
            missing = [p.name for p in files if not p.is_file()]
            if missing and (train / aoi).is_dir():
                raise FileNotFoundError(
                    f"SpaceNet7: {meta_file} lists labelled months of {aoi} whose files are missing under "
                    f"{train / aoi}: {missing[:5]}"
                )
            if (train / aoi).is_dir():
                scenes[aoi] = keep
    else:
        for folder in sorted(p for p in train.iterdir() if p.is_dir()):
            aoi = folder.name
            images = sorted((folder / image_folder).glob("global_monthly_*_mosaic_*.tif"))
            if not images:
                pattern = "global_monthly_*_mosaic_*.tif"
                raise no_files_error(folder / image_folder, pattern, "SpaceNet7 images")
            keep = []
            for p in images:
                parts = p.name.split("_")  # global, monthly, YYYY, MM, mosaic, <aoi>.tif
                year, month = int(parts[2]), int(parts[3])
                if label_path(root, aoi, year, month, label_folder).is_file():
                    keep.append((aoi, year, month))
            if len(keep) < len(images):
                log.info("SpaceNet7 %s: %d of %d months have no *_Buildings.tif and are skipped (no label).",
                         aoi, len(images) - len(keep), len(images))
            scenes[aoi] = keep
    if not any(scenes.values()):
        raise FileNotFoundError(f"SpaceNet7: no labelled scenes under {train}.")
    return scenes


class SpaceNet7(SegmentationDataset):
    """SpaceNet 7 tiles: ``{"image": float [3, t, t], "mask": long [t, t]}`` (0 background, 1 building, ignore).

    Args:
        root: folder with ``train/<aoi>/...``.
        samples: ``(aoi, year, month, row, col)`` per tile (top-left corner on the ``scene_size`` grid).
        tile_size: tile side.
        scene_size: side every scene is resampled to on read.
        image_folder, label_folder: sub-folders of each AOI.
        **kwargs: :class:`SegmentationDataset` options (``normalize``, ``transforms``, ...).
    """

    def __init__(
        self,
        root: PathType,
        samples: Sequence[tuple[str, int, int, int, int]],
        tile_size: int = 256,
        scene_size: int = 1024,
        image_folder: str = "images_masked",
        label_folder: str = "labels_raster",
        **kwargs: Any,
    ) -> None:
        self.root = Path(root)
        self.tile_size = tile_size
        self.scene_size = scene_size
        self.image_folder = image_folder
        self.label_folder = label_folder
        self._cache: tuple[Any, tuple[np.ndarray, np.ndarray]] | None = None
        kwargs.setdefault("num_classes", 2)
        super().__init__(samples, num_channels=len(SPACENET7_BANDS), **kwargs)

    def image_path(self, aoi: str, year: int, month: int) -> Path:
        """The mosaic of a scene."""
        return image_path(self.root, aoi, year, month, self.image_folder)

    def label_path(self, aoi: str, year: int, month: int) -> Path:
        """The building mask of a scene."""
        return label_path(self.root, aoi, year, month, self.label_folder)

    def describe(self, item: tuple[str, int, int, int, int]) -> str:
        aoi, year, month, i, j = item
        return f"SpaceNet7 {self.image_path(aoi, year, month)} tile ({i}, {j})"

    def _scene(self, aoi: str, year: int, month: int) -> tuple[np.ndarray, np.ndarray]:
        key = (aoi, year, month)
        # Consecutive tiles come from one scene: keep the last scene read.
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        shape = (self.scene_size, self.scene_size)
        path = self.image_path(aoi, year, month)
        with RasterReader(path, resampling="nearest", gdal_cache_mb=16) as reader:
            if reader.count not in (3, 4):
                raise ValueError(
                    f"{path}: {reader.count} bands; SpaceNet7 mosaics have R, G, B (+ alpha as band 4)."
                )
            data = reader.read(out_shape=shape)
        image = data[:3]
        if data.shape[0] == 4:
            image[:, (data[3] == 0) | np.isnan(data[3])] = np.nan  # outside the mosaic / masked
        label = read_raster(self.label_path(aoi, year, month), indexes=[1], out_shape=shape, resampling="nearest")[0]
        mask = (label > 0).astype(np.int64)
        self._cache = (key, (image, mask))
        return image, mask

    def load(self, item: tuple[str, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        aoi, year, month, i, j = item
        image, mask = self._scene(aoi, year, month)
        t = self.tile_size
        return image[:, i : i + t, j : j + t].copy(), mask[i : i + t, j : j + t].copy()
