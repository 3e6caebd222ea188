"""The paired pre-training dataset: both views of a pair, normalised per sensor and augmented jointly.

Per sample: read both views (:func:`~smarties_terratorch.datasets.pairs.read_view`, nodata as NaN) -> SMARTIES
two-step normalisation per sensor (:meth:`~smarties_terratorch.normalization.SmartiesNormalize.from_spec`; NaN and
nodata become 0, the band mean) -> joint random vertical/horizontal flips and rot90 -> paired random-resized crop
(area scale 0.25-1, aspect 1, the same *relative* window on both images, so views of different pixel sizes stay
aligned) -> resize to ``img_size`` (bicubic, anti-aliased) -> ``{"image_a", "image_b", "source"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..normalization import resize_to
from .pairs import SourceSpec, check_overlap, read_pairs_list, read_view

__all__ = ["PairedImageDataset", "collate_pairs", "paired_augment"]


def paired_augment(
    a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator, size: int, scale: tuple[float, float] = (0.25, 1.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint flips/rot90 and a paired random-resized crop (aspect 1, same relative window), then resize to ``size``.

    The pixel operations are torchvision v2's (``vertical_flip``, ``horizontal_flip``, ``resized_crop`` with
    bicubic anti-aliased resizing) and ``torch.rot90``. The parameters are drawn here, not by v2's random
    transforms: those draw from torch's global generator (a sample must depend on its own seed only, for exact
    resume and DDP sharding), and ``RandomResizedCrop`` applies one *pixel* window to every input, while the two
    views may have different pixel sizes (e.g. 120 px S2 and 40 px Landsat of one place) and need the same
    *relative* window.
    """
    if rng.random() < 0.5:
        a, b = TF.vertical_flip(a), TF.vertical_flip(b)
    if rng.random() < 0.5:
        a, b = TF.horizontal_flip(a), TF.horizontal_flip(b)
    k = int(rng.integers(4))
    a, b = a.rot90(k, (-2, -1)), b.rot90(k, (-2, -1))
    side = math.sqrt(rng.uniform(*scale))  # relative side of a square window of relative area in `scale`
    top, left = rng.uniform(0, 1 - side), rng.uniform(0, 1 - side)
    out = []
    for x in (a, b):
        h, w = x.shape[-2:]
        y0, x0 = round(top * h), round(left * w)
        y1, x1 = max(y0 + 1, round((top + side) * h)), max(x0 + 1, round((left + side) * w))
        out.append(
            TF.resized_crop(
                x, y0, x0, y1 - y0, x1 - x0, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True
            )
        )
    return out[0], out[1]


class PairedImageDataset(Dataset):
    """Samples of several sources; indices are ``(global index, augmentation seed)`` from :class:`SourceBatchSampler`.

    Args:
        sources: source specs (dicts or :class:`SourceSpec`).
        img_size: output side.
        augment: apply flips/rot90/random-resized crop; otherwise the full images are resized.
        scale: area range of the random-resized crop.
    """

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any] | SourceSpec],
        img_size: int = 224,
        augment: bool = True,
        scale: tuple[float, float] = (0.25, 1.0),
    ) -> None:
        self.sources = [SourceSpec.from_dict(s) for s in sources]
        if not self.sources:
            raise ValueError("No sources given")
        self.img_size = img_size
        self.augment = augment
        self.scale = tuple(scale)
        self.pairs = [read_pairs_list(s.list) for s in self.sources]
        self.normalizers = [(s.first.normalizer(), s.second.normalizer()) for s in self.sources]
        for source, pairs in zip(self.sources, self.pairs):
            if source.check_overlap:
                check_overlap(source, pairs)
        self.offsets = np.cumsum([0] + [len(p) for p in self.pairs])

    def source_sizes(self) -> list[int]:
        return [len(p) for p in self.pairs]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, item)
        src = int(np.searchsorted(self.offsets, index, side="right") - 1)
        spec, (norm_a, norm_b) = self.sources[src], self.normalizers[src]
        first, second = self.pairs[src][index - self.offsets[src]]
        a = norm_a(torch.from_numpy(read_view(first, spec.first)))
        b = norm_b(torch.from_numpy(read_view(second, spec.second)))
        if self.augment:
            a, b = paired_augment(a, b, np.random.default_rng(seed), self.img_size, self.scale)
        else:
            a, b = resize_to(a, self.img_size), resize_to(b, self.img_size)
        return {"image_a": a, "image_b": b, "source": src}


def collate_pairs(samples: list[dict[str, Any]], bands: Sequence[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Stack one source's samples; adds that source's band lists (``bands_a``, ``bands_b``) to the batch."""
    src = samples[0]["source"]
    if any(s["source"] != src for s in samples):
        raise ValueError("A batch mixes sources; use SourceBatchSampler")
    return {
        "image_a": torch.stack([s["image_a"] for s in samples]),
        "image_b": torch.stack([s["image_b"] for s in samples]),
        "bands_a": list(bands[src][0]),
        "bands_b": list(bands[src][1]),
    }


class _Collate:
    """Picklable collate (worker processes) carrying the per-source band lists."""

    def __init__(self, bands: Sequence[tuple[list[str], list[str]]]) -> None:
        self.bands = list(bands)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_pairs(samples, self.bands)
