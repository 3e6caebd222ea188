"""The one raster reader: a multi-band file or one file per band, mixed resolutions, windows, nodata as NaN.

Every pixel the package reads goes through :class:`RasterReader` (scene tools, data sets, pretraining pairs), so
nodata handling, resampling and georeferencing checks are the same everywhere:

- a pixel of a band is NaN when it equals the file's nodata value, is masked, is NaN already, or lies outside the
  band file's footprint;
- per-band files at other resolutions (or in another CRS) are warped on read onto the reference grid (by default
  the finest one) with the chosen resampling kernel; a file that does not overlap the reference grid at all is an
  error naming it, never a raster of NaN.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import rasterio
import rasterio.errors
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

__all__ = ["RasterError", "RasterReader", "read_raster", "resampling_kernel"]

PathType = str | os.PathLike


class RasterError(ValueError):
    """A raster that cannot be read as asked (unreadable file, band count, CRS or footprint); names the file."""


def resampling_kernel(name: str | Resampling) -> Resampling:
    """``"bilinear"``/``"nearest"``/``"cubic"``/... (case-insensitive) as a rasterio :class:`Resampling`.

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    if isinstance(name, Resampling):
        return name
    try:
        return Resampling[str(name).lower()]
    except KeyError:
        valid = ", ".join(r.name for r in Resampling if r.value < 14)  # the warp kernels GDAL supports on read
        raise ValueError(f"Unknown resampling {name!r}; choose one of {valid}") from None


def _open(path: Path, stack: contextlib.ExitStack) -> rasterio.io.DatasetReader:
    if not path.is_file():
        raise FileNotFoundError(f"Raster file not found: {path}")
    try:
        return stack.enter_context(rasterio.open(path))
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"{path} is not a readable raster (GeoTIFF or another GDAL format): {err}") from None


def _overlaps(src: rasterio.io.DatasetReader, ref: rasterio.io.DatasetReader) -> bool:
    left, bottom, right, top = src.bounds
    if src.crs != ref.crs and src.crs is not None and ref.crs is not None:
        left, bottom, right, top = transform_bounds(src.crs, ref.crs, left, bottom, right, top)
    r = ref.bounds
    return left < r.right and right > r.left and bottom < r.top and top > r.bottom


