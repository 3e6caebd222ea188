"""Writers shared by the fixture generators (GeoTIFFs, class-folder JPEGs, split files), all atomic
(:mod:`smarties_terratorch.io`): an interrupted generator never leaves a half-written fixture file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from affine import Affine
from PIL import Image

from ..io import atomic_path, open_geotiff, write_text

__all__ = ["write_geotiff", "write_random_jpeg", "write_splits"]


def write_geotiff(
    path: Path, data: np.ndarray, dtype: str, crs: str | None, transform: Affine, nodata: float | None = None
) -> None:
    """Write ``data`` (``[C, H, W]``, or ``[H, W]`` for one band) as a GeoTIFF, creating parent folders."""
    data = data[None] if data.ndim == 2 else data
    count, height, width = data.shape
    with open_geotiff(
        path, height=height, width=width, count=count, dtype=dtype, crs=crs, transform=transform, nodata=nodata
    ) as dst:
        dst.write(data.astype(dtype))


def write_random_jpeg(path: Path, rng: np.random.Generator, size: int) -> None:
    """A smooth random RGB field (an 8 x 8 colour grid upsampled to ``size``): compresses to a few kB."""
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(tmp, format="JPEG", quality=90)


def write_splits(root: Path, prefix: str, lines: Mapping[str, Sequence[str]]) -> None:
    """``root/eval_splits/<prefix>-<split>.txt`` with one ``./<class>/<file>`` entry per line (the authors' format)."""
    for split, entries in lines.items():
        write_text(root / "eval_splits" / f"{prefix}-{split}.txt", "\n".join(entries) + "\n")
