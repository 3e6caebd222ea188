"""WHU-RS19 (VHR RGB scenes, 19 classes) read as the SMARTIES authors do.

On-disk layout (GitHub ``CAPTAIN-WHU/BED4RS``, ``datasets/WHU-RS19.zip``)::

    <root>/<Class>/<class>_<i>.jpg     RGB JPEG, 600 x 600, 1,005 images in 19 class folders

Per sample: read through the raster layer (``[3, H, W]``) -> SMARTIES normalisation with the WHU-RS19 statistics
-> **bilinear** (anti-aliased) resize to ``size``: WHU-RS19 is the one dataset the authors resize with
scikit-image order 1 instead of bicubic. Bands are the VHR RGB ranges: ``backbone_bands: [R, G, B]`` with
``backbone_sensor: RGB``.

torchgeo 0.8 has no WHU-RS19 dataset class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..normalization import SmartiesNormalize, normalization_stats, resize_to
from .classification import ClassFolderDataset, PathType, Transforms, read_plain_image
from .utils import check_channels, prepare_image

__all__ = ["WHURS19_BANDS", "WHURS19"]

#: Channel order of a WHU-RS19 JPEG (and of its statistics).
WHURS19_BANDS: tuple[str, ...] = normalization_stats("WHU-RS19").bands


class WHURS19(ClassFolderDataset):
    """WHU-RS19 class folders -> ``{"image": [3, size, size] float, "label": long}`` samples.

    Args:
        root: folder with one sub-folder per class.
        files: split-file lines (``./<Class>/<file>``) or paths; ``None`` = every file.
        size: output side (224); ``None`` keeps the native 600 x 600.
        classes, transforms, source: see :class:`~smarties_terratorch.datasets.classification.ClassFolderDataset`.
    """

    pattern = "*.jpg"
    dataset_name = "WHU-RS19"
    layout_hint = "<root>/<Class>/<class>_<i>.jpg (RGB JPEG, 600 x 600)"

    def __init__(
        self,
        root: PathType,
        files: Sequence[PathType] | None = None,
        size: int | None = 224,
        classes: Sequence[str] | None = None,
        transforms: Transforms | None = None,
        source: PathType | None = None,
    ) -> None:
        self.size = size
        self.bands = list(WHURS19_BANDS)
        self.normalize = SmartiesNormalize.from_spec("WHU-RS19")
        super().__init__(root, files, classes=classes, transforms=transforms, source=source)

    def load_image(self, path: Path) -> torch.Tensor:
        """Read, normalise and bilinearly resize one JPEG."""
        raw = read_plain_image(path)
        check_channels(raw, len(WHURS19_BANDS), path, "WHU-RS19 RGB JPEG")
        image, _ = prepare_image(raw, self.normalize)
        return resize_to(image, self.size, mode="bilinear") if self.size is not None else image
