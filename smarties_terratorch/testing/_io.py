"""Writers shared by the fixture generators (GeoTIFFs, class-folder JPEGs, split files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image


def write_geotiff(
    path: Path, data: np.ndarray, dtype: str, crs: str, transform: Affine, nodata: float | None = None
) -> None:
    """Write ``data`` (``[C, H, W]``, or ``[H, W]`` for one band) as a GeoTIFF, creating parent folders."""
    data = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": data.shape[-1],
        "height": data.shape[-2],
        "count": data.shape[0],
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype))


def write_random_jpeg(path: Path, rng: np.random.Generator, size: int) -> None:
    """A smooth random RGB field (an 8 x 8 colour grid upsampled to ``size``): compresses to a few kB."""
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(path, quality=90)


def write_splits(root: Path, prefix: str, lines: Mapping[str, Sequence[str]]) -> None:
    """``root/eval_splits/<prefix>-<split>.txt`` with one ``./<class>/<file>`` entry per line (the authors' format)."""
    splits = root / "eval_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for split, entries in lines.items():
        (splits / f"{prefix}-{split}.txt").write_text("\n".join(entries) + "\n")
