"""EuroSAT (multispectral, ``EuroSAT_MS``) data module for TerraTorch.

Reading (layout, band order, normalisation, resize to 224) is
:class:`~smarties_terratorch.datasets.eurosat.EuroSAT`; this module adds the split files and, for
fine-tuning, random flips + rot90. The model's ``backbone_bands`` must
list the same bands in the same order: ``EUROSAT_BANDS`` by default.

Split files: the authors' ``./<Class>/<file>`` lines (21,600 train / 5,400 val). Without them a deterministic
stratified 20 % hold-out is used (not the paper's split).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..augmentation import ImageTransform, flip_rot90
from ..datasets.eurosat import EuroSAT
from ..normalization import SmartiesNormalize, normalization_stats
from .classification import ClassFolderDataModule

__all__ = ["EuroSATDataModule"]


class EuroSATDataModule(ClassFolderDataModule):
    """EuroSAT_MS class folders -> ``{"image": [C, size, size] float, "label": long}`` batches.

    Args:
        root: the ``EuroSAT_MS`` folder (one sub-folder per class).
        bands: bands to feed, by name, in the order the model gets them (default: the 12 used bands in file
            order); B10 has no SMARTIES projection and is rejected.
        size: model input side (224).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.classification.ClassFolderDataModule`.
    """

    dataset_class = EuroSAT

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        size: int = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        stats = normalization_stats("EuroSAT")
        self.stats = stats.select(bands) if bands is not None else stats  # unknown names / B10 fail here
        self.bands = list(self.stats.bands)
        self.size = size
        self.normalize = SmartiesNormalize.from_spec("EuroSAT", bands=self.bands)

    def make_dataset(
        self, files: Sequence[str | Path] | None, train: bool, source: str | Path | None = None
    ) -> EuroSAT:
        augment = ImageTransform(flip_rot90()) if train and self.augment else None
        return EuroSAT(
            self.root, files, bands=self.bands, size=self.size, classes=self.classes, transforms=augment, source=source
        )
