"""Generate a tiny fake UC-Merced Land Use in the real on-disk layout (torchgeo-style test data).

Layout written under ``root``::

    UCMerced/Images/<class>/<class><NN>.tif    RGB uint8 TIFF, 256 x 256, 21 class folders
    eval_splits/ucmerced-train.txt             ./<class>/<file> lines (the authors' single-label split format)
    eval_splits/ucmerced-val.txt

Class folder names follow the public release (verify against your copy). Images are smooth random colour fields;
nothing here is real imagery. Also used by ``smarties bench run --smoke``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from ._io import write_geotiff, write_splits

CLASSES = (
    "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral", "denseresidential", "forest",
    "freeway", "golfcourse", "harbor", "intersection", "mediumresidential", "mobilehomepark", "overpass",
    "parkinglot", "river", "runway", "sparseresidential", "storagetanks", "tenniscourt",
)  # fmt: skip
SIZE = 256


def make(root: str | Path, per_class: int = 2, size: int = SIZE, seed: int = 0) -> Path:
    """Write the fixture under ``root``; returns the ``Images`` folder (splits are in ``root/eval_splits``)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = root / "UCMerced" / "Images"
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for cls in CLASSES:
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            name = f"{cls}{i:02d}.tif"
            coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 8, 8)).astype(np.float32))
            image = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the release's TIFFs have no georeference
                pixels = image.round().clamp(0, 255).numpy().astype(np.uint8)
                write_geotiff(data / cls / name, pixels, "uint8", None, Affine.identity())
            lines["train" if i < per_class - 1 else "val"].append(f"./{cls}/{name}")
    write_splits(root, "ucmerced", lines)
    return data
