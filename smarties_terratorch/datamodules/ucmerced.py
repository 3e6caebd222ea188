"""UC-Merced Land Use (VHR RGB scenes, 21 classes) data module for TerraTorch.

Reading (normalisation with the UC-Merced statistics, short side to ``resize_size`` 256, centre crop 224) is
:class:`~smarties_terratorch.datasets.ucmerced.UCMerced`. No augmentation (the paper evaluates it with kNN
only). Bands: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.

Split files: ``./<class>/<file>`` lines (the paper's 1,890 / 210 split); without them a deterministic stratified
hold-out is used (not the paper's split).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets.ucmerced import UCMERCED_BANDS, UCMerced
from ..normalization import SmartiesNormalize
from .classification import ClassFolderDataModule

__all__ = ["UCMercedDataModule"]


class UCMercedDataModule(ClassFolderDataModule):
    """UC-Merced class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: the ``Images`` folder (one sub-folder per class).
        size: model input side (224).
        resize_size: short side before the centre crop (256).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.classification.ClassFolderDataModule` (``augment`` is ignored).
    """

    dataset_class = UCMerced

    def __init__(self, root: str, size: int = 224, resize_size: int = 256, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if resize_size < size:
            raise ValueError(f"resize_size ({resize_size}) must be >= size ({size}) for the centre crop")
        self.size = size
        self.resize_size = resize_size
        self.bands = list(UCMERCED_BANDS)
        self.normalize = SmartiesNormalize.from_spec("UC-Merced")

    def make_dataset(
        self, files: Sequence[str | Path] | None, train: bool, source: str | Path | None = None
    ) -> UCMerced:
        return UCMerced(
            self.root, files, size=self.size, resize_size=self.resize_size, classes=self.classes, source=source
        )
