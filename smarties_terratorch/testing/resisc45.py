"""Generate a tiny fake NWPU-RESISC45 in the real on-disk layout (torchgeo-style test data).

Layout written under ``root``::

    RESISC45/<class>/<class>_<NNN>.jpg     RGB JPEG, 256 x 256, 45 class folders
    eval_splits/resisc45-train.txt         ./<class>/<file> lines (the authors' single-label split format)
    eval_splits/resisc45-val.txt

Images are smooth random colour fields (they compress to a few kB); nothing here is real imagery. 
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import write_random_jpeg, write_splits

CLASSES = (
    "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral", "church",
    "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert", "forest", "freeway",
    "golf_course", "ground_track_field", "harbor", "industrial_area", "intersection", "island", "lake", "meadow",
    "medium_residential", "mobile_home_park", "mountain", "overpass", "palace", "parking_lot", "railway",
    "railway_station", "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
    "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace", "thermal_power_station", "wetland",
)  # fmt: skip
SIZE = 256


def make(root: str | Path, per_class: int = 2, num_classes: int = len(CLASSES), seed: int = 0) -> Path:
    """Write the fixture under ``root``; returns the ``RESISC45`` folder (splits are in ``root/eval_splits``)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = root / "RESISC45"
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for cls in CLASSES[:num_classes]:
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            name = f"{cls}_{i:03d}.jpg"
            write_random_jpeg(data / cls / name, rng, SIZE)
            lines["train" if i < per_class else "val"].append(f"./{cls}/{name}")
    write_splits(root, "resisc45", lines)
    return data
