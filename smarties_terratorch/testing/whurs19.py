"""Generate a tiny fake WHU-RS19 in the real on-disk layout (torchgeo-style test data).

Layout written under ``root``::

    WHU-RS19/<Class>/<class>_<i>.jpg       RGB JPEG, SIZE x SIZE (600 in the release), 19 class folders
    eval_splits/whurs19-train.txt          ./<Class>/<file> lines (the authors' single-label split format)
    eval_splits/whurs19-val.txt

Class folder names follow the public release (verify against your copy). Images are smooth random colour fields;
nothing here is real imagery. Also used by ``smarties bench run --smoke``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import write_random_jpeg, write_splits

CLASSES = (
    "Airport", "Beach", "Bridge", "Commercial", "Desert", "Farmland", "footballField", "Forest", "Industrial",
    "Meadow", "Mountain", "Park", "Parking", "Pond", "Port", "railwayStation", "Residential", "River", "Viaduct",
)  # fmt: skip
SIZE = 600


def make(root: str | Path, per_class: int = 2, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fixture under ``root``; returns the ``WHU-RS19`` folder (splits are in ``root/eval_splits``)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = root / "WHU-RS19"
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for cls in CLASSES:
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            name = f"{cls.lower()}_{i:02d}.jpg"
            write_random_jpeg(data / cls / name, rng, size)
            lines["train" if i < per_class else "val"].append(f"./{cls}/{name}")
    write_splits(root, "whurs19", lines)
    return data
