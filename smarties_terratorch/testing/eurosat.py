"""Generate a tiny fake EuroSAT_MS in the real on-disk layout (torchgeo-style test data).

Layout written under ``root``::

    EuroSAT_MS/<Class>/<Class>_<i>.tif     13-band uint16 GeoTIFF, 64 x 64, band order B01..B09, B10, B11, B12, B8A
    eval_splits/eurosat-train.txt          ./<Class>/<file> lines (the authors' single-label split format)
    eval_splits/eurosat-val.txt

Values are random DN around the EuroSAT percentiles; nothing here is real imagery. Also used by ``smarties bench run --smoke``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from ._io import write_geotiff, write_splits

CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
SIZE = 64
BANDS = 13


def make(root: str | Path, per_class: int = 2, seed: int = 0) -> Path:
    """Write the fixture under ``root``; returns the ``EuroSAT_MS`` folder (splits are in ``root/eval_splits``)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = root / "EuroSAT_MS"
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for cls in CLASSES:
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            name = f"{cls}_{i}.tif"
            image = rng.integers(0, 5000, size=(BANDS, SIZE, SIZE), dtype=np.uint16)
            write_geotiff(
                data / cls / name, image, "uint16", "EPSG:32631", from_origin(500000 + 640 * i, 5000000, 10, 10)
            )
            lines["train" if i < per_class else "val"].append(f"./{cls}/{name}")
    write_splits(root, "eurosat", lines)
    return data
