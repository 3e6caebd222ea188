"""EuroSAT (multispectral, ``EuroSAT_MS``) read as the SMARTIES authors do.

On-disk layout (Zenodo record 7711810, ``EuroSAT_MS.zip``)::

    <root>/<Class>/<Class>_<i>.tif      13-band GeoTIFF, 64 x 64, uint16 DN (L1C)
                                        band order B01 ... B08, B09, B10, B11, B12, B8A  (B8A LAST)

Per sample: read through the raster layer (nodata as NaN) -> keep the 12 used bands (B10, position 9, dropped;
or any subset by name) -> SMARTIES normalisation with the EuroSAT statistics (percentile clip + standardise) ->
bicubic (anti-aliased) resize to ``size``. The model's ``backbone_bands`` must list the same bands in the same
order: :data:`EUROSAT_BANDS` by default.

torchgeo's ``EuroSAT`` reads the same 13-band files in the same band order but is not reused: it expects its own
root (``ds/images/remote_sensing/otherDatasets/sentinel_2/tif``) and split lists of bare file names, where the
authors list ``./<Class>/<file>`` under ``EuroSAT_MS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..io import read_raster
from ..normalization import SmartiesNormalize, normalization_stats, resize_to
from .classification import ClassFolderDataset, PathType, Transforms
from .utils import check_channels, prepare_image

__all__ = ["EUROSAT_BANDS", "EUROSAT_CLASSES", "EUROSAT_FILE_BANDS", "EuroSAT"]

#: Every channel of an EuroSAT_MS file, in file order (B8A last).
EUROSAT_FILE_BANDS: tuple[str, ...] = normalization_stats("EuroSAT").file_bands
#: The 12 bands SMARTIES uses (B10 dropped), in file order: the default ``bands`` and ``backbone_bands``.
EUROSAT_BANDS: tuple[str, ...] = normalization_stats("EuroSAT").bands
#: Class folders of the public release (sorted = label order).
EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)


class EuroSAT(ClassFolderDataset):
    """EuroSAT_MS class folders -> ``{"image": [C, size, size] float, "label": long}`` samples.

    Args:
        root: the ``EuroSAT_MS`` folder (one sub-folder per class).
        files: split-file lines (``./<Class>/<file>``) or paths; ``None`` = every file.
        bands: bands to return, by name, in the order the model gets them (default: the 12 used bands in file
            order); B10 has no SMARTIES projection and is rejected.
        size: output side (224); ``None`` keeps the native 64 x 64.
        classes, transforms, source: see :class:`~smarties_terratorch.datasets.classification.ClassFolderDataset`.
    """

    pattern = "*.tif"
    dataset_name = "EuroSAT_MS"
    layout_hint = "<root>/<Class>/<Class>_<i>.tif, 13-band GeoTIFF (B01..B09, B10, B11, B12, B8A)"

    def __init__(
        self,
        root: PathType,
        files: Sequence[PathType] | None = None,
        bands: Sequence[str] | None = None,
        size: int | None = 224,
        classes: Sequence[str] | None = None,
        transforms: Transforms | None = None,
        source: PathType | None = None,
    ) -> None:
        stats = normalization_stats("EuroSAT")
        # Band names are checked before any file is touched: a typo or B10 fails with the valid names.
        stats = stats.select(list(bands)) if bands is not None else stats
        self.bands = list(stats.bands)
        self.positions = list(stats.positions)  # channels of the file, in output order
        self.size = size
        self.normalize = SmartiesNormalize.from_spec("EuroSAT", bands=self.bands)
        super().__init__(root, files, classes=classes, transforms=transforms, source=source)

    def load_image(self, path: Path) -> torch.Tensor:
        """Read, select the bands, normalise and resize one EuroSAT_MS file."""
        raw = read_raster(path)
        check_channels(raw, len(EUROSAT_FILE_BANDS), path, f"EuroSAT_MS ({', '.join(EUROSAT_FILE_BANDS)})")
        image, _ = prepare_image(raw[self.positions], self.normalize)
        return resize_to(image, self.size) if self.size is not None else image
