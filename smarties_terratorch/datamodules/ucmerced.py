"""UC-Merced Land Use (VHR RGB scenes, 21 classes) for TerraTorch, read as the SMARTIES authors do.

On-disk layout (``UCMerced_LandUse.zip``)::

    <root>/<class>/<class><NN>.tif     RGB TIFF, 256 x 256 (a few are slightly smaller), 100 per class

Per sample: read (:func:`~smarties_terratorch.io.read_raster`) -> SMARTIES normalisation with the UC-Merced statistics (the pretraining RGB mean/std
with UC-Merced's own p1/p99) -> rescale so the short side is ``resize_size`` (256),
centre-crop 224. No augmentation (the paper evaluates it with kNN only). Bands: ``backbone_bands: [R, G, B]``
with ``backbone_sensor: RGB``.

Split files: ``./<class>/<file>`` lines (the paper's 1,890 / 210 split); without them a deterministic stratified
hold-out is used (not the paper's split).
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
from .scene import ClassFolderDataModule, center_crop, check_channels, resize_short_side

__all__ = ["UCMERCED_BANDS", "UCMercedDataModule"]

#: Channel order of a UC-Merced TIFF (and of its statistics).
UCMERCED_BANDS: tuple[str, ...] = normalization_stats("UC-Merced").bands


class UCMercedDataModule(ClassFolderDataModule):
    """UC-Merced class folders -> ``{"image": [3, size, size] float, "label": long}`` batches.

    Args:
        root: the ``Images`` folder (one sub-folder per class).
        size: model input side (224).
        resize_size: short side before the centre crop (256).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.scene.ClassFolderDataModule` (``augment`` is ignored).
    """

    pattern = "*.tif"
    dataset_name = "UC-Merced"
    layout_hint = "<root>/<class>/<class><NN>.tif (RGB TIFF, 256 x 256)"

    def __init__(self, root: str, size: int = 224, resize_size: int = 256, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if resize_size < size:
            raise ValueError(f"resize_size ({resize_size}) must be >= size ({size}) for the centre crop")
        self.size = size
        self.resize_size = resize_size
        self.bands = list(UCMERCED_BANDS)
        self.normalize = SmartiesNormalize.from_spec("UC-Merced")

    def load(self, path: Path, train: bool) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the TIFFs carry no georeference
            raw = read_raster(path)
        check_channels(raw, len(UCMERCED_BANDS), path, "UC-Merced RGB TIFF")
        image, _ = prepare_image(raw, self.normalize)
        return center_crop(resize_short_side(image, self.resize_size), self.size)
