"""GeoTIFF chips for TerraTorch's tiled inference (``tiled_inference(..., source=, sink=)``, TerraTorch >= 1.2.13).

TerraTorch 1.2.13 lets :func:`terratorch.tasks.tiled_inference.tiled_inference` ask a *source* for each chip and
hand each predicted chip to a *sink*. :class:`RasterTileSource` reads every chip as a window of a
:class:`~smarties_terratorch.io.RasterReader` (one multi-band file or one file per band, nodata filled), so the
scene is never loaded whole; :class:`GeoTiffTileSink` blends the predicted chips with TerraTorch's blend masks and
writes the result on the scene's grid (CRS and transform kept) through the atomic GeoTIFF writer. Neither class
imports TerraTorch: both follow its ``TileSource`` / ``TileSink`` protocols by shape.

Example::

    from terratorch.tasks.tiled_inference import tiled_inference

    with RasterReader("scene.tif") as reader:
        source, sink = RasterTileSource(reader), GeoTiffTileSink("classes.tif", reader, argmax=True)
        tiled_inference(lambda x: task.model(x).output, source.input_batch(crop=224), crop=224, stride=192,
                        padding=False, source=source, sink=sink)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .reader import RasterReader
from .writer import PathType, grid_of, open_geotiff

__all__ = ["GeoTiffTileSink", "RasterTileSource"]


def _chip_window(tile: Any) -> tuple[int, int]:
    """Top-left ``(row, col)`` of a chip in the scene: ``input_coords`` are where the *cropped* prediction goes."""
    rows, cols = tile.input_coords
    crop = tile.output_crop
    return rows.start - (crop[0].start if crop is not None else 0), cols.start - (crop[1].start if crop is not None else 0)


class RasterTileSource:
    """A TerraTorch ``TileSource``: each chip is a window read from ``reader`` on demand.

    Args:
        reader: the scene (its bands in the order the model expects).
        transform: applied to each ``[C, h, w]`` chip after reading (e.g. the model's normalisation).
        fill: value for nodata / NaN pixels (the model cannot take NaN).

    Pass :meth:`input_batch` as ``tiled_inference``'s ``input_batch`` and ``padding=False``: chip windows are
    computed on the scene's own grid.
    """

    def __init__(self, reader: RasterReader, transform: Callable[[Tensor], Tensor] | None = None, fill: float = 0.0):
        self.reader = reader
        self.transform = transform
        self.fill = fill

    def input_batch(self, crop: int | tuple[int, int]) -> Tensor:
        """A stand-in of the scene's shape ``[1, C, H, W]`` that holds no pixels (a broadcast zero).

        Raises:
            ValueError: the scene fits in one ``crop`` chip; ``tiled_inference`` would then run the model on
                ``input_batch`` itself and never call the source or the sink.
        """
        h_crop, w_crop = (crop, crop) if isinstance(crop, int) else crop
        height, width = self.reader.shape
        if height <= h_crop and width <= w_crop:
            raise ValueError(
                f"The scene ({height} x {width}) fits in one {h_crop} x {w_crop} chip, so tiled_inference would "
                "skip the source and sink; use a smaller crop, or run the model on reader.read() directly."
            )
        return torch.zeros((), dtype=torch.float32).expand(1, self.reader.count, height, width)

    def __call__(self, tile: Any) -> Tensor:
        """The ``[C, h, w]`` float32 chip of ``tile`` (a TerraTorch ``InferenceInput``), read from the scene."""
        stand_in = tile.input_data
        if any(stride != 0 for stride in stand_in.stride()):
            raise ValueError(
                "RasterTileSource needs tiled_inference(input_batch=source.input_batch(crop), padding=False, ...): "
                "with padding or another input_batch, chip coordinates are not scene coordinates."
            )
        height, width = stand_in.shape[-2:]
        row, col = _chip_window(tile)
        if row < 0 or col < 0 or row + height > self.reader.height or col + width > self.reader.width:
            raise ValueError(f"Chip at ({row}, {col}) reaches past the scene; call tiled_inference with padding=False.")
        chip = torch.from_numpy(self.reader.read(row, col, height, width)).nan_to_num_(nan=self.fill)
        return self.transform(chip) if self.transform is not None else chip


class GeoTiffTileSink:
    """A TerraTorch ``TileSink``: blends predicted chips and writes them as a GeoTIFF on ``reader``'s grid.

    Overlaps are averaged with TerraTorch's blend masks (as its in-memory sink with ``average_patches=True``).
    ``finalize`` writes the file atomically (temporary name, then rename) and returns ``None``.

    Args:
        path: output GeoTIFF.
        reader: the scene whose grid (size, CRS, transform) the output takes.
        argmax: write the per-pixel argmax over channels as one ``uint8`` band (``uint16`` past 256 classes), a
            class map, instead of the ``float32`` channels.
    """

    def __init__(self, path: PathType, reader: RasterReader, argmax: bool = False) -> None:
        self.path = path
        self.grid = grid_of(reader)
        self.argmax = argmax
        self._sum: np.ndarray | None = None
        self._weight = np.zeros((self.grid["height"], self.grid["width"]), dtype=np.float32)

    def write(self, tile: Any, prediction: Tensor) -> None:
        """Add one predicted chip (``[C, h, w]`` or ``[h, w]``) at ``tile``'s place, weighted by its blend mask."""
        if tile.output_crop is not None:
            prediction = prediction[..., tile.output_crop[0], tile.output_crop[1]]
        values = prediction.float().numpy()
        values = values[None] if values.ndim == 2 else values
        if self._sum is None:
            self._sum = np.zeros((values.shape[0], *self._weight.shape), dtype=np.float32)
        rows, cols = tile.input_coords
        mask = tile.blend_mask.numpy()
        self._sum[:, rows, cols] += values * mask
        self._weight[rows, cols] += mask

    def finalize(self) -> None:
        """Write the blended result to ``path``.

        Raises:
            RuntimeError: no chip was written, or some pixel was covered by no chip.
        """
        if self._sum is None:
            raise RuntimeError(f"No chips were written; {self.path} was not created.")
        if (self._weight == 0).any():
            raise RuntimeError(f"{int((self._weight == 0).sum())} pixels got no prediction; {self.path} was not created.")
        out = self._sum / self._weight
        if self.argmax:
            out = out.argmax(0)[None].astype(np.uint8 if out.shape[0] <= 256 else np.uint16)
        with open_geotiff(self.path, count=out.shape[0], dtype=str(out.dtype), **self.grid) as dst:
            dst.write(out)
        return None
