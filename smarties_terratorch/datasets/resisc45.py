"""NWPU-RESISC45 (VHR RGB scenes) read as the SMARTIES authors do.

On-disk layout::

    <root>/<class>/<class>_<NNN>.jpg    RGB JPEG, 256 x 256, 45 classes

Per sample: read through the raster layer (GDAL's JPEG driver, ``[3, H, W]``) -> SMARTIES normalisation with the
RESISC45 statistics -> rescale so the short side is ``resize_size`` (256), centre-crop ``size`` (224), the
evaluation geometry. ``size=None`` returns the normalised image at its native size, for a training transform that
crops and resizes itself (the fine-tuning RandomResizedCrop). Bands are the VHR RGB ranges:
``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.

torchgeo's ``RESISC45`` reads the same JPEGs but is not reused: it expects ``<root>/NWPU-RESISC45`` and its own
split lists of bare file names, and decodes with PIL instead of the raster layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..transforms import SmartiesNormalize, normalization_stats
from .classification import ClassFolderDataset, PathType, Transforms, read_plain_image
from .utils import center_crop, check_channels, prepare_image, resize_short_side

__all__ = ["RESISC45_BANDS", "RESISC45"]

#: Channel order of a RESISC45 JPEG (and of the RESISC45 statistics).
RESISC45_BANDS: tuple[str, ...] = normalization_stats("RESISC45").bands


class RESISC45(ClassFolderDataset):
    """RESISC45 class folders -> ``{"image": [3, size, size] float, "label": long}`` samples.

    Args:
        root: folder with one sub-folder per class.
        files: split-file lines (``./<class>/<file>``) or paths; ``None`` = every file.
        size: side of the centre crop (224); ``None`` = no resize or crop (native 256 x 256).
        resize_size: short side before the centre crop (256).
        classes, transforms, source: see :class:`~smarties_terratorch.datasets.classification.ClassFolderDataset`.

    Raises:
        ValueError: ``resize_size < size``.
    """

    pattern = "*.jpg"
    dataset_name = "RESISC45"
    layout_hint = "<root>/<class>/<class>_<NNN>.jpg (RGB JPEG)"

    def __init__(
        self,
        root: PathType,
        files: Sequence[PathType] | None = None,
        size: int | None = 224,
        resize_size: int = 256,
        classes: Sequence[str] | None = None,
        transforms: Transforms | None = None,
        source: PathType | None = None,
    ) -> None:
        if size is not None and resize_size < size:
            raise ValueError(f"resize_size ({resize_size}) must be >= size ({size}) for the centre crop")
        self.size = size
        self.resize_size = resize_size
        self.bands = list(RESISC45_BANDS)
        self.normalize = SmartiesNormalize.from_spec("RESISC45")
        super().__init__(root, files, classes=classes, transforms=transforms, source=source)

    def load_image(self, path: Path) -> torch.Tensor:
        """Read and normalise one JPEG; short-side resize and centre crop unless ``size`` is ``None``."""
        raw = read_plain_image(path)
        check_channels(raw, len(RESISC45_BANDS), path, "RESISC45 RGB JPEG")
        image, _ = prepare_image(raw, self.normalize)
        if self.size is None:
            return image
        return center_crop(resize_short_side(image, self.resize_size), self.size)
