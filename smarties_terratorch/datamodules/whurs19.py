"""WHU-RS19 (VHR RGB scenes, 19 classes) for TerraTorch, read as the SMARTIES authors do.

On-disk layout (GitHub ``CAPTAIN-WHU/BED4RS``, ``datasets/WHU-RS19.zip``)::

    <root>/<Class>/<class>_<i>.jpg     RGB JPEG, 600 x 600, 1,005 images in 19 class folders

Per sample: rasterio read (``[3, H, W]``) -> SMARTIES normalisation with the WHU-RS19 statistics
-> **bilinear** (anti-aliased) resize to 224: WHU-RS19 is the one dataset the authors
resize with scikit-image order 1 instead of bicubic. No augmentation (the paper evaluates it with kNN only).
Bands are the VHR RGB ranges: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.

Split files: ``./<Class>/<file>`` lines (the paper's 898 / 107 split); without them a deterministic stratified
hold-out is used (not the paper's split).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from rasterio.errors import NotGeoreferencedWarning

from ..io import read_raster
from ..transforms import SmartiesNormalize, normalization_stats, resize_to
from .base import prepare_image
from .scene import ClassFolderDataModule, check_channels

__all__ = ["WHURS19_BANDS", "WHURS19DataModule"]

#: Channel order of a WHU-RS19 JPEG (and of its statistics).
WHURS19_BANDS: tuple[str, ...] = normalization_stats("WHU-RS19").bands


class WHURS19DataModule(ClassFolderDataModule):
    """WHU-RS19 class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: folder with one sub-folder per class.
        size: model input side (224).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.scene.ClassFolderDataModule` (``augment`` is ignored:
            the paper has no training protocol for WHU-RS19).
    """

    pattern = "*.jpg"
    dataset_name = "WHU-RS19"
    layout_hint = "<root>/<Class>/<class>_<i>.jpg (RGB JPEG, 600 x 600)"

    def __init__(self, root: str, size: int = 224, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.size = size
        self.bands = list(WHURS19_BANDS)
        self.normalize = SmartiesNormalize.from_spec("WHU-RS19")

    def load(self, path: Path, train: bool) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain JPEGs have no georeference
            raw = read_raster(path)
        check_channels(raw, len(WHURS19_BANDS), path, "WHU-RS19 RGB JPEG")
        image, _ = prepare_image(raw, self.normalize)
        return resize_to(image, self.size, mode="bilinear")
