"""EuroSAT (multispectral, ``EuroSAT_MS``) for TerraTorch, read as the SMARTIES authors do.

On-disk layout (Zenodo record 7711810, ``EuroSAT_MS.zip``)::

    <root>/<Class>/<Class>_<i>.tif      13-band GeoTIFF, 64 x 64, uint16 DN (L1C)
                                        band order B01 ... B08, B09, B10, B11, B12, B8A  (B8A LAST)

Per sample: rasterio read (nodata as NaN) -> keep the 12 used bands (B10, position 9, dropped; or any subset by
name) -> SMARTIES normalisation with the EuroSAT statistics (percentile clip + standardise) ->
bicubic (anti-aliased) resize to 224 -> for fine-tuning, random flips + rot90. The model's ``backbone_bands``
must list the same bands in the same order: ``EUROSAT_BANDS`` by default.

Split files: the authors' ``./<Class>/<file>`` lines (21,600 train / 5,400 val). Without them a deterministic
stratified 20 % hold-out is used (not the paper's split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..io import read_raster
from ..transforms import SmartiesNormalize, normalization_stats, resize_to
from .base import prepare_image
from .scene import ClassFolderDataModule, check_channels, random_flip_rot90

__all__ = ["EUROSAT_BANDS", "EUROSAT_CLASSES", "EUROSAT_FILE_BANDS", "EuroSATDataModule"]

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


class EuroSATDataModule(ClassFolderDataModule):
    """EuroSAT_MS class folders -> ``{"image": [C, size, size] float, "label": long}`` batches.

    Args:
        root: the ``EuroSAT_MS`` folder (one sub-folder per class).
        bands: bands to feed, by name, in the order the model gets them (default: the 12 used bands in file
            order); B10 has no SMARTIES projection and is rejected.
        size: model input side (224).
        train_split, val_split, test_split, val_fraction, classes, augment, batch_size, num_workers, drop_last:
            see :class:`~smarties_terratorch.datamodules.scene.ClassFolderDataModule`.
    """

    pattern = "*.tif"
    dataset_name = "EuroSAT_MS"
    layout_hint = "<root>/<Class>/<Class>_<i>.tif, 13-band GeoTIFF (B01..B09, B10, B11, B12, B8A)"

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        size: int = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        stats = normalization_stats("EuroSAT")
        self.stats = stats.select(bands) if bands is not None else stats
        self.bands = list(self.stats.bands)
        self.size = size
        self.normalize = SmartiesNormalize.from_spec("EuroSAT", bands=self.bands)

    def load(self, path: Path, train: bool) -> torch.Tensor:
        raw = read_raster(path)
        check_channels(raw, len(EUROSAT_FILE_BANDS), path, f"EuroSAT_MS ({', '.join(EUROSAT_FILE_BANDS)})")
        image, _ = prepare_image(raw[list(self.stats.positions)], self.normalize)
        image = resize_to(image, self.size)
        if train and self.augment:
            (image,) = random_flip_rot90([image])
        return image
