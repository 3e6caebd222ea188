"""Write a tiny fake HLS Burn Scars dataset in the real on-disk layout (torchgeo-style fixture generator).

Layout of ``hls_burn_scars.tar.gz`` (Hugging Face ``ibm-nasa-geospatial/hls_burn_scars``)::

    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4_merged.tif   6 x float32 reflectance 0-1
    <root>/training/subsetted_512x512_HLS.S30.T<tile>.<yyyyddd>.v1.4.mask.tif     1 x int16: 0/1, -1 = no data
    <root>/validation/...

Images are SIZE x SIZE instead of 512 x 512. One training image carries HLS fill values (-9999) and a NaN pixel,
and its mask a block of -1, to exercise the nodata handling. Call ``make(root)`` (also used by ``smarties bench run --smoke``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from ._io import write_geotiff

SIZE = 64
_CRS, _TRANSFORM = "EPSG:32610", from_origin(500000, 4200000, 30, 30)
SCENES = {
    "training": ["T10SEH.2018190", "T10SFH.2019213", "T11SLT.2020245", "T12SVD.2021170"],
    "validation": ["T10TEK.2018201", "T11SKU.2020250"],
}


def make(root: Path, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fixture under ``root`` and return ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for folder, scenes in SCENES.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k, scene in enumerate(scenes):
            stem = f"subsetted_512x512_HLS.S30.{scene}.v1.4"
            image = rng.uniform(0.0, 0.5, (6, size, size)).astype(np.float32)
            mask = (rng.random((1, size, size)) < 0.3).astype(np.int16)
            if folder == "training" and k == 0:
                image[:, :4, :4] = -9999.0  # HLS fill value
                image[2, 10, 10] = np.nan
                mask[:, -4:, -4:] = -1  # no-data label
            write_geotiff(root / folder / f"{stem}_merged.tif", image, "float32", _CRS, _TRANSFORM)
            write_geotiff(root / folder / f"{stem}.mask.tif", mask, "int16", _CRS, _TRANSFORM)
    return root
