"""Deprecated alias of :mod:`smarties_terratorch.scene` (removed in 0.2).

``smarties_terratorch.inference`` mixed reading, tiling, writing and argument parsing; its pieces now live in
:mod:`smarties_terratorch.scene` (tiling, embedding, prediction, previews, command line),
:mod:`smarties_terratorch.io` (reading, as :class:`~smarties_terratorch.io.RasterReader`) and
:mod:`smarties_terratorch.device` (precision).
"""

import warnings

from .device import autocast_context as precision_context
from .io import RasterReader as SceneReader
from .scene import (
    Strip,
    blend_ramp,
    embed_scene,
    load_segmentation_task,
    pca_preview,
    predict_scene,
    tile_offsets,
    tiled_inference,
)
from .scene.cli import embed_main, predict_main

warnings.warn(
    "smarties_terratorch.inference is deprecated and will be removed in 0.2; use smarties_terratorch.scene "
    "(and smarties_terratorch.io.RasterReader for SceneReader, smarties_terratorch.device.autocast_context for "
    "precision_context)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
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
