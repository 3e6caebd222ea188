"""DynamicEarthNet reader (PlanetFusion RGB + NIR time series, monthly land-cover labels).

Layout established from the dataset authors' reader (``data/utae_dynamicen.py`` in ``aysim/dynnet``, the official
code; PANGAEA's ``pangaea/datasets/utae_dynamicen.py`` reads the same files) and the release (mediaTUM 1650201)::

    <root>/planet/<zone>/<lon-lat>/<cube>/PF-SR/<YYYY-MM-DD>.tif     daily PlanetFusion surface reflectance,
                                                                     4 bands int16 (x 10000) in order B, G, R, NIR
    <root>/labels/<cube>_<zone>/Labels/Raster/<scene>/<scene>-<YYYY>_<MM>_01.tif
                                                                     7 bands uint8 one-hot (0 / 255): impervious,
                                                                     agriculture, forest & other vegetation, wetlands,
                                                                     soil, water, snow & ice

A sample is one (cube, month): the images of some days of the month and the month's label. Classes (6, as the
authors and PANGAEA): the first six label bands; snow & ice (band 7) is ignored. Pixels where no band is set are
ignored here (the authors' reader leaves them as class 0 "impervious surface"; ``unlabelled_as_impervious=True``
reproduces that). Bands keep the file order Blue, Green, Red, NIR (PlanetScope names, NIR = broad NIR).

A thin reader: torchgeo 0.8.1 has no DynamicEarthNet dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import RasterReader, read_raster
from .segmentation import SegmentationDataset, select_channels

__all__ = ["DYNAMICEARTHNET_BANDS", "DYNAMICEARTHNET_CLASSES", "DynamicEarthNet"]

#: Channels of a PF-SR file, in file order (resolver names; PlanetScope preset: NIR = broad NIR, not S2 B05).
DYNAMICEARTHNET_BANDS = ["PlanetScope:BLUE", "PlanetScope:GREEN", "PlanetScope:RED", "PlanetScope:NIR"]
DYNAMICEARTHNET_CLASSES = [
    "impervious surface",
    "agriculture",
    "forest & other vegetation",
    "wetlands",
    "soil",
    "water",
]

PathType = str | os.PathLike


class DynamicEarthNet(SegmentationDataset):
    """DynamicEarthNet samples: ``{"image": float [C, T, H, W] (or [C, H, W] with ``temporal=False``),
    "mask": long [H, W]}`` (classes 0..5, ignore index).

    Args:
        root: dataset root; relative sample paths are resolved under it.
        samples: ``([PF-SR file per date], label file)`` per sample.
        bands: names of the 4 file channels, in file order.
        output_bands: subset of ``bands`` to deliver (``None`` = all).
        temporal: stack the dates as ``T``; ``False`` = the first date only.
        unlabelled_as_impervious: reproduce the authors' class-0 default for pixels without a label.
        **kwargs: :class:`SegmentationDataset` options (``normalize``, ``transforms``, ...).
    """

    def __init__(
        self,
        root: PathType,
        samples: Sequence[tuple[Sequence[PathType], PathType]],
        bands: Sequence[str] = DYNAMICEARTHNET_BANDS,
        output_bands: Sequence[str] | None = None,
        temporal: bool = True,
        unlabelled_as_impervious: bool = False,
        **kwargs: Any,
    ) -> None:
        self.root = Path(root)
        self.bands = list(bands)
        self.channels = select_channels(self.bands, output_bands, type(self).__name__)
        self.temporal = temporal
        self.unlabelled_as_impervious = unlabelled_as_impervious
        kwargs.setdefault("num_classes", len(DYNAMICEARTHNET_CLASSES))
        items = [([self.root / p for p in images], self.root / label) for images, label in samples]
        super().__init__(items, num_channels=len(self.channels), **kwargs)

    def describe(self, item: tuple[list[Path], Path]) -> str:
        return f"DynamicEarthNet {item[0][0].parent} ({len(item[0])} dates), label {item[1]}"

    def load(self, item: tuple[list[Path], Path]) -> tuple[np.ndarray, np.ndarray]:
        images, label_path = item
        frames = []
        for path in images:
            with RasterReader(path, gdal_cache_mb=16) as reader:
                if reader.count != len(self.bands):
                    raise ValueError(
                        f"{path}: {reader.count} bands in the file but {len(self.bands)} band names configured "
                        f"({self.bands}); PF-SR files hold Blue, Green, Red, NIR."
                    )
                frames.append(reader.read()[self.channels])
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"DynamicEarthNet: dates of {images[0].parent} differ in shape: {sorted(shapes)}")
        image = np.stack(frames, axis=1) if self.temporal else frames[0]
        onehot = read_raster(label_path)  # NaN (a declared nodata) is no class: the pixel keeps the fill
        if onehot.shape[0] != 7:
            raise ValueError(
                f"{label_path}: {onehot.shape[0]} bands; DynamicEarthNet labels have 7 one-hot bands "
                f"(6 classes + snow & ice)."
            )
        fill = 0 if self.unlabelled_as_impervious else self.ignore_index
        mask = np.full(onehot.shape[1:], fill, dtype=np.int64)
        for k in range(6):
            mask[onehot[k] == 255] = k
        mask[onehot[6] == 255] = self.ignore_index  # snow & ice: ignored, as the authors
        return image, mask
