"""DFC2020 (CROMA's preprocessed copy, ``DFC_preprocessed.pt``) data module for SMARTIES segmentation.

The reader and the file layout: :mod:`smarties_terratorch.datasets.dfc2020`.

Splits: train = ``train_*``; val and test = ``validation_*`` (the authors evaluate on the validation entries; there is
no separate test split).

Normalisation: the released SMARTIES ``DFC2020`` table (p1 = 0, p99 = 255 and the authors' mean/std); the S1 rows
VV/VH come from the same table (the authors' code only feeds S2). Resizing: the authors bring the 96 x 96 patches
to 224 x 224 (bicubic for the image); here ``image_size: 224`` resizes the image bilinearly (anti-aliased) and the
labels nearest-neighbour, so the loss and mIoU are computed on the 224 x 224 grid.

Multi-modal: ``modalities`` splits the delivered channels into a dict of tensors, e.g. ``{S2: [B01, ..., B12],
S1: [VV, VH]}``, for the backbone's ``modality_bands`` (late or early fusion); ``None`` gives one tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..augmentation import ImageTransform
from ..datasets.dfc2020 import DFC2020, DFC2020_BANDS, DFC2020_S2_BANDS, load_dfc2020
from ..datasets.segmentation import select_channels
from .segmentation import SmartiesSegmentationDataModule, segmentation_augmentation

__all__ = ["DFC2020DataModule"]

KEYS = {"train": "train", "val": "validation", "test": "validation", "predict": "validation"}


class DFC2020DataModule(SmartiesSegmentationDataModule):
    """DFC2020 from CROMA's ``DFC_preprocessed.pt`` (layout and choices: module docstring).

    Args:
        path: the ``.pt`` file.
        output_bands: channels to deliver, by name (default: the 12 S2 bands). With ``modalities`` it is derived
            from them.
        modalities: ``{modality: [band names]}`` to deliver a dict of tensors (multi-modal backbones).
        statistics: default the released ``DFC2020`` table (rows picked by band name).
        num_classes: 8 in CROMA's copy.
        image_size: 224 as the authors (``None`` = native 96).
        rot90: with ``augment``, also rotate training samples by a random multiple of 90 degrees (the authors'
            DFC2020 probe trains with flips and rot90).
        trust_pickle: load the file with ``torch.load(weights_only=False)`` (arbitrary pickled objects, e.g. numpy
            arrays). Only for a file from a source you trust; by default only tensors are accepted.
        other args: :class:`SmartiesSegmentationDataModule`.
    """

    dataset_name = "DFC2020"

    def __init__(
        self,
        path: str,
        output_bands: list[str] | None = None,
        modalities: dict[str, list[str]] | None = None,
        num_classes: int = 8,
        statistics: str | dict[str, list[float]] = "DFC2020",
        stats_samples: int = 256,
        image_size: int | None = 224,
        rot90: bool = False,
        trust_pickle: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            statistics=statistics,
            stats_samples=stats_samples,
            num_classes=num_classes,
            image_size=image_size,
            **kwargs,
        )
        if modalities is not None and output_bands is not None:
            raise ValueError("DFC2020DataModule: give output_bands or modalities, not both.")
        self.path = Path(path).expanduser()
        self.modalities = {k: list(v) for k, v in modalities.items()} if modalities else None
        wanted = [b for bands in self.modalities.values() for b in bands] if self.modalities else output_bands
        self.channels = select_channels(DFC2020_BANDS, wanted or DFC2020_S2_BANDS, type(self).__name__)
        self.trust_pickle = trust_pickle
        self.rot90 = rot90
        self._data: dict[str, torch.Tensor] | None = None

    @property
    def output_bands(self) -> list[str]:
        return [DFC2020_BANDS[i] for i in self.channels]

    def default_statistics_bands(self) -> list[str] | None:
        return self.output_bands if isinstance(self.statistics, str) else None

    def modality_groups(self) -> dict[str, list[int]] | None:
        if not self.modalities:
            return None
        groups, start = {}, 0
        for name, bands in self.modalities.items():
            groups[name] = list(range(start, start + len(bands)))
            start += len(bands)
        return groups

    @property
    def data(self) -> dict[str, torch.Tensor]:
        """The loaded dict (read once)."""
        if self._data is None:
            self._data = load_dfc2020(self.path, self.trust_pickle)
        return self._data

    def train_transforms(self) -> ImageTransform | None:
        """Crop and flips as the other data modules, then (``rot90``) a random quarter turn, as the authors' probe."""
        return segmentation_augmentation(self.crop_size, flips=self.augment, rot90=self.augment and self.rot90)

    def items(self, split: str) -> list[tuple[str, int]]:
        key = KEYS[split]
        return [(key, i) for i in range(self.data[f"{key}_images"].shape[0])]

    def dataset(self, items: Sequence[tuple[str, int]], **kwargs: Any) -> DFC2020:
        return DFC2020(self.path, items, self.output_bands, data=self.data, **kwargs)
