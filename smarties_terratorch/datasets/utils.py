"""Pixel-level helpers shared by the dataset readers: band files onto one shape, normalisation with a nodata
mask, channel-count checks. Everything reads through :mod:`smarties_terratorch.io`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import RasterReader

__all__ = ["check_channels", "prepare_image", "read_band_files"]

PathType = str | os.PathLike


def read_band_files(
    paths: Sequence[PathType],
    out_shape: tuple[int, int] | None = None,
    resampling: str = "bilinear",
) -> np.ndarray:
    """One single-band file per band as float32 ``[C, H, W]`` (nodata as NaN), each resampled on read.

    Meant for co-registered patches whose bands differ only in pixel size (BigEarthNet's 10/20/60 m files):
    each file is resampled to ``out_shape`` by GDAL while reading, as the SMARTIES authors prepare such patches;
    warping them onto one grid (:class:`~smarties_terratorch.io.RasterReader` with several paths) is for files
    of different extents or CRS.

    Args:
        paths: the band files, in channel order.
        out_shape: ``(H, W)`` of the output (default: the largest band's shape).
        resampling: kernel of the resampling on read.
    """
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(RasterReader(p, [1], resampling=resampling, gdal_cache_mb=16)) for p in paths]
        shape = out_shape if out_shape is not None else max((r.shape for r in readers), key=lambda s: s[0] * s[1])
        shape = (int(shape[0]), int(shape[1]))
        return np.concatenate([r.read(out_shape=shape) for r in readers])


def prepare_image(
    image: np.ndarray, normalize: Callable[[torch.Tensor], torch.Tensor], nan_fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise a raw ``[C, H, W]`` sample; returns the image (NaN -> ``nan_fill``, i.e. the band mean after
    normalisation) and a ``[H, W]`` bool mask of pixels where any band was nodata/NaN."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    invalid = torch.isnan(x).any(dim=0)
    x = normalize(x)
    return torch.nan_to_num(x, nan=nan_fill), invalid


def check_channels(image: np.ndarray, expected: int, path: Path, what: str) -> None:
    """Raise ``ValueError`` naming ``path`` unless ``image`` has ``expected`` channels."""
    if image.shape[0] != expected:
        raise ValueError(f"{path}: {image.shape[0]} channels, but {what} files have {expected}")
