"""Write a tiny fake DynamicEarthNet in the real layout (torchgeo-style fixture generator).

Layout (official release + split files, read by ``aysim/dynnet`` ``data/utae_dynamicen.py`` and PANGAEA)::

    <root>/dynnet_training_splits/{train,val,test}.txt   "<planet dir> <label file> <YYYY-MM>" per line, paths from
                                                          <root>; Planet dirs under the authors' old prefix
                                                          /reprocess-cropped/UTM-24000/ (readers map it to /planet/)
    <root>/planet/<zone>/<lon-lat>/<cube>/PF-SR/<YYYY-MM-DD>.tif       4 x int16 (B, G, R, NIR), reflectance x 10000
    <root>/labels/<cube>_<zone>/Labels/Raster/<scene>/<scene>-<YYYY>_<MM>_01.tif   7 x uint8 one-hot (0 / 255)

Every listed month has the six "weekly" dates (01, 05, 10, 15, 20, 25). Images are SIZE x SIZE instead of
1024 x 1024. Labels include snow & ice (band 7, ignored) and unlabelled pixels. Call ``make(root)`` (also used by ``smarties bench run --smoke``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from ..io import write_text
from ._io import write_geotiff

SIZE = 64
_CRS, _TRANSFORM = "EPSG:32610", from_origin(600000, 4400000, 3, 3)
DATES = ["01", "05", "10", "15", "20", "25"]
# (zone, lon-lat folder, cube, scene, split, months)
CUBES = [
    ("10N", "26E-183N", "1330_3107_13", "10N-121W-39N-L3H-SR", "train", ["2018-01", "2018-02"]),
    ("17N", "9E-42N", "2196_3885_13", "17N-83W-9N-L3H-SR", "train", ["2019-02"]),
    ("11N", "7E-98N", "1700_3100_13", "11N-117W-33N-L3H-SR", "val", ["2018-06"]),
    ("13N", "15E-55N", "2235_3403_13", "13N-105W-20N-L3H-SR", "test", ["2019-11"]),
]


def make(root: Path, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fixture under ``root`` and return ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for zone, lonlat, cube, scene, split, months in CUBES:
        planet_rel = f"{zone}/{lonlat}/{cube}/PF-SR"
        for ym in months:
            for d in DATES:
                image = rng.integers(0, 4000, (4, size, size))
                image[3] += 1500  # NIR brighter, as vegetation
                write_geotiff(root / "planet" / planet_rel / f"{ym}-{d}.tif", image, "int16", _CRS, _TRANSFORM)
            classes = rng.integers(0, 7, (size, size))
            onehot = np.zeros((7, size, size), dtype=np.uint8)
            for k in range(7):
                onehot[k][classes == k] = 255
            onehot[:, :4, :4] = 0  # unlabelled
            label_rel = f"labels/{cube}_{zone}/Labels/Raster/{scene}/{scene}-{ym.replace('-', '_')}_01.tif"
            write_geotiff(root / label_rel, onehot, "uint8", _CRS, _TRANSFORM)
            lines[split].append(f"/reprocess-cropped/UTM-24000/{planet_rel} /{label_rel} {ym}")
    (root / "dynnet_training_splits").mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():
        write_text(root / "dynnet_training_splits" / f"{split}.txt", "\n".join(rows) + "\n")
    return root
