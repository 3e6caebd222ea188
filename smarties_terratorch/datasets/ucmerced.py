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

from ..normalization import normalization_stats
from .classification import CenterCropFolderDataset

__all__ = ["UCMERCED_BANDS", "UCMerced"]

#: Channel order of a UC-Merced TIFF (and of its statistics).
UCMERCED_BANDS: tuple[str, ...] = normalization_stats("UC-Merced").bands


class UCMerced(CenterCropFolderDataset):
    """UC-Merced class folders -> ``{"image": [3, size, size] float, "label": long}`` samples.

    Arguments: :class:`~smarties_terratorch.datasets.classification.CenterCropFolderDataset` (``root``: the
    ``Images`` folder).
    """

    pattern = "*.tif"
    dataset_name = "UC-Merced"
    layout_hint = "<root>/<class>/<class><NN>.tif (RGB TIFF, 256 x 256)"
    stats_name = "UC-Merced"
    file_kind = "UC-Merced RGB TIFF"
