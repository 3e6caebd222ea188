"""Write a tiny fake SICKLE dataset in the real layout (torchgeo-style fixture generator).

Layout (official ``Depanshu-Sani/SICKLE`` code, ``utils/dataset.py``)::

    <root>/sickle_dataset_tabular.csv            UNIQUE_ID, PLOT_ID, STANDARD_SEASON, YEAR, SPLIT, SOWING_DAY, ...
    <root>/images/L8/npy/<UNIQUE_ID>/<id>.npz    one file per acquisition (Earth Engine id LC08_<path row>_<YYYYMMDD>),
                                                 one uint16 array per band SR_B1..SR_B7, ST_B10 (~11 x 11 px at 30 m)
    <root>/masks/10m/<UNIQUE_ID>.tif             6 x int16: plot id, crop type (1 paddy, >= 2 other, 0 none),
                                                 sowing, transplanting, harvesting day, yield (~32 x 32 px)

Sample 1 also has an out-of-season acquisition, one that is mostly fill (0), and one lacking ST_B10 (all must be
skipped); its mask has a plot that belongs to the val split (ignored in train). Call ``make(root)`` (also used by ``smarties bench run --smoke``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from ..io import atomic_path
from ._io import write_geotiff

BANDS = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10"]
# uid, plot, season, year, split
SAMPLES = [
    (1, 101, "jun-sep", 2018, "train"),
    (2, 102, "jun-sep", 2018, "train"),
    (3, 103, "oct-jan", 2019, "train"),
    (4, 201, "jun-sep", 2019, "val"),
    (5, 202, "oct-jan", 2018, "val"),
    (6, 301, "jun-sep", 2020, "test"),
]
IMAGE, MASK = 11, 32
IN_SEASON = {"jun": ["0610", "0712", "0813"], "oct": ["1008", "1109", "1227"]}


def _npz(path: Path, rng: np.random.Generator, bands: list[str] = BANDS, fill: float = 0.0) -> None:
    arrays = {}
    for b in bands:
        lo, hi = (40000, 50000) if b == "ST_B10" else (7500, 20000)
        a = rng.integers(lo, hi, (IMAGE, IMAGE)).astype(np.uint16)
        if fill:
            a[: int(IMAGE * fill)] = 0
        arrays[b] = a
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def make(root: Path, seed: int = 0) -> Path:
    """Write the fixture under ``root`` and return ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "masks" / "10m").mkdir(parents=True, exist_ok=True)
    rows = []
    for uid, plot, season, year, split in SAMPLES:
        rows.append(
            {
                "UNIQUE_ID": uid,
                "PLOT_ID": plot,
                "STANDARD_SEASON": season,
                "YEAR": year,
                "SPLIT": split,
                "SOWING_DAY": 10,
                "HARVESTING_DAY": 120,
                "YIELD": 2000,
            }
        )
        folder = root / "images" / "L8" / "npy" / str(uid)
        folder.mkdir(parents=True, exist_ok=True)
        for mmdd in IN_SEASON[season[:3]]:
            _npz(folder / f"LC08_142051_{year}{mmdd}.npz", rng)
        if uid == 1:
            _npz(folder / f"LC08_142051_{year - 1}0101.npz", rng)  # out of season
            _npz(folder / f"LC08_142051_{year}0701.npz", rng, fill=0.6)  # mostly fill
            _npz(folder / f"LC08_142051_{year}0720.npz", rng, bands=BANDS[:-1])  # no ST_B10
        mask = np.zeros((6, MASK, MASK), dtype=np.int16)
        mask[0, 4:28, 4:28] = plot
        mask[1, 4:28, 4:28] = rng.integers(1, 4, (24, 24))  # paddy (1) or other crops
        if uid == 1:
            mask[0, 20:28, 20:28] = 201  # a plot of the val split
        mask[2:5, 4:28, 4:28] = 30
        mask[5, 4:28, 4:28] = 2000
        transform = from_origin(380000, 1220000, 10, 10)
        write_geotiff(root / "masks" / "10m" / f"{uid}.tif", mask, "int16", "EPSG:32644", transform)
    with atomic_path(root / "sickle_dataset_tabular.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root
