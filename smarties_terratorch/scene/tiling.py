"""Tiling with bounded memory: tile offsets, blending ramp, a strip blender and :func:`tiled_inference`.

A scene is cut into overlapping tiles on a fixed stride. Tiles are read in blocks of a few tiles (one windowed read
per band per block), batched and moved to the device by a reader thread (GDAL and numpy only) while the model runs
on the previous batch, and normalised on the model's thread; overlapping outputs are blended on the device with a
linear ramp over the overlap, and every output row is handed back as soon as no later tile can touch it. Memory is therefore independent of the scene's height
and, apart from one strip of output rows, of its width.

Nodata: a pixel is invalid where the reader returns NaN in any band (nodata value, mask, NaN, outside a band
file's footprint or the scene). Invalid pixels are set to 0 after normalisation (the training mean, so they add no
spurious signal) and each output pixel carries the blended fraction of valid input pixels under it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..device import autocast_context

__all__ = ["Strip", "blend_ramp", "tile_grid", "tile_offsets", "tiled_inference"]


def tile_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Offsets ``0, stride, 2*stride, ...`` until a tile reaches ``size``.

    The last tile may run past the end (it is padded with invalid pixels), which keeps every tile on the stride
    grid and therefore on the patch grid.
    """
    if tile <= 0 or not 0 < stride <= tile:
        raise ValueError(f"Need 0 < stride <= tile, got tile={tile}, stride={stride}")
    return list(range(0, max(size - tile, 0) + stride, stride)) if size > tile else [0]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left ``(row, col)`` of every tile of a ``height x width`` scene, row-major."""
    stride = tile - overlap
    return [(r, c) for r in tile_offsets(height, tile, stride) for c in tile_offsets(width, tile, stride)]


def blend_ramp(size: int, overlap: int) -> np.ndarray:
    """1-D blending weights: a linear ramp over ``overlap`` at both ends, 1 in between, always > 0.

    The 2-D weight of a tile is the outer product; where tiles overlap, the blended value is
    ``sum(w_i * y_i) / sum(w_i)``, so seams fade linearly and a tile's unreliable border counts least.
    """
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    i = np.arange(size, dtype=np.float64) + 0.5
    return np.minimum(1.0, np.minimum(i, size - i) / overlap).astype(np.float32)


@dataclass
class Strip:
    """Finished rows ``[row, row + values.shape[1])`` of the output grid, on the CPU.

    ``values`` is ``[K, n, W]`` (blended), ``valid`` ``[n, W]`` the fraction of valid input pixels per output
    pixel (0..1, blended like the values; outside the scene it is 0).
    """

    row: int
    values: np.ndarray
    valid: np.ndarray


class _StripBlender:
    """Weighted-sum accumulators (torch, on the device) for output rows ``[top, top + capacity)``.

    The buffers are allocated once (``capacity`` = the rows one batch of tiles can span) and shifted up when rows
    are handed back, so the blending memory is fixed for the whole scene; only finished rows go to the CPU.
    """

    def __init__(self, channels: int, height: int, width: int, capacity: int, device: torch.device) -> None:
        self.height, self.width = height, width
        self.top = 0
        self.acc = torch.zeros((channels + 1, capacity, width), dtype=torch.float32, device=device)  # values + valid
        self.wsum = torch.zeros((capacity, width), dtype=torch.float32, device=device)

    def add(self, row: int, col: int, values: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor) -> None:
        h, w = values.shape[-2:]
        r1, c1 = min(row + h, self.height), min(col + w, self.width)
        if r1 <= row or c1 <= col:
            return
        if r1 - self.top > self.wsum.shape[0]:
            raise RuntimeError(f"Tile rows {row}..{r1} do not fit the blending strip starting at row {self.top}")
        rows, cols = slice(row - self.top, r1 - self.top), slice(col, c1)
        wt = weight[: r1 - row, : c1 - col]
        self.acc[:-1, rows, cols] += wt * values[:, : r1 - row, : c1 - col]
        self.acc[-1, rows, cols] += wt * valid[: r1 - row, : c1 - col]
        self.wsum[rows, cols] += wt

    def flush(self, until: int) -> Strip | None:
        """Hand back rows ``[top, until)`` (no tile added later may touch them) and drop them from the strip."""
        n = min(until, self.height) - self.top
        if n <= 0:
            return None
        if n > self.wsum.shape[0]:
            raise RuntimeError(f"Rows {self.top}..{until} do not fit the blending strip")
        if bool((self.wsum[:n] == 0).any()):
            raise RuntimeError(f"Rows {self.top}..{until} were never covered by a tile")
        blended = (self.acc[:, :n] / self.wsum[:n]).cpu().numpy()
        strip = Strip(self.top, blended[:-1], blended[-1])
        keep = self.wsum.shape[0] - n  # shift the unfinished rows up (clone: the source and target overlap)
        self.acc[:, :keep] = self.acc[:, n:].clone()
        self.wsum[:keep] = self.wsum[n:].clone()
        self.acc[:, keep:], self.wsum[keep:] = 0, 0
        self.top += n
        return strip


class _TileRows:
    """Serves tiles from blocks of ``per_block`` consecutive tiles of one tile row, each block read once.

    One windowed read per band per block instead of per tile (far less GDAL/warp overhead; overlaps are read
    once). Blocks before the requested tile (row-major) are dropped, so at most two are held whatever the scene.
    """

    def __init__(self, reader: Any, tile: int, stride: int, per_block: int = 8) -> None:
        self.reader, self.tile_size, self.stride, self.per_block = reader, tile, stride, per_block
        self.blocks: dict[tuple[int, int], tuple[int, np.ndarray]] = {}

    def tile(self, row: int, col: int) -> np.ndarray:
        key = (row, col // self.stride // self.per_block)
        if key not in self.blocks:
            for old in [k for k in self.blocks if k < key]:
                del self.blocks[old]
            c0 = key[1] * self.per_block * self.stride
            width = (self.per_block - 1) * self.stride + self.tile_size
            self.blocks[key] = (c0, self.reader.read(row, c0, self.tile_size, width))
        c0, data = self.blocks[key]
        return data[:, :, col - c0 : col - c0 + self.tile_size]


def _check_sizes(scale: int, tile_size: int, overlap: int, batch_size: int) -> None:
    if tile_size <= 0 or tile_size % scale or overlap % scale:
        raise ValueError(f"tile size ({tile_size}) and overlap ({overlap}) must be positive multiples of {scale}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile size), got {overlap} for tile size {tile_size}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")


def tiled_inference(
    reader: Any,
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    out_channels: int,
    scale: int = 1,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: str = "fp32",
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Iterator[Strip]:
    """Run ``fn`` over overlapping tiles of ``reader`` and yield blended output strips, top to bottom.

    Args:
        reader: the scene: anything with ``height``, ``width`` and ``read(row, col, h, w) -> float32 [C, h, w]``
            with NaN for invalid pixels, like :class:`~smarties_terratorch.io.RasterReader`.
        fn: ``[B, C, T, T] float32 -> [B, K, T/scale, T/scale]`` on ``device`` (called under ``inference_mode``
            and the precision's autocast).
        out_channels: K.
        scale: input pixels per output pixel (16 for patch tokens, 1 for per-pixel predictions).
        tile_size: T, a multiple of ``scale``.
        overlap: pixels shared by neighbouring tiles, a multiple of ``scale`` and < T.
        batch_size: tiles per call of ``fn``.
        normalize: applied to each batch on the device before invalid pixels are zeroed (must live there).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; see :mod:`smarties_terratorch.device`).
        device: where tiles are normalised, the model runs and outputs are blended.
        progress: show a tqdm bar over tiles.

    Yields:
        :class:`Strip` s covering output rows ``0 .. ceil(H / scale)`` in order, each exactly once.
    """
    _check_sizes(scale, tile_size, overlap, batch_size)
    device = torch.device(device)
    stride = tile_size - overlap
    tiles = tile_grid(reader.height, reader.width, tile_size, overlap)
    out_h, out_w, t_out = math.ceil(reader.height / scale), math.ceil(reader.width / scale), tile_size // scale
    ramp = torch.from_numpy(blend_ramp(t_out, overlap // scale))
    weight = torch.outer(ramp, ramp).to(device)
    batches = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
    # Output rows a batch can touch, from its first tile's top (rows above it are flushed before it runs).
    capacity = max(b[-1][0] - b[0][0] for b in batches) // scale + t_out
    blender = _StripBlender(out_channels, out_h, out_w, capacity, device)
    source = _TileRows(reader, tile_size, stride, per_block=max(batch_size, 4))

    def prepare(batch: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, bool]:
        # numpy only: a torch op here would start a second OpenMP team that fights the model's threads for the
        # cores (the mask and normalisation run on the model's thread instead, see below).
        x = np.stack([source.tile(r, c) for r, c in batch])
        valid = ~np.isnan(x).any(axis=1)
        return torch.from_numpy(x).to(device), torch.from_numpy(valid).to(device), bool(valid.all())

    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=not progress)
    # One reader thread prepares the next batch (GDAL reads release the GIL) while the model runs on this one.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pending = pool.submit(prepare, batches[0])
        for k, batch in enumerate(batches):
            x, valid, all_valid = pending.result()
            if k + 1 < len(batches):
                pending = pool.submit(prepare, batches[k + 1])
            with torch.inference_mode():
                if normalize is not None:
                    x = normalize(x)
                if not all_valid:  # most batches of a scene are: skip a full pass over the batch
                    x = x.masked_fill_(~valid[:, None], 0.0)
                with autocast_context(precision, device):
                    y = fn(x)
                y = y.float()
                if y.shape[1:] != (out_channels, t_out, t_out):
                    raise ValueError(
                        f"The model returned {tuple(y.shape[1:])} per tile, expected {(out_channels, t_out, t_out)}"
                    )
                frac = F.avg_pool2d(valid[:, None].float(), scale)[:, 0] if scale > 1 else valid.float()
                for i, (r, c) in enumerate(batch):
                    blender.add(r // scale, c // scale, y[i], frac[i], weight)
                bar.update(len(batch))
                # Rows above the next tile's top edge are final: hand them out and free them.
                next_row = batches[k + 1][0][0] if k + 1 < len(batches) else reader.height
                strip = blender.flush(math.ceil(next_row / scale) if next_row < reader.height else out_h)
            if strip is not None:
                yield strip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
