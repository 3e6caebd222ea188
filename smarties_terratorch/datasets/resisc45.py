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

from ..normalization import normalization_stats
from .classification import CenterCropFolderDataset

__all__ = ["RESISC45_BANDS", "RESISC45"]

#: Channel order of a RESISC45 JPEG (and of the RESISC45 statistics).
RESISC45_BANDS: tuple[str, ...] = normalization_stats("RESISC45").bands


class RESISC45(CenterCropFolderDataset):
    """RESISC45 class folders -> ``{"image": [3, size, size] float, "label": long}`` samples.

    Arguments: :class:`~smarties_terratorch.datasets.classification.CenterCropFolderDataset`.
    """

    pattern = "*.jpg"
    dataset_name = "RESISC45"
    layout_hint = "<root>/<class>/<class>_<NNN>.jpg (RGB JPEG)"
    stats_name = "RESISC45"
    file_kind = "RESISC45 RGB JPEG"
