"""NWPU-RESISC45 (VHR RGB scenes) data module for TerraTorch.

Reading and the evaluation geometry (short side to ``resize_size`` 256, centre crop 224) are
:class:`~smarties_terratorch.datasets.resisc45.RESISC45`. Fine-tuning training (``augment: true``) reads the
normalised image at its native size instead and applies random flips + rot90, then RandomResizedCrop(scale
0.25-1, ratio 1) to 224. Bands are the VHR RGB ranges: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchvision.transforms import v2

from ..augmentation import ImageTransform, flip_rot90
from ..datasets.resisc45 import RESISC45, RESISC45_BANDS
from ..normalization import SmartiesNormalize
from .classification import ClassFolderDataModule

__all__ = ["RESISC45DataModule"]


class RESISC45DataModule(ClassFolderDataModule):
    """RESISC45 class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: folder with one sub-folder per class.
        size: model input side (224).
        resize_size: short side before the centre crop (256).
        crop_scale: area range of the fine-tuning RandomResizedCrop.
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.classification.ClassFolderDataModule`.
    """

    dataset_class = RESISC45

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

    def make_dataset(
        self, files: Sequence[str | Path] | None, train: bool, source: str | Path | None = None
    ) -> RESISC45:
        if train and self.augment:
            crop = v2.RandomResizedCrop(
                self.size,
                scale=self.crop_scale,
                ratio=(1.0, 1.0),
                interpolation=v2.InterpolationMode.BICUBIC,
                antialias=True,
            )
            augment = ImageTransform(v2.Compose([flip_rot90(), crop]))
            # The crop resizes: the dataset hands over the normalised image at its native size.
            return RESISC45(self.root, files, size=None, classes=self.classes, transforms=augment, source=source)
        return RESISC45(
            self.root, files, size=self.size, resize_size=self.resize_size, classes=self.classes, source=source
        )
