"""UC-Merced Land Use (VHR RGB scenes, 21 classes) read as the SMARTIES authors do.

On-disk layout (``UCMerced_LandUse.zip``)::

    <root>/<class>/<class><NN>.tif     RGB TIFF, 256 x 256 (a few are slightly smaller), 100 per class

Per sample: read through the raster layer -> SMARTIES normalisation with the UC-Merced statistics (the
pretraining RGB mean/std with UC-Merced's own p1/p99) -> rescale so the short side is ``resize_size`` (256),
centre-crop ``size`` (224). Bands: ``backbone_bands: [R, G, B]`` with ``backbone_sensor: RGB``.

torchgeo's ``UCMerced`` reads the same TIFFs but is not reused: it expects ``<root>/UCMerced_LandUse/Images`` and
its own split lists of bare file names, and decodes with PIL instead of the raster layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..transforms import SmartiesNormalize, normalization_stats
from .classification import ClassFolderDataset, PathType, Transforms, read_plain_image
from .utils import center_crop, check_channels, prepare_image, resize_short_side

__all__ = ["UCMERCED_BANDS", "UCMerced"]

#: Channel order of a UC-Merced TIFF (and of its statistics).
UCMERCED_BANDS: tuple[str, ...] = normalization_stats("UC-Merced").bands


class UCMerced(ClassFolderDataset):
    """UC-Merced class folders -> ``{"image": [3, size, size] float, "label": long}`` samples.

    Args:
        root: the ``Images`` folder (one sub-folder per class).
        files: split-file lines (``./<class>/<file>``) or paths; ``None`` = every file.
        size: side of the centre crop (224); ``None`` = no resize or crop.
        resize_size: short side before the centre crop (256).
        classes, transforms, source: see :class:`~smarties_terratorch.datasets.classification.ClassFolderDataset`.

    Raises:
        ValueError: ``resize_size < size``.
    """

    pattern = "*.tif"
    dataset_name = "UC-Merced"
    layout_hint = "<root>/<class>/<class><NN>.tif (RGB TIFF, 256 x 256)"

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
        self.bands = list(UCMERCED_BANDS)
        self.normalize = SmartiesNormalize.from_spec("UC-Merced")
        super().__init__(root, files, classes=classes, transforms=transforms, source=source)

    def load_image(self, path: Path) -> torch.Tensor:
        """Read and normalise one TIFF; short-side resize and centre crop unless ``size`` is ``None``."""
        raw = read_plain_image(path)
        check_channels(raw, len(UCMERCED_BANDS), path, "UC-Merced RGB TIFF")
        image, _ = prepare_image(raw, self.normalize)
        if self.size is None:
            return image
        return center_crop(resize_short_side(image, self.resize_size), self.size)
