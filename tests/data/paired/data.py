"""Tiny georeferenced S2/S1 pairs for the paired pre-training data tests: ``make(root)`` writes them.

Layout::

    root/s2/pair_{i}.tif     4 bands (B02, B03, B04, B08), 32 x 32 px at 10 m, uint16-like reflectance
    root/s1/pair_{i}.tif     2 bands (VV, VH), 32 x 32 px at 10 m, backscatter in dB
    root/folder/p0/p0_B02.tif (32 x 32, 10 m) and p0_B05.tif (16 x 16, 20 m): a mixed-resolution folder entry
    root/far/far.tif         an S1 image 100 km away from every S2 image (non-overlapping pair)
    root/pairs.txt           "s2/pair_{i}.tif s1/pair_{i}.tif" per line
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from smarties_terratorch.io import write_text
from smarties_terratorch.testing._io import write_geotiff

CRS = "EPSG:32632"
ORIGIN = (500_000.0, 5_000_000.0)
NUM_PAIRS = 4


def _write(path: Path, data: np.ndarray, res: float, origin: tuple[float, float] = ORIGIN) -> None:
    write_geotiff(path, data, "float32", CRS, from_origin(origin[0], origin[1], res, res))


def make(root: str | Path, seed: int = 0) -> Path:
    """Write the fixture into ``root`` and return ``root / "pairs.txt"``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(NUM_PAIRS):
        _write(root / "s2" / f"pair_{i}.tif", rng.uniform(100, 4000, (4, 32, 32)), 10.0)
        _write(root / "s1" / f"pair_{i}.tif", rng.uniform(-25, -5, (2, 32, 32)), 10.0)
        lines.append(f"s2/pair_{i}.tif s1/pair_{i}.tif")
    write_text(root / "pairs.txt", "# S2 S1 pairs\n" + "\n".join(lines) + "\n")
    _write(root / "folder" / "p0" / "p0_B02.tif", rng.uniform(100, 4000, (1, 32, 32)), 10.0)
    _write(root / "folder" / "p0" / "p0_B05.tif", rng.uniform(100, 4000, (1, 16, 16)), 20.0)
    _write(root / "far" / "far.tif", rng.uniform(-25, -5, (2, 32, 32)), 10.0, (600_000.0, 5_000_000.0))
    return root / "pairs.txt"
