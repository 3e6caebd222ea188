"""Write a tiny fake ``DFC_preprocessed.pt`` (CROMA's DFC2020 copy) in the real layout (torchgeo-style generator).

One ``torch.save``d dict with ``train_images`` / ``validation_images`` ``[N, 14, H, W]`` (12 S2 bands in L2A order,
then VV, VH; values 0-255 as float32, like CROMA's preprocessing) and ``train_labels`` / ``validation_labels``
``[N, H, W]`` int64 with classes 0..7 and -1 = no label. H = W = SIZE instead of 96. Call ``make(root)`` (also used by ``smarties bench run --smoke``); the file is ``<root>/DFC_preprocessed.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_path

SIZE = 32
COUNTS = {"train": 4, "validation": 2}


def make(root: Path, size: int = SIZE, seed: int = 0) -> Path:
    """Write ``<root>/DFC_preprocessed.pt`` and return its path."""
    g = torch.Generator().manual_seed(seed)
    data = {}
    for split, n in COUNTS.items():
        data[f"{split}_images"] = torch.rand(n, 14, size, size, generator=g) * 255
        labels = torch.randint(0, 8, (n, size, size), generator=g)
        labels[:, :3, :3] = -1  # unlabelled pixels
        data[f"{split}_labels"] = labels
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "DFC_preprocessed.pt"
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path
