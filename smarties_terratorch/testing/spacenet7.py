"""Write a tiny fake SpaceNet 7 (PANGAEA's preprocessed building-mapping copy) in the real layout.

Layout (PANGAEA ``pangaea/datasets/spacenet7.py``)::

    <root>/metadata_train.json    {aoi_id: [{"aoi_id", "year", "month", "mask", "label"}, ...]}
    <root>/train/<aoi_id>/images_masked/global_monthly_<YYYY>_<MM>_mosaic_<aoi_id>.tif
        4 x uint8 (R, G, B, alpha)
    <root>/train/<aoi_id>/labels_raster/global_monthly_<YYYY>_<MM>_mosaic_<aoi_id>_Buildings.tif
        1 x uint8, > 0 = building

One AOI from each of PANGAEA's train / val / test AOI lists, three months each: one usable, one flagged ``mask: true``
and one without label (both must be skipped). Scenes are SIZE x SIZE instead of ~1024 x 1024; the usable scene of the
train AOI has alpha = 0 in a corner (outside the mosaic -> ignored). Call ``make(root)`` (also used by ``smarties bench run --smoke``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from ..io import write_text
from ._io import write_geotiff

SIZE = 64
_CRS, _TRANSFORM = "EPSG:3857", from_origin(0, 0, 4.77, 4.77)
AOIS = ["L15-0331E-1257N_1327_3160_13", "L15-0357E-1223N_1429_3296_13", "L15-0387E-1276N_1549_3087_13"]
MONTHS = [(2018, 1, False, True), (2018, 2, True, True), (2018, 3, False, False)]  # (year, month, mask, label)


def make(root: Path, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fixture under ``root`` and return ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    metadata = {}
    for k, aoi in enumerate(AOIS):
        metadata[aoi] = []
        for year, month, masked, labelled in MONTHS:
            metadata[aoi].append({"aoi_id": aoi, "year": year, "month": month, "mask": masked, "label": labelled})
            name = f"global_monthly_{year}_{month:02d}_mosaic_{aoi}"
            rgba = rng.integers(0, 256, (4, size, size))
            rgba[3] = 255
            if k == 0 and month == 1:
                rgba[:, :8, :8] = 0  # outside the mosaic: alpha 0
            write_geotiff(root / "train" / aoi / "images_masked" / f"{name}.tif", rgba, "uint8", _CRS, _TRANSFORM)
            if labelled:
                label = (rng.random((1, size, size)) < 0.1).astype(np.uint8) * 255
                write_geotiff(
                    root / "train" / aoi / "labels_raster" / f"{name}_Buildings.tif", label, "uint8", _CRS, _TRANSFORM
                )
    write_text(root / "metadata_train.json", json.dumps(metadata, indent=1))
    return root