class RasterReader:
    """Windowed reads of one or more rasters as float32 ``[C, h, w]`` on one reference grid, nodata as NaN.

    Args:
        paths: one multi-band raster, or one single-band file per band (any resolutions, extents and CRS: each is
            warped onto the reference grid on read).
        indexes: for a single multi-band file, the 1-based bands to read (default: all).
        reference: index into ``paths`` of the file whose grid is used (default: the finest resolution).
        resampling: kernel for files not on the reference grid (``"bilinear"``, ``"nearest"``, ``"cubic"``...).
        gdal_cache_mb: GDAL block cache while the reader is open. GDAL's default (5% of RAM) would keep most of a
            scene's blocks once read, so resident memory would grow with the scene; a small cache keeps it flat.

    Raises:
        FileNotFoundError: a path that does not exist.
        RasterError: an unreadable file, a per-band file with several bands, an index out of range, mixed CRS
            without georeferencing, or a band file that does not overlap the reference grid.

    Use as a context manager. :meth:`read` accepts windows that reach past the raster (the outside is NaN).
    """

    def __init__(
        self,
        paths: Sequence[PathType] | PathType,
        indexes: Sequence[int] | None = None,
        reference: int | None = None,
        resampling: str | Resampling = "bilinear",
        gdal_cache_mb: int = 64,
    ) -> None:
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError("RasterReader needs at least one raster path")
        kernel = self.resampling = resampling_kernel(resampling)
        self.paths = [Path(p) for p in paths]
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb * 2**20))
            sources = [_open(p, self._stack) for p in self.paths]
            self._bands = self._plan(sources, indexes, reference, kernel)
            # GDAL sizes its block cache from GDAL_CACHEMAX at the first read, and rasterio's Env is
            # thread-local: read one pixel here so the small cache holds even when later reads come from another
            # thread.
            self.read(0, 0, 1, 1)
        except BaseException:
            self._stack.close()
            raise

    def _plan(
        self,
        sources: list[rasterio.io.DatasetReader],
        indexes: Sequence[int] | None,
        reference: int | None,
        kernel: Resampling,
    ) -> list[tuple[rasterio.io.DatasetReaderBase, list[int], Path]]:
        paths = self.paths
        self._alpha: dict[int, int] = {}  # plan entry -> its warped VRT's alpha band (0 = outside the file)
        if len(sources) > 1:
            multi = [str(p) for p, s in zip(paths, sources) if s.count != 1]
            if multi:
                raise RasterError(f"With one file per band every file must have one band; {', '.join(multi)} "
                                  f"{'has' if len(multi) == 1 else 'have'} more. Pass a multi-band file alone.")  # fmt: skip
            if indexes is not None:
                raise ValueError("indexes= selects bands of a single multi-band file; give one path per band instead.")
        if reference is None:  # finest pixel area wins; the first such file on ties
            reference = min(range(len(sources)), key=lambda i: abs(sources[i].res[0] * sources[i].res[1]))
        ref = sources[reference]
        self.crs, self.transform, self.height, self.width = ref.crs, ref.transform, ref.height, ref.width
        if len(sources) == 1:
            picked = list(indexes) if indexes is not None else list(ref.indexes)
            bad = [i for i in picked if not 1 <= int(i) <= ref.count]
            if bad:
                raise RasterError(f"{paths[0]} has {ref.count} band(s); band index(es) {bad} are out of range 1..{ref.count}")
            self.count = len(picked)
            return [(ref, [int(i) for i in picked], paths[0])]
        plan = []
        for src, path in zip(sources, paths):
            if src.crs == ref.crs and src.transform == ref.transform and src.shape == ref.shape:
                plan.append((src, [1], path))
                continue
            if (src.crs is None) != (ref.crs is None):
                raise RasterError(f"{path} and {paths[reference]} cannot be aligned: only one of them has a CRS")
            if not _overlaps(src, ref):
                raise RasterError(f"{path} does not overlap {paths[reference]}: the band files cover other areas")
            # A VRT warps only what a window needs; add_alpha marks pixels outside the file's footprint.
            vrt = WarpedVRT(
                src, crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height, resampling=kernel,
                src_nodata=src.nodata, nodata=src.nodata, add_alpha=src.nodata is None,
            )  # fmt: skip
            if src.nodata is None:
                # rasterio does not use the added alpha band as the mask of band 1: read() checks it itself.
                self._alpha[len(plan)] = vrt.count
            plan.append((self._stack.enter_context(vrt), [1], path))
        self.count = len(plan)
        return plan

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the reference grid."""
        return self.height, self.width

    @property
    def nodata(self) -> list[float | None]:
        """The nodata value of each band's file (``None`` where the file declares none)."""
        return [src.nodata for src, idx, _ in self._bands for _ in idx]

    def read(
        self,
        row: int = 0,
        col: int = 0,
        height: int | None = None,
        width: int | None = None,
        out_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Pixels ``[row, row + height) x [col, col + width)`` of the reference grid (default: everything).

        Args:
            row, col: top-left corner on the reference grid; may be negative.
            height, width: window size (default: to the raster's end).
            out_shape: ``(h, w)`` to resample the window to on read (decimated or upsampled read).

        Returns:
            float32 ``[C, h, w]``; NaN where a band is nodata, masked, NaN, or outside the raster.
        """
        height = self.height - row if height is None else height
        width = self.width - col if width is None else width
        out_h, out_w = out_shape if out_shape is not None else (height, width)
        data = np.full((self.count, out_h, out_w), np.nan, dtype=np.float32)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.height), min(col + width, self.width)
        if r1 <= r0 or c1 <= c0:
            return data
        if out_shape is not None and (r0, c0, r1, c1) != (row, col, row + height, col + width):
            raise ValueError("out_shape= needs a window inside the raster")
        window = Window(c0, r0, c1 - c0, r1 - r0)
        rows = slice(r0 - row, r1 - row) if out_shape is None else slice(None)
        cols = slice(c0 - col, c1 - col) if out_shape is None else slice(None)
        c = 0
        for k, (src, idx, path) in enumerate(self._bands):
            # A warped band without nodata is read together with its alpha band: one warp, not two.
            read = [*idx, self._alpha[k]] if k in self._alpha else idx
            kwargs = {} if out_shape is None else {"out_shape": (len(read), out_h, out_w), "resampling": self.resampling}
            try:
                raw = src.read(read, window=window, masked=True, **kwargs)
                block = np.ma.filled(raw[: len(idx)].astype(np.float32), np.nan)
                if k in self._alpha:
                    block[:, np.ma.getdata(raw[-1]) == 0] = np.nan
            except rasterio.errors.RasterioError as err:
                # GDAL's own message ("Read failed. See previous exception") names neither the file nor the cause.
                detail = err.__cause__ or err
                raise RasterError(f"{path} could not be read (truncated or corrupt file?): {detail}") from None
            data[c : c + len(idx), rows, cols] = block
            c += len(idx)
        return data


def read_raster(
    paths: Sequence[PathType] | PathType,
    indexes: Sequence[int] | None = None,
    out_shape: tuple[int, int] | None = None,
    resampling: str | Resampling = "bilinear",
) -> np.ndarray:
    """Read whole rasters as float32 ``[C, H, W]`` with nodata as NaN (a one-shot :class:`RasterReader`).

    Args:
        paths: one multi-band raster, or one single-band file per band (warped onto the finest grid).
        indexes: 1-based bands of a single file (default: all).
        out_shape: ``(H, W)`` to resample to on read (e.g. bands of other resolutions onto one size).
        resampling: kernel for warping and for ``out_shape``.
    """
    with RasterReader(paths, indexes=indexes, resampling=resampling, gdal_cache_mb=16) as reader:
        return reader.read(out_shape=None if out_shape is None else tuple(out_shape))
