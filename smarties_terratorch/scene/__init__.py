"""Whole-scene tools: tiled embedding (``smarties embed``), segmentation (``smarties predict``) and PCA previews.

The pieces are split by concern: :mod:`.tiling` (tile grid, blending, :func:`tiled_inference`), :mod:`.embed`
(:func:`embed_scene`), :mod:`.predict` (:func:`predict_scene`, safe checkpoint loading), :mod:`.preview`
(:func:`pca_preview`), :mod:`.catalogue` (scene lists and shards) and :mod:`.cli` (argument parsing). Pixels are
read through :class:`smarties_terratorch.io.RasterReader` and written through the atomic writers of
:mod:`smarties_terratorch.io`.
"""

from .catalogue import Scene, expand_scenes, parse_shard, take_shard
from .embed import EmptyOutputError, embed_scene, token_fn
from .predict import load_segmentation_task, predict_scene, task_bands
from .preview import pca_preview
from .tiling import Strip, blend_ramp, tile_grid, tile_offsets, tiled_inference

__all__ = [
    "EmptyOutputError",
    "Scene",
    "Strip",
    "blend_ramp",
    "embed_scene",
    "expand_scenes",
    "load_segmentation_task",
    "parse_shard",
    "pca_preview",
    "predict_scene",
    "take_shard",
    "task_bands",
    "tile_grid",
    "tile_offsets",
    "tiled_inference",
    "token_fn",
]
