"""WHU-RS19 (VHR RGB scenes, 19 classes) data module for TerraTorch.

Reading (normalisation with the WHU-RS19 statistics, **bilinear** resize to 224, the authors' one exception to
bicubic) is :class:`~smarties_terratorch.datasets.whurs19.WHURS19`. No augmentation (the paper evaluates it
with kNN only). Bands are the VHR RGB ranges: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.

Split files: ``./<Class>/<file>`` lines (the paper's 898 / 107 split); without them a deterministic stratified
hold-out is used (not the paper's split).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets.whurs19 import WHURS19_BANDS, WHURS19
from ..normalization import SmartiesNormalize
from .classification import ClassFolderDataModule

__all__ = ["WHURS19DataModule"]


class WHURS19DataModule(ClassFolderDataModule):
    """WHU-RS19 class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: folder with one sub-folder per class.
        size: model input side (224).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.classification.ClassFolderDataModule` (``augment`` is ignored:
            the paper has no training protocol for WHU-RS19).
    """

    dataset_class = WHURS19

    def __init__(self, root: str, size: int = 224, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.size = size
        self.bands = list(WHURS19_BANDS)
        self.normalize = SmartiesNormalize.from_spec("WHU-RS19")

    def make_dataset(
        self, files: Sequence[str | Path] | None, train: bool, source: str | Path | None = None
    ) -> WHURS19:
        return WHURS19(self.root, files, size=self.size, classes=self.classes, source=source)
