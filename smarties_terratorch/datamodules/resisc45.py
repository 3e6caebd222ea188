"""NWPU-RESISC45 (VHR RGB scenes) for TerraTorch, read as the SMARTIES authors do.

On-disk layout (not in the authors' download script)::

    <root>/<class>/<class>_<NNN>.jpg    RGB JPEG, 256 x 256, 45 classes

Per sample: read (:func:`~smarties_terratorch.io.read_raster`) (GDAL's JPEG driver, ``[3, H, W]``) -> SMARTIES normalisation with the RESISC45
statistics -> to 224:

* evaluation and linear-probe training: rescale so the short side is ``resize_size`` (256), centre-crop 224;
* fine-tuning training (``augment: true``): random flips + rot90, then RandomResizedCrop(scale 0.25-1,
  ratio 1) to 224.

Bands are the VHR RGB ranges: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from rasterio.errors import NotGeoreferencedWarning

from ..io import read_raster
from ..transforms import SmartiesNormalize, normalization_stats
from .base import prepare_image
from .scene import (
    ClassFolderDataModule,
    center_crop,
    check_channels,
    random_flip_rot90,
    random_resized_crop,
    resize_short_side,
)

__all__ = ["RESISC45_BANDS", "RESISC45DataModule"]

#: Channel order of a RESISC45 JPEG (and of the RESISC45 statistics).
RESISC45_BANDS: tuple[str, ...] = normalization_stats("RESISC45").bands


class RESISC45DataModule(ClassFolderDataModule):
    """RESISC45 class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: folder with one sub-folder per class.
        size: model input side (224).
        resize_size: short side before the centre crop (256).
        crop_scale: area range of the fine-tuning RandomResizedCrop.
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.scene.ClassFolderDataModule`.
    """

    pattern = "*.jpg"
    dataset_name = "RESISC45"
    layout_hint = "<root>/<class>/<class>_<NNN>.jpg (RGB JPEG)"

    def __init__(
        self,
        root: str,
        size: int = 224,
        resize_size: int = 256,
        crop_scale: tuple[float, float] = (0.25, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if resize_size < size:
            raise ValueError(f"resize_size ({resize_size}) must be >= size ({size}) for the centre crop")
        self.size = size
        self.resize_size = resize_size
        self.crop_scale = tuple(crop_scale)
        self.bands = list(RESISC45_BANDS)
        self.normalize = SmartiesNormalize.from_spec("RESISC45")

    def load(self, path: Path, train: bool) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain JPEGs have no georeference
            raw = read_raster(path)
        check_channels(raw, len(RESISC45_BANDS), path, "RESISC45 RGB JPEG")
        image, _ = prepare_image(raw, self.normalize)
        if train and self.augment:
            (image,) = random_flip_rot90([image])
            return random_resized_crop(image, self.size, scale=self.crop_scale)
        return center_crop(resize_short_side(image, self.resize_size), self.size)
