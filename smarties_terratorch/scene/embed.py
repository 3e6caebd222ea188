"""Patch-token features of a whole scene as a georeferenced GeoTIFF (:func:`embed_scene`)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window

from ..io import BackgroundWriter, check_output, grid_of, open_geotiff
from .tiling import Strip, tile_grid, tiled_inference

__all__ = ["EmptyOutputError", "embed_scene", "strip_window", "token_fn"]

PathType = str | os.PathLike


class EmptyOutputError(ValueError):
    """A run that found no valid token or pixel: nothing is written unless the caller allows empty outputs."""


def strip_window(strip: Strip) -> Window:
    """The output window a :class:`~smarties_terratorch.scene.tiling.Strip` covers."""
    return Window(0, strip.row, strip.values.shape[-1], strip.values.shape[-2])


def token_fn(model: Any, bands: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Final normed patch tokens of a :class:`~smarties_terratorch.models.vit.SmartiesViT` as ``[B, D, h, w]``."""
    resolved = model.resolve(bands)
    p = model.patch_size

    def fn(x: torch.Tensor) -> torch.Tensor:
        tokens = model.forward_features(x, resolved)[:, model.num_prefix_tokens :]
        return tokens.unflatten(1, (x.shape[-2] // p, x.shape[-1] // p)).permute(0, 3, 1, 2)

    return fn


def embed_scene(
    reader: Any,
    model: Any,
    out: PathType,
    *,
    bands: Any = None,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    min_valid: float = 0.5,
    compile: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Write the patch-token features of a whole scene as a float32 GeoTIFF ``[D, ceil(H/16), ceil(W/16)]``.

    Same CRS, origin at the scene's, pixel size x16 (one output pixel per 16x16 patch). Tokens with less than
    ``min_valid`` valid input pixels are NaN (the file's nodata). The file appears under ``out`` only once complete.

    Args:
        reader: the scene (:class:`~smarties_terratorch.io.RasterReader`).
        model: a SMARTIES ViT; it is moved to ``device``.
        out: output GeoTIFF; must not be one of the reader's files.
        bands: band list for the model (default: the model's own).
        normalize: per-batch normalisation (e.g. :meth:`SmartiesNormalize.from_spec`); moved to ``device``.
        tile_size, overlap, batch_size: tiling (multiples of the patch size), see :func:`tiled_inference`.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast.
        device: where the model runs and tiles are normalised and blended.
        min_valid: fraction of valid pixels a token needs, in ``(0, 1]``.
        compile: ``torch.compile`` the model.
        progress: show a progress bar.
        overwrite: replace an existing ``out``.
        allow_empty: keep the output even when no token is valid (otherwise :class:`EmptyOutputError`).

    Returns:
        A summary: output path and shape, tiles, batches, valid tokens.

    Raises:
        EmptyOutputError: no token reached ``min_valid``; nothing is written.
    """
    if not 0 < min_valid <= 1:
        raise ValueError(f"min_valid must be in (0, 1], got {min_valid}")
    check_output(out, getattr(reader, "paths", ()), overwrite=overwrite)
    device = torch.device(device)
    model = model.eval().to(device)
    if isinstance(normalize, torch.nn.Module):
        normalize = normalize.to(device)
    fn = token_fn(model, bands)
    if compile:
        fn = torch.compile(fn)  # a smaller last batch recompiles once with a dynamic batch
    d, p = model.embed_dim, model.patch_size
    n_valid = 0
    # Deflate level 1: float features barely compress at any level (measured: the same size within 0.3 %
    # at level 6), and level 1 costs about 20 % less CPU. The strips are compressed and written on a background
    # thread while the model runs on the next batch.
    grid = grid_of(reader, p)
    with open_geotiff(out, count=d, dtype="float32", nodata=float("nan"), zlevel=1, **grid) as dst:
        strips = tiled_inference(
            reader, fn, out_channels=d, scale=p, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
            normalize=normalize, precision=precision, device=device, progress=progress,
        )  # fmt: skip
        with BackgroundWriter(dst) as writer:
            for strip in strips:
                keep = strip.valid >= min_valid - 1e-6
                strip.values[:, ~keep] = np.nan
                n_valid += int(keep.sum())
                writer.write(strip.values, window=strip_window(strip))
        shape = (dst.count, dst.height, dst.width)
        if n_valid == 0 and not allow_empty:
            # Raised inside the writer: the temporary file is discarded and an earlier output stays as it was.
            raise EmptyOutputError(
                f"{_scene_name(reader)}: no token has {min_valid:g} or more valid pixels (the scene is nodata there, "
                f"or --min-valid is too high); {out} was not written. Check the nodata value and the band files, "
                f"lower --min-valid, or pass --allow-empty to keep an all-nodata output."
            )
    n_tiles = len(tile_grid(reader.height, reader.width, tile_size, overlap))
    return {
        "out": str(out), "shape": shape, "tiles": n_tiles, "batches": math.ceil(n_tiles / batch_size),
        "valid_tokens": n_valid, "total_tokens": shape[1] * shape[2], "device": str(device), "precision": precision,
    }  # fmt: skip


def _scene_name(reader: Any) -> str:
    paths = getattr(reader, "paths", None)
    if not paths:
        return "the scene"
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} band files)"
