"""Tiled inference over whole scenes with bounded memory: ``smarties embed`` and ``smarties predict``.

A scene (one multi-band GeoTIFF, or one file per band at any resolution, resampled on read onto the finest grid)
is cut into overlapping tiles on a fixed stride. Tiles are read with rasterio in blocks of a few tiles (one
windowed read per band per block), normalised and batched by a reader thread while the model runs on the previous
batch; overlapping outputs are blended with a linear ramp over the overlap, and every output row is written to the
GeoTIFF as soon as no later tile can touch it. Memory is therefore independent of the scene's height and, apart from
one strip of output rows (a few MB per 10,000 px of width for embeddings), of its width.

Nodata: a pixel is invalid when any band has the raster's nodata value, is NaN, or lies outside a band file's
footprint. Invalid pixels are set to 0 after normalisation (the training mean, so they add no spurious signal),
and the output is marked nodata where the input is invalid (``predict``: per pixel; ``embed``: per patch token,
when less than ``min_valid`` of its 16x16 pixels are valid).

The building blocks are reusable: :class:`SceneReader` (windowed, resampled reads), :func:`tile_offsets`,
:func:`blend_ramp`, :func:`tiled_inference` (a generator of finished, blended output strips for any
``[B, C, T, T] -> [B, K, T/s, T/s]`` function), :func:`embed_scene`, :func:`predict_scene` and
:func:`pca_preview`.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import rasterio
import rasterio.shutil
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from tqdm.auto import tqdm

from .transforms import SmartiesNormalize

__all__ = [
    "Precision",
    "SceneReader",
    "Strip",
    "blend_ramp",
    "embed_main",
    "embed_scene",
    "load_segmentation_task",
    "pca_preview",
    "precision_context",
    "predict_main",
    "predict_scene",
    "tile_offsets",
    "tiled_inference",
]

Precision = Literal["fp32", "bf16"]
PathType = str | os.PathLike


# ---------------------------------------------------------------------------------------------------- reading
class SceneReader:
    """Windowed reads of a scene as float32 ``[C, h, w]`` plus a validity mask, on one reference grid.

    Args:
        paths: one multi-band raster, or one single-band file per band (any resolutions and extents, same CRS or
            not: each is warped onto the reference grid on read, with ``resampling``).
        indexes: for a single multi-band file, the 1-based bands to read (default: all).
        reference: index into ``paths`` of the file whose grid is used (default: the finest resolution).
        resampling: kernel for files not on the reference grid (``"bilinear"``, ``"nearest"``, ``"cubic"``...).
        gdal_cache_mb: GDAL block cache while the reader is open. GDAL's default (5% of RAM) would keep most of a
            scene's blocks once read, so resident memory would grow with the scene; a small cache keeps it flat.

    Use as a context manager; :meth:`read` accepts windows that reach past the scene (the outside is invalid).
    """

    def __init__(
        self,
        paths: Sequence[PathType] | PathType,
        indexes: Sequence[int] | None = None,
        reference: int | None = None,
        resampling: str = "bilinear",
        gdal_cache_mb: int = 64,
    ) -> None:
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError("SceneReader needs at least one raster path")
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"Raster file(s) not found: {', '.join(missing)}")
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb * 2**20))
        self._sources = [self._stack.enter_context(rasterio.open(p)) for p in paths]
        if len(paths) > 1:
            multi = [str(p) for p, s in zip(paths, self._sources) if s.count != 1]
            if multi:
                raise ValueError(f"With one file per band every file must have one band; {multi} have more.")
            if indexes is not None:
                raise ValueError("indexes= selects bands of a single multi-band file; give one path per band instead.")
        if reference is None:  # finest pixel area wins; the first such file on ties
            reference = min(range(len(paths)), key=lambda i: abs(self._sources[i].res[0] * self._sources[i].res[1]))
        ref = self._sources[reference]
        self.crs, self.transform, self.height, self.width = ref.crs, ref.transform, ref.height, ref.width
        self.paths = [Path(p) for p in paths]
        if len(paths) == 1:
            self._bands = [(ref, list(indexes) if indexes is not None else list(ref.indexes))]
        else:
            resample = Resampling[resampling]
            self._bands = []
            for src in self._sources:
                if src.crs == ref.crs and src.transform == ref.transform and src.shape == ref.shape:
                    self._bands.append((src, [1]))
                    continue
                # A VRT warps only what a window needs; add_alpha marks pixels outside the file's footprint.
                vrt = WarpedVRT(
                    src,
                    crs=ref.crs,
                    transform=ref.transform,
                    width=ref.width,
                    height=ref.height,
                    resampling=resample,
                    src_nodata=src.nodata,
                    nodata=src.nodata,
                    add_alpha=src.nodata is None,
                )
                self._bands.append((self._stack.enter_context(vrt), [1]))
        self.count = sum(len(ix) for _, ix in self._bands)
        # GDAL sizes its block cache from GDAL_CACHEMAX at the first read, and rasterio's Env is thread-local:
        # read one pixel here so the small cache is in force even when later reads come from another thread.
        self.read(0, 0, 1, 1)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``[row, row + height) x [col, col + width)`` of the reference grid.

        Returns:
            ``(data float32 [C, height, width], valid bool [height, width])``; outside the scene ``data`` is 0
            and ``valid`` False. A pixel is valid when no band is nodata/masked/NaN there.
        """
        data = np.zeros((self.count, height, width), dtype=np.float32)
        valid = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.height), min(col + width, self.width)
        if r1 <= r0 or c1 <= c0:
            return data, valid
        window = Window(c0, r0, c1 - c0, r1 - r0)
        inner = (slice(None), slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
        ok = np.ones((r1 - r0, c1 - c0), dtype=bool)
        c = 0
        for src, idx in self._bands:
            block = src.read(idx, window=window, masked=True)
            ok &= ~np.ma.getmaskarray(block).any(axis=0)
            data[c : c + len(idx), inner[1], inner[2]] = block.data
            c += len(idx)
        ok &= ~np.isnan(data[inner]).any(axis=0)
        valid[inner[1:]] = ok
        return data, valid


# ---------------------------------------------------------------------------------------------------- tiling
def tile_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Offsets ``0, stride, 2*stride, ...`` until a tile reaches ``size``; the last tile may run past the end
    (it is padded with invalid pixels), which keeps every tile on the stride grid (and on the patch grid)."""
    if tile <= 0 or not 0 < stride <= tile:
        raise ValueError(f"Need 0 < stride <= tile, got tile={tile}, stride={stride}")
    return list(range(0, max(size - tile, 0) + stride, stride)) if size > tile else [0]


def blend_ramp(size: int, overlap: int) -> np.ndarray:
    """1-D blending weights: a linear ramp over ``overlap`` at both ends, 1 in between, always > 0.

    The 2-D weight of a tile is the outer product; where tiles overlap, the blended value is
    ``sum(w_i * y_i) / sum(w_i)``, so seams fade linearly and a tile's unreliable border counts least.
    """
    i = np.arange(size, dtype=np.float64) + 0.5
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    return np.minimum(1.0, np.minimum(i, size - i) / overlap).astype(np.float32)


@dataclass
class Strip:
    """Finished rows ``[row, row + values.shape[1])`` of the output grid.

    ``values`` is ``[K, n, W]`` (blended), ``valid`` ``[n, W]`` the fraction of valid input pixels per output
    pixel (0..1, blended like the values: outside the scene it is 0).
    """

    row: int
    values: np.ndarray
    valid: np.ndarray


class _StripBlender:
    """Weighted-sum accumulators for output rows ``[top, top + capacity)``; hands back finished rows.

    The buffers are allocated once (``capacity`` = the rows one batch of tiles can span) and shifted up in place
    when rows are handed back, so the blending memory is fixed for the whole scene.
    """

    def __init__(self, channels: int, height: int, width: int, capacity: int) -> None:
        self.height, self.width = height, width
        self.top = 0
        self.acc = np.zeros((channels + 1, capacity, width), dtype=np.float32)  # values + valid fraction
        self.wsum = np.zeros((capacity, width), dtype=np.float32)

    def add(self, row: int, col: int, values: np.ndarray, valid: np.ndarray, weight: np.ndarray) -> None:
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
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = self.acc[:, :n] / self.wsum[:n]
        if (self.wsum[:n] == 0).any():
            raise RuntimeError(f"Rows {self.top}..{until} were never covered by a tile")
        strip = Strip(self.top, blended[:-1], blended[-1])
        keep = self.wsum.shape[0] - n  # shift the unfinished rows up (numpy handles the overlapping copy)
        self.acc[:, :keep], self.wsum[:keep] = self.acc[:, n:], self.wsum[n:]
        self.acc[:, keep:], self.wsum[keep:] = 0, 0
        self.top += n
        return strip


def precision_context(precision: Precision, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``"bf16"`` (matmuls in bf16, norms/softmax kept in fp32), else a no-op."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return contextlib.nullcontext()


def tiled_inference(
    reader: SceneReader,
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    out_channels: int,
    scale: int = 1,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: Precision = "fp32",
    progress: bool = True,
) -> Iterator[Strip]:
    """Run ``fn`` over overlapping tiles of ``reader`` and yield blended output strips, top to bottom.

    Args:
        reader: the scene (anything with ``height``, ``width`` and ``read(row, col, h, w)`` like
            :class:`SceneReader`).
        fn: ``[B, C, T, T] float32 -> [B, K, T/scale, T/scale]`` (called under ``inference_mode`` and the
            precision context).
        out_channels: K.
        scale: input pixels per output pixel (16 for patch tokens, 1 for per-pixel predictions).
        tile_size: T, a multiple of ``scale``.
        overlap: pixels shared by neighbouring tiles, a multiple of ``scale`` and < T.
        batch_size: tiles per call of ``fn``.
        normalize: applied to each batch before invalid pixels are zeroed.
        precision: ``"fp32"`` or ``"bf16"`` (autocast).
        progress: show a tqdm bar over tiles.

    Yields:
        :class:`Strip` s covering output rows ``0 .. ceil(H / scale)`` in order, each exactly once.
    """
    if tile_size % scale or overlap % scale:
        raise ValueError(f"tile_size ({tile_size}) and overlap ({overlap}) must be multiples of {scale}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size), got {overlap} for tile_size {tile_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stride = tile_size - overlap
    rows, cols = tile_offsets(reader.height, tile_size, stride), tile_offsets(reader.width, tile_size, stride)
    tiles = [(r, c) for r in rows for c in cols]
    out_h, out_w, t_out = math.ceil(reader.height / scale), math.ceil(reader.width / scale), tile_size // scale
    ramp = blend_ramp(t_out, overlap // scale)
    weight = np.outer(ramp, ramp)
    batches = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
    # Output rows a batch can touch, from its first tile's top (rows above it are flushed before it runs).
    capacity = max(b[-1][0] - b[0][0] for b in batches) // scale + t_out
    blender = _StripBlender(out_channels, out_h, out_w, capacity)
    source = _TileRows(reader, tile_size, stride, per_block=max(batch_size, 4))

    def prepare(batch: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        reads = [source.tile(r, c) for r, c in batch]
        x = torch.from_numpy(np.stack([d for d, _ in reads]))
        valid = torch.from_numpy(np.stack([v for _, v in reads]))
        with torch.inference_mode():
            if normalize is not None:
                x = normalize(x)
            return x.masked_fill_(~valid[:, None], 0.0), valid

    bar = tqdm(total=len(tiles), desc="tiles", unit="tile", disable=not progress)
    # One reader thread prepares the next batch (GDAL reads release the GIL) while the model runs on this one.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pending = pool.submit(prepare, batches[0])
        for k, batch in enumerate(batches):
            x, valid = pending.result()
            if k + 1 < len(batches):
                pending = pool.submit(prepare, batches[k + 1])
            with torch.inference_mode(), precision_context(precision):
                y = fn(x).float()
            if y.shape[1:] != (out_channels, t_out, t_out):
                raise ValueError(
                    f"The model returned {tuple(y.shape[1:])} per tile, expected {(out_channels, t_out, t_out)}"
                )
            frac = F.avg_pool2d(valid[:, None].float(), scale)[:, 0] if scale > 1 else valid.float()
            y_np, frac_np = y.numpy(), frac.numpy()
            for i, (r, c) in enumerate(batch):
                blender.add(r // scale, c // scale, y_np[i], frac_np[i], weight)
            bar.update(len(batch))
            # Rows above the next tile's top edge are final: write them out and free them.
            next_row = batches[k + 1][0][0] if k + 1 < len(batches) else reader.height
            strip = blender.flush(math.ceil(next_row / scale) if next_row < reader.height else out_h)
            if strip is not None:
                yield strip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


class _TileRows:
    """Serves tiles from blocks of ``per_block`` consecutive tiles of one tile row, each block read once: one
    windowed read per band per block instead of per tile (far less GDAL/warp overhead; overlaps are read once).
    Blocks before the requested tile (row-major) are dropped, so at most two are held whatever the scene size."""

    def __init__(self, reader: SceneReader, tile: int, stride: int, per_block: int = 8) -> None:
        self.reader, self.tile_size, self.stride, self.per_block = reader, tile, stride, per_block
        self.blocks: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}

    def tile(self, row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
        key = (row, col // self.stride // self.per_block)
        if key not in self.blocks:
            for old in [k for k in self.blocks if k < key]:
                del self.blocks[old]
            c0 = key[1] * self.per_block * self.stride
            width = (self.per_block - 1) * self.stride + self.tile_size
            self.blocks[key] = (c0, *self.reader.read(row, c0, self.tile_size, width))
        c0, data, valid = self.blocks[key]
        cols = slice(col - c0, col - c0 + self.tile_size)
        return data[:, :, cols], valid[:, cols]


# ---------------------------------------------------------------------------------------------------- writing
def _open_output(
    path: PathType, reader: SceneReader, count: int, dtype: str, nodata: float, scale: int
) -> rasterio.io.DatasetWriter:
    height, width = math.ceil(reader.height / scale), math.ceil(reader.width / scale)
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": dtype,
        "crs": reader.crs,
        "transform": reader.transform @ Affine.scale(scale),  # same origin, pixel = one scale x scale block
        "nodata": nodata,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if count > 1:
        profile["interleave"] = "pixel" if count <= 4 else "band"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return rasterio.open(path, "w", **profile)


def _strip_window(strip: Strip) -> Window:
    return Window(0, strip.row, strip.values.shape[-1], strip.values.shape[-2])


def _resolve_normalize(stats: str | None, bands: Sequence[str]) -> SmartiesNormalize | None:
    """``None``/"none" -> no normalisation; a JSON/YAML file with mean/std/p1/p99 lists; else a statistics table
    name (:func:`~smarties_terratorch.transforms.normalization_stats`) restricted to ``bands``."""
    if stats is None or str(stats).lower() == "none":
        return None
    path = Path(stats)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"Statistics file {path} not found")
        import yaml  # JSON is YAML

        spec = yaml.safe_load(path.read_text())
        missing = [k for k in ("mean", "std", "p1", "p99") if k not in spec]
        if missing:
            raise ValueError(f"{path} lacks {missing}: it needs per-band lists mean, std, p1, p99 (raw units)")
        return SmartiesNormalize(spec["mean"], spec["std"], spec["p1"], spec["p99"])
    return SmartiesNormalize.from_stats(str(stats), bands=[str(b).split(":")[-1] for b in bands])


# ---------------------------------------------------------------------------------------------------- embed
def _token_fn(model: Any, bands: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Final normed patch tokens of a :class:`~smarties_terratorch.models.vit.SmartiesViT` as ``[B, D, h, w]``."""
    resolved = model.resolve(bands)
    p = model.patch_size

    def fn(x: torch.Tensor) -> torch.Tensor:
        tokens = model.forward_features(x, resolved)[:, model.num_prefix_tokens :]
        return tokens.unflatten(1, (x.shape[-2] // p, x.shape[-1] // p)).permute(0, 3, 1, 2)

    return fn


def embed_scene(
    reader: SceneReader,
    model: Any,
    out: PathType,
    *,
    bands: Any = None,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    precision: Precision = "fp32",
    min_valid: float = 0.5,
    compile: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the patch-token features of a whole scene as a float32 GeoTIFF ``[D, ceil(H/16), ceil(W/16)]``.

    Same CRS, origin at the scene's, pixel size x16 (one output pixel per 16x16 patch). Tokens with less than
    ``min_valid`` valid input pixels are NaN (the file's nodata).

    Returns:
        A summary: output shape, tiles, valid tokens.
    """
    model = model.eval()
    fn = _token_fn(model, bands)
    if compile:
        fn = torch.compile(fn)  # a smaller last batch recompiles once with a dynamic batch
    d, p = model.embed_dim, model.patch_size
    n_valid = 0
    with _open_output(out, reader, d, "float32", float("nan"), p) as dst:
        for strip in tiled_inference(
            reader,
            fn,
            out_channels=d,
            scale=p,
            tile_size=tile_size,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            precision=precision,
            progress=progress,
        ):
            keep = strip.valid >= min_valid - 1e-6
            strip.values[:, ~keep] = np.nan
            n_valid += int(keep.sum())
            dst.write(strip.values, window=_strip_window(strip))
        shape = (dst.count, dst.height, dst.width)
    return {"out": str(out), "shape": shape, "valid_tokens": n_valid, "total_tokens": shape[1] * shape[2]}


# ---------------------------------------------------------------------------------------------------- predict
def load_segmentation_task(checkpoint: PathType, map_location: str = "cpu") -> Any:
    """Rebuild a TerraTorch segmentation task from a Lightning checkpoint written by ``terratorch fit``.

    The checkpoint's ``hyper_parameters`` (saved by the task) name the class (``_class_path``) and hold the
    ``model_args`` given in the config, so the task is re-created exactly as trained and its ``state_dict`` loaded
    strictly. The SMARTIES backbones are registered first (importing :mod:`smarties_terratorch.backbone`).
    """
    import importlib

    from . import backbone as _register  # noqa: F401 - registers smarties_vit_* in TerraTorch's registry

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} not found")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict) or "state_dict" not in ckpt:
        raise ValueError(
            f"{path} is not a Lightning task checkpoint with hyper_parameters (use the '<epoch>.ckpt' file "
            f"terratorch fit writes, not the '_state_dict.ckpt' one)"
        )
    module_name, _, cls_name = hparams.get("_class_path", "terratorch.tasks.SemanticSegmentationTask").rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    # Only the constructor's own arguments (TerraTorch also stores derived entries such as ``task``).
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    task = cls(**{k: v for k, v in hparams.items() if k in accepted})
    task.load_state_dict(ckpt["state_dict"], strict=True)
    return task.eval()


def _task_bands(task: Any) -> list[str] | None:
    args = getattr(task, "hparams", {}).get("model_args", {}) or {}
    bands = args.get("backbone_bands", args.get("backbone_model_bands"))
    return [str(b) for b in bands] if bands is not None else None


def predict_scene(
    reader: SceneReader,
    task: Any,
    out: PathType,
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tile_size: int = 224,
    overlap: int = 32,
    batch_size: int = 8,
    precision: Precision = "fp32",
    nodata: int = 255,
    probabilities: PathType | None = None,
    compile: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the class map (uint8, ``nodata`` where the input is invalid) of a segmentation task over a scene.

    Softmax probabilities of overlapping tiles are blended, then argmax. Optionally also writes the blended
    probabilities (float32, one band per class) to ``probabilities``.
    """
    model = task.model.eval() if hasattr(task, "model") else task.eval()
    num_classes = int(task.hparams["model_args"]["num_classes"]) if hasattr(task, "hparams") else model.num_classes
    if num_classes >= nodata:
        raise ValueError(f"{num_classes} classes do not fit below the nodata value {nodata}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = model(x)
        logits = y.output if hasattr(y, "output") else y
        return logits.float().softmax(dim=1)

    run = torch.compile(fn) if compile else fn
    counts = np.zeros(num_classes, dtype=np.int64)
    with contextlib.ExitStack() as stack:
        dst = stack.enter_context(_open_output(out, reader, 1, "uint8", nodata, 1))
        prob = (
            stack.enter_context(_open_output(probabilities, reader, num_classes, "float32", float("nan"), 1))
            if (probabilities is not None)
            else None
        )
        for strip in tiled_inference(
            reader,
            run,
            out_channels=num_classes,
            tile_size=tile_size,
            overlap=overlap,
            batch_size=batch_size,
            normalize=normalize,
            precision=precision,
            progress=progress,
        ):
            keep = strip.valid >= 1.0 - 1e-6  # a pixel is either valid or not
            classes = strip.values.argmax(axis=0).astype(np.uint8)
            classes[~keep] = nodata
            counts += np.bincount(classes[keep], minlength=num_classes)[:num_classes]
            dst.write(classes[None], window=_strip_window(strip))
            if prob is not None:
                strip.values[:, ~keep] = np.nan
                prob.write(strip.values, window=_strip_window(strip))
    return {"out": str(out), "class_pixels": counts.tolist()}


# ---------------------------------------------------------------------------------------------------- preview
def _row_windows(src: rasterio.io.DatasetReader, rows: int = 256) -> Iterator[Window]:
    for r in range(0, src.height, rows):
        yield Window(0, r, src.width, min(rows, src.height - r))


def pca_preview(
    features: PathType,
    png: PathType | None = None,
    tif: PathType | None = None,
    *,
    sample: int = 20000,
    seed: int = 0,
) -> dict[str, Any]:
    """Project a feature raster onto its first 3 principal components as an RGB preview (PNG and/or GeoTIFF).

    Two windowed passes, so memory stays bounded: a random sample of up to ``sample`` valid tokens fits the PCA
    and the 2nd/98th percentile of each component (contrast stretch), then every window is projected and written
    as uint8 (0 = nodata). The GeoTIFF keeps the georeferencing; the PNG is GDAL's copy of it.

    Returns:
        Explained-variance ratios of the 3 components, the stretch limits and valid-token count.
    """
    if png is None and tif is None:
        raise ValueError("pca_preview needs png= and/or tif=")
    rng = np.random.default_rng(seed)
    with rasterio.open(features) as src:
        total = src.width * src.height
        rate = min(1.0, sample / max(total, 1))
        picks, n_valid = [], 0
        for win in _row_windows(src):
            x = src.read(window=win).reshape(src.count, -1).T
            x = x[~np.isnan(x).any(axis=1)]
            n_valid += len(x)
            picks.append(x[rng.random(len(x)) < rate])
        data = np.concatenate(picks).astype(np.float64)
        if len(data) < 3:
            raise ValueError(f"{features} has fewer than 3 valid tokens: nothing to preview")
        mean = data.mean(axis=0)
        _, s, vt = np.linalg.svd(data - mean, full_matrices=False)
        comps = vt[:3]
        comps *= np.sign(comps.sum(axis=1, keepdims=True) + 1e-12)  # deterministic sign
        proj = (data - mean) @ comps.T
        lo, hi = np.percentile(proj, 2, axis=0), np.percentile(proj, 98, axis=0)
        evr = (s[:3] ** 2 / (s**2).sum()).tolist()
        profile = {
            "driver": "GTiff", "width": src.width, "height": src.height, "count": 3, "dtype": "uint8", "crs": src.crs,
            "transform": src.transform, "nodata": 0, "photometric": "RGB",
        }  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            tif_path = Path(tif) if tif is not None else Path(tmp) / "preview.tif"
            tif_path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(tif_path, "w", **profile) as dst:
                for win in _row_windows(src):
                    x = src.read(window=win)
                    flat = x.reshape(src.count, -1).T.astype(np.float64)
                    bad = np.isnan(flat).any(axis=1)
                    rgb = ((np.nan_to_num(flat) - mean) @ comps.T - lo) / np.maximum(hi - lo, 1e-12)
                    rgb = (1 + 254 * np.clip(rgb, 0, 1)).round().astype(np.uint8)  # 1..255; 0 is nodata
                    rgb[bad] = 0
                    dst.write(rgb.T.reshape(3, int(win.height), int(win.width)), window=win)
            if png is not None:
                Path(png).parent.mkdir(parents=True, exist_ok=True)
                rasterio.shutil.copy(tif_path, png, driver="PNG")
                aux = Path(str(png) + ".aux.xml")
                if aux.exists():  # GDAL's side-car with georeferencing; the PNG is a picture
                    aux.unlink()
    return {"explained_variance_ratio": evr, "stretch_low": lo.tolist(), "stretch_high": hi.tolist(),
            "valid_tokens": n_valid, "sampled_tokens": len(data)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- CLI
def _split(text: str) -> list[str]:
    return [b.strip() for b in text.split(",") if b.strip()]


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "scene", nargs="+", help="one multi-band raster, or one single-band file per band (in --bands order)"
    )
    p.add_argument("--out", required=True, help="output GeoTIFF")
    p.add_argument("--stats", help="normalisation: a statistics table name (e.g. S2-L1C), a JSON/YAML file with "
                   "mean/std/p1/p99 lists, or 'none' (input already normalised)")  # fmt: skip
    p.add_argument("--tile-size", type=int, default=224, help="tile side in pixels, multiple of 16 (default 224)")
    p.add_argument("--overlap", type=int, default=32, help="overlap of neighbouring tiles, multiple of 16 (default 32)")
    p.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass (default 8)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast (default fp32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow first batch)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--resampling", default="bilinear", help="for band files of other resolutions (default bilinear)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _open_scene(scene: Sequence[str], n_bands: int) -> SceneReader:
    if len(scene) > 1 and len(scene) != n_bands:
        raise ValueError(f"{len(scene)} band files for {n_bands} bands: give one file per band, in --bands order")
    return SceneReader(scene)


def _check_count(reader: SceneReader, bands: Sequence[str]) -> None:
    if reader.count != len(bands):
        raise ValueError(
            f"The scene has {reader.count} bands but --bands names {len(bands)}; name every band of the file "
            f"in order (or pass one file per band)."
        )


def embed_main(argv: list[str]) -> int:
    """``smarties embed``: tiled patch-token features of a scene as a georeferenced GeoTIFF."""
    p = argparse.ArgumentParser(prog="smarties embed", description=embed_main.__doc__)
    _common_args(p)
    p.add_argument("--bands", required=True, help="comma-separated band names, one per input channel")
    p.add_argument("--sensor", help="sensor preset for bare band names (e.g. S2-L1C)")
    p.add_argument("--arch", default="smarties_vit_base_patch16", help="model factory (default ViT-B/16)")
    p.add_argument("--weights", help="checkpoint (local .safetensors/.pth) or declared weights tag")
    p.add_argument("--min-valid", type=float, default=0.5, help="min valid pixel fraction per token (default 0.5)")
    p.add_argument("--preview", help="also write a PCA-to-RGB preview: a .png and/or .tif path (comma-separated)")
    args = p.parse_args(argv)
    from .models import vit

    if args.threads:
        torch.set_num_threads(args.threads)
    bands = _split(args.bands)
    factory = getattr(vit, args.arch, None) if args.arch in vit.VARIANTS else None
    if factory is None:
        raise ValueError(f"Unknown --arch {args.arch!r}; choose one of {', '.join(vit.VARIANTS)}")
    weights = args.weights
    local = weights is not None and Path(weights).exists()
    model = factory(bands=bands, sensor=args.sensor, ckpt_path=weights if local else None, pretrained=weights or False)
    if weights is None:
        print("smarties embed: WARNING: no --weights given, the model is randomly initialised", file=sys.stderr)
    with _open_scene(args.scene, len(bands)) as reader:
        _check_count(reader, bands)
        summary = embed_scene(
            reader, model, args.out, normalize=_resolve_normalize(args.stats, bands), tile_size=args.tile_size,
            overlap=args.overlap, batch_size=args.batch_size, precision=args.precision, min_valid=args.min_valid,
            compile=args.compile, progress=not args.quiet,
        )  # fmt: skip
    print(json.dumps(summary))
    if args.preview:
        paths = _split(args.preview)
        png = next((q for q in paths if q.lower().endswith(".png")), None)
        tif = next((q for q in paths if q.lower().endswith((".tif", ".tiff"))), None)
        print(json.dumps(pca_preview(args.out, png=png, tif=tif)))
    return 0


def predict_main(argv: list[str]) -> int:
    """``smarties predict``: tiled class map of a scene from a TerraTorch segmentation checkpoint."""
    p = argparse.ArgumentParser(prog="smarties predict", description=predict_main.__doc__)
    _common_args(p)
    p.add_argument("--checkpoint", required=True, help="Lightning checkpoint written by terratorch fit")
    p.add_argument("--bands", help="override the band names stored in the checkpoint (model_args.backbone_bands)")
    p.add_argument("--probabilities", help="also write blended class probabilities to this GeoTIFF")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load_segmentation_task(args.checkpoint)
    bands = _split(args.bands) if args.bands else _task_bands(task)
    if bands is None:
        raise ValueError("The checkpoint has no model_args.backbone_bands; pass --bands")
    with _open_scene(args.scene, len(bands)) as reader:
        _check_count(reader, bands)
        summary = predict_scene(
            reader, task, args.out, normalize=_resolve_normalize(args.stats, bands), tile_size=args.tile_size,
            overlap=args.overlap, batch_size=args.batch_size, precision=args.precision,
            probabilities=args.probabilities, compile=args.compile, progress=not args.quiet,
        )  # fmt: skip
    print(json.dumps(summary))
    return 0
