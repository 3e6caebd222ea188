"""DynamicEarthNet (PlanetFusion RGB + NIR time series, monthly land-cover labels) data module for SMARTIES
segmentation. The reader: :mod:`smarties_terratorch.datasets.dynamicearthnet`.

Files: the reader's module documents the image and label layout; this module adds the split files of the
dynnet README::

    <root>/dynnet_training_splits/{train,val,test}.txt       one line per (cube, month):
        "<planet dir> <label file> <YYYY-MM>", paths absolute from <root>, e.g.
        /reprocess-cropped/UTM-24000/10N/26E-183N/1330_3107_13/PF-SR
        /labels/1330_3107_13_10N/Labels/Raster/10N-121W-39N-L3H-SR/10N-121W-39N-L3H-SR-2018_01_01.tif 2018-01

The split files name the Planet folders as they were on the authors' disk (``/reprocess-cropped/UTM-24000/...``);
like PANGAEA, ``path_replace`` maps that prefix to the released ``/planet/`` folder. A sample is one (cube, month):
the images of the days ``sample_dates`` (default the authors' and PANGAEA's "weekly" setting 01, 05, 10, 15, 20, 25
-> T = 6; PANGAEA's setting before 2025-04) and the month's label. PANGAEA switched to days 01-06 in 2025-04
(:data:`PANGAEA_DATES_SINCE_2025_04`); which of the two the SMARTIES paper used is not known.

Classes (6, as the authors and PANGAEA): the first six label bands; snow & ice (band 7) is ignored. Pixels where no
band is set are ignored here (the authors' reader leaves them as class 0 "impervious surface";
``unlabelled_as_impervious: true`` reproduces that).

Bands: the file order is Blue, Green, Red, NIR (the authors reorder to R, G, B, NIR when reading; PANGAEA then names
these channels B2, B3, B4, B5, so its "B2" holds red). SMARTIES gets them with explicit PlanetScope names:
``PlanetScope:BLUE, PlanetScope:GREEN, PlanetScope:RED, PlanetScope:NIR`` -> ranges blue_1, green_2, red_2 and
**near_infrared_1** (broad NIR, the S2 B08 range), never S2 red-edge B05.

Images: ``[C=4, T, H, W]`` (TerraTorch's temporal layout, for ``backbone_use_temporal``); ``temporal: false`` keeps
only the first date, ``[C, H, W]``. Normalisation: no SMARTIES statistics exist for PlanetFusion; the default
``statistics: compute`` estimates p1/p99/mean/std on the training split with SMARTIES' two-step rule (cache them with
``statistics_file``). PlanetFusion reflectance has the same x 10000 units as Sentinel-2 L2A, so ``statistics: S2-L2A``
with ``statistics_bands: [B02, B03, B04, B08]`` is a documented alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets.dynamicearthnet import DYNAMICEARTHNET_BANDS, DYNAMICEARTHNET_CLASSES, DynamicEarthNet
from ..datasets.segmentation import select_channels
from .segmentation import SmartiesSegmentationDataModule

__all__ = ["PANGAEA_DATES_BEFORE_2025_04", "PANGAEA_DATES_SINCE_2025_04", "DynamicEarthNetDataModule"]

WEEKLY_DATES = ["01", "05", "10", "15", "20", "25"]
#: PANGAEA's DynamicEarthNet ``sample_dates`` before its 2025-04 change (the same days as :data:`WEEKLY_DATES`).
PANGAEA_DATES_BEFORE_2025_04 = WEEKLY_DATES
#: PANGAEA's DynamicEarthNet ``sample_dates`` since 2025-04: the first six days of the month.
PANGAEA_DATES_SINCE_2025_04 = ["01", "02", "03", "04", "05", "06"]


class DynamicEarthNetDataModule(SmartiesSegmentationDataModule):
    """DynamicEarthNet as the authors and PANGAEA read it (layout and choices: module docstring).

    Args:
        root: dataset root (holding ``dynnet_training_splits/``, ``planet/``, ``labels/``).
        sample_dates: days of the month to stack (``["01"]`` = the authors' "single" setting).
        temporal: deliver ``[C, T, H, W]``; ``False`` = the first date only, ``[C, H, W]``.
        bands: names of the 4 file channels, in file order.
        output_bands: subset of ``bands`` to deliver (``None`` = all).
        path_replace: prefix substitutions applied to the split-file paths.
        split_folder: folder of the split files under ``root``.
        unlabelled_as_impervious: reproduce the authors' class-0 default for pixels without a label.
        other args: :class:`SmartiesSegmentationDataModule`.
    """

    dataset_name = "DynamicEarthNet"

    def __init__(
        self,
        root: str,
        sample_dates: list[str] | None = None,
        temporal: bool = True,
        bands: list[str] | None = None,
        output_bands: list[str] | None = None,
        path_replace: dict[str, str] | None = None,
        split_folder: str = "dynnet_training_splits",
        unlabelled_as_impervious: bool = False,
        stats_samples: int = 16,
        crop_size: int | None = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            stats_samples=stats_samples,
            num_classes=len(DYNAMICEARTHNET_CLASSES),
            crop_size=crop_size,
            **kwargs,
        )
        self.root = Path(root).expanduser()
        self.sample_dates = [str(d).zfill(2) for d in (sample_dates or WEEKLY_DATES)]
        self.temporal = temporal
        self.bands = list(bands) if bands is not None else list(DYNAMICEARTHNET_BANDS)
        self.channels = select_channels(self.bands, output_bands, type(self).__name__)
        default_replace = {"/reprocess-cropped/UTM-24000/": "/planet/"}
        self.path_replace = default_replace if path_replace is None else dict(path_replace)
        self.split_folder = split_folder
        self.unlabelled_as_impervious = unlabelled_as_impervious

    @property
    def output_bands(self) -> list[str]:
        return [self.bands[i] for i in self.channels]

    def _path(self, entry: str) -> Path:
        for old, new in self.path_replace.items():
            entry = entry.replace(old, new)
        return self.root / entry.lstrip("/")

    def items(self, split: str) -> list[tuple[list[Path], Path]]:
        if split == "predict":
            split = "test"
        split_file = self.root / self.split_folder / f"{split}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(
                f"DynamicEarthNet: split file {split_file} not found (expected <root>/{self.split_folder}/"
                f"{{train,val,test}}.txt from the dataset's dynnet_training_splits)."
            )
        items = []
        for n, line in enumerate(split_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3:
                raise ValueError(
                    f"{split_file} line {n}: expected '<planet dir> <label file> <YYYY-MM>', got {line!r}"
                )
            planet, label, year_month = parts
            dates = self.sample_dates if self.temporal else self.sample_dates[:1]
            images = [self._path(planet) / f"{year_month}-{d}.tif" for d in dates]
            items.append((images, self._path(label)))
        if not items:
            raise ValueError(f"DynamicEarthNet: {split_file} lists no samples.")
        missing = [str(p) for imgs, lab in items[:50] for p in (*imgs, lab) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"DynamicEarthNet: files listed in {split_file} are missing (after path_replace {self.path_replace}): "
                f"{missing[:5]}"
            )
        return items

    def dataset(self, items: Sequence[tuple[list[Path], Path]], **kwargs: Any) -> DynamicEarthNet:
        return DynamicEarthNet(
            self.root,
            items,
            self.bands,
            self.output_bands,
            temporal=self.temporal,
            unlabelled_as_impervious=self.unlabelled_as_impervious,
            **kwargs,
        )
