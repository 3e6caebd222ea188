"""Pixel-level helpers shared by the dataset readers: band files onto one shape, normalisation with a nodata
mask, channel-count checks, the evaluation geometry of the scene datasets (short-side resize, centre crop).
Everything reads through :mod:`smarties_terratorch.io`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import RasterReader
from ..normalization import resize_to

__all__ = ["center_crop", "check_channels", "prepare_image", "read_band_files", "resize_short_side"]

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


# torchvision's F.resize(x, size) and F.center_crop differ from these in rounding (the long side is truncated, not
# rounded; the crop offset is round((h - size) / 2), not floor) and F.center_crop pads a too-small image instead
# of failing, so these two keep the exact pixels the data modules have always produced.
def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[C, H, W]`` so that its shorter side is ``size`` (bicubic, anti-aliased), keeping the aspect."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    return resize_to(x, (max(size, round(h * scale)), max(size, round(w * scale))))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of ``[C, H, W]``; the offset is ``(H - size) // 2`` (floor)."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"Cannot centre-crop {size}x{size} from a {h}x{w} image")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]
