"""RGB previews of feature rasters: the first three principal components, contrast-stretched (:func:`pca_preview`)."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
from rasterio.io import MemoryFile

from ..io import RasterReader, atomic_path, check_output, open_geotiff

__all__ = ["pca_preview"]

PathType = str | os.PathLike


def _row_blocks(reader: RasterReader, rows: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    for r in range(0, reader.height, rows):
        yield r, reader.read(r, 0, min(rows, reader.height - r), reader.width)


def _fit(reader: RasterReader, sample: int, seed: int) -> tuple[np.ndarray, ...]:
    """PCA (mean, 3 components, explained variance) and 2/98 % stretch limits from a sample of valid tokens."""
    rng = np.random.default_rng(seed)
    rate = min(1.0, sample / max(reader.height * reader.width, 1))
    picks, n_valid = [], 0
    for _, block in _row_blocks(reader):
        x = block.reshape(reader.count, -1).T
        x = x[~np.isnan(x).any(axis=1)]
        n_valid += len(x)
        picks.append(x[rng.random(len(x)) < rate])
    data = np.concatenate(picks).astype(np.float64)
    if len(data) < 3:
        raise ValueError(f"{reader.paths[0]} has {len(data)} valid token(s): a preview needs at least 3")
    mean = data.mean(axis=0)
    _, s, vt = np.linalg.svd(data - mean, full_matrices=False)
    comps = vt[:3]
    comps *= np.sign(comps.sum(axis=1, keepdims=True) + 1e-12)  # deterministic sign
    proj = (data - mean) @ comps.T
    evr = s[:3] ** 2 / (s**2).sum()
    lo, hi = np.percentile(proj, 2, axis=0), np.percentile(proj, 98, axis=0)
    return mean, comps, evr, lo, hi, np.array([n_valid, len(data)])


def pca_preview(
    features: PathType,
    png: PathType | None = None,
    tif: PathType | None = None,
    *,
    sample: int = 20000,
    seed: int = 0,
    overwrite: bool = False,
    png_scale: int | None = None,
) -> dict[str, Any]:
    """Project a feature raster onto its first 3 principal components as an RGB preview (PNG and/or GeoTIFF).

    Two windowed passes, so memory stays bounded: a random sample of up to ``sample`` valid tokens fits the PCA
    and the 2nd/98th percentile of each component (contrast stretch), then every window is projected and written
    as uint8 (0 = nodata). The GeoTIFF keeps the georeferencing; the PNG is a plain picture. Both appear only
    once complete.

    Args:
        features: a feature GeoTIFF (``smarties embed``'s output).
        png, tif: preview paths (at least one).
        sample: tokens used to fit the PCA.
        seed: seed of the sample.
        overwrite: replace existing previews.
        png_scale: PNG pixels per token side (nearest neighbour); ``None`` picks the smallest that makes the long
            side at least 512 px, at most 16 (one PNG pixel per scene pixel). The GeoTIFF stays at one pixel per
            token.

    Returns:
        Explained-variance ratios of the 3 components, the stretch limits, valid-token count and the PNG scale.
    """
    if png is None and tif is None:
        raise ValueError("pca_preview needs png= and/or tif=")
    for path in (png, tif):
        if path is not None:
            check_output(path, [features], overwrite=overwrite)
    with RasterReader(features, gdal_cache_mb=16) as reader:
        mean, comps, evr, lo, hi, (n_valid, n_sampled) = _fit(reader, sample, seed)
        grid = {"height": reader.height, "width": reader.width, "crs": reader.crs, "transform": reader.transform}
        # The picture is at token resolution (1/16 of the scene per side): small enough to hold whole.
        rgb = np.zeros((3, reader.height, reader.width), dtype=np.uint8)
        for r, block in _row_blocks(reader):
            flat = block.reshape(reader.count, -1).T.astype(np.float64)
            bad = np.isnan(flat).any(axis=1)
            x = ((np.nan_to_num(flat) - mean) @ comps.T - lo) / np.maximum(hi - lo, 1e-12)
            x = (1 + 254 * np.clip(x, 0, 1)).round().astype(np.uint8)  # 1..255; 0 is nodata
            x[bad] = 0
            rgb[:, r : r + block.shape[1]] = x.T.reshape(3, block.shape[1], reader.width)
    if tif is not None:
        with open_geotiff(tif, count=3, dtype="uint8", nodata=0, photometric="RGB", **grid) as dst:
            dst.write(rgb)
    scale = png_scale or preview_scale(rgb.shape[1], rgb.shape[2])
    if png is not None:
        # One pixel per token is too small to look at; nearest keeps each token a visible square.
        _write_png(png, rgb.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else rgb)
    return {"explained_variance_ratio": evr.tolist(), "stretch_low": lo.tolist(), "stretch_high": hi.tolist(),
            "valid_tokens": int(n_valid), "sampled_tokens": int(n_sampled),
            "png_scale": int(scale) if png is not None else None}  # fmt: skip


def preview_scale(height: int, width: int, min_side: int = 512, max_scale: int = 16) -> int:
    """The smallest integer upsampling that brings the long side to ``min_side`` pixels, capped at ``max_scale``."""
    return int(min(max_scale, max(1, math.ceil(min_side / max(height, width, 1)))))


def _write_png(path: PathType, rgb: np.ndarray) -> None:
    # GDAL's PNG driver only copies from another dataset: build it in memory, copy to the temporary file. No
    # .aux.xml side-car (GDAL_PAM_ENABLED=NO): the PNG is a picture, the GeoTIFF carries the georeferencing.
    profile = {"driver": "GTiff", "height": rgb.shape[1], "width": rgb.shape[2], "count": 3, "dtype": "uint8"}
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), MemoryFile() as mem, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with mem.open(**profile) as src:
            src.write(rgb)
        with mem.open() as src, atomic_path(path) as tmp:
            rasterio.shutil.copy(src, tmp, driver="PNG")
