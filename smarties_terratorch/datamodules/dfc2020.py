"""DFC2020 (CROMA's preprocessed copy, ``DFC_preprocessed.pt``) for SMARTIES segmentation.

On-disk layout (Hugging Face dataset ``antofuller/CROMA_benchmarks``, file ``DFC_preprocessed.pt``; the SMARTIES
authors' ``data/DFC2020/DFC_preprocessed.pt``): **one** PyTorch file holding a dict::

    train_images        [N, 14, 96, 96]   values already scaled to 0-255; channels = 12 Sentinel-2 bands in L2A order
    validation_images   [M, 14, 96, 96]     (B01, B02, B03, B04, B05, B06, B07, B08, B8A, B09, B11, B12), then VV, VH
    train_labels        [N, 96, 96] (or flattened / [N, 1, 96, 96]): 8 classes 0..7, -1 = no label
    validation_labels   [M, ...]

Splits: train = ``train_*``; val and test = ``validation_*`` (the authors evaluate on the validation entries; there is
no separate test split). Labels -1 become the ignore index.

Normalisation: the released SMARTIES ``DFC2020`` table (p1 = 0, p99 = 255 and the authors' mean/std); the S1 rows
VV/VH come from the same table (the authors' code only feeds S2). Resizing: the authors bring the 96 x 96 patches
to 224 x 224 (bicubic for the image); here ``image_size: 224`` resizes the image bilinearly (anti-aliased) and the
labels nearest-neighbour, so the loss and mIoU are computed on the 224 x 224 grid.

Multi-modal: ``modalities`` splits the delivered channels into a dict of tensors, e.g. ``{S2: [B01, ..., B12],
S1: [VV, VH]}``, for the backbone's ``modality_bands`` (late or early fusion); ``None`` gives one tensor.
"""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torch.utils.data import Dataset

from .segmentation import SmartiesSegmentationDataModule, select_channels

__all__ = ["DFC2020_BANDS", "DFC2020DataModule", "DFC2020_S2_BANDS", "RandomRot90"]

#: The 14 channels of ``DFC_preprocessed.pt``, in file order.
DFC2020_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "VV", "VH"]
#: The 12 Sentinel-2 channels (the authors' S2-only input).
DFC2020_S2_BANDS = DFC2020_BANDS[:12]
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
            if not self.path.is_file():
                raise FileNotFoundError(
                    f"DFC2020: {self.path} not found. Expected CROMA's DFC_preprocessed.pt (Hugging Face dataset "
                    f"antofuller/CROMA_benchmarks)."
                )
            try:
                data = torch.load(self.path, map_location="cpu", weights_only=not self.trust_pickle)
            except pickle.UnpicklingError:
                # torch's message suggests loading without the check; say what the file holds instead.
                raise ValueError(
                    f"DFC2020: {self.path} holds pickled Python objects, not only tensors, and loading them could run "
                    f"code from the file. If you made the file or trust its source (e.g. the CROMA_benchmarks "
                    f"release), set trust_pickle: true."
                ) from None
            except (RuntimeError, EOFError, OSError) as err:
                raise ValueError(f"DFC2020: {self.path} is not a readable PyTorch file (truncated?): {err}") from None
            data = {k: torch.as_tensor(v) for k, v in data.items()} if isinstance(data, dict) else data
            if not isinstance(data, dict):
                raise ValueError(f"DFC2020: {self.path} holds a {type(data).__name__}, expected a dict of tensors.")
            keys = [f"{k}_{s}" for k in ("train", "validation") for s in ("images", "labels")]
            missing = [k for k in keys if k not in data]
            if missing:
                raise KeyError(f"DFC2020: {self.path} lacks {missing}; it has keys {sorted(data)}.")
            for split in ("train", "validation"):
                images, labels = data[f"{split}_images"], data[f"{split}_labels"]
                if images.ndim != 4 or images.shape[1] != len(DFC2020_BANDS):
                    raise ValueError(
                        f"DFC2020: {self.path} {split}_images has shape {tuple(images.shape)}; expected "
                        f"[N, {len(DFC2020_BANDS)}, H, W] with channels {DFC2020_BANDS}."
                    )
                if labels.shape[0] != images.shape[0] or labels[0].numel() != images.shape[-2] * images.shape[-1]:
                    raise ValueError(
                        f"DFC2020: {self.path} has {images.shape[0]} {split} images of {tuple(images.shape[-2:])} but "
                        f"{split}_labels of shape {tuple(labels.shape)}: counts or pixel counts differ."
                    )
            self._data = data
        return self._data

    def build_dataset(self, split: str) -> Dataset:
        dataset = super().build_dataset(split)
        if split == "train" and self.augment and self.rot90:
            return RandomRot90(dataset)
        return dataset

    def items(self, split: str) -> list[tuple[str, int]]:
        key = KEYS[split]
        return [(key, i) for i in range(self.data[f"{key}_images"].shape[0])]

    def describe(self, item: tuple[str, int]) -> str:
        return f"DFC2020 {self.path} {item[0]}_images[{item[1]}]"

    def load(self, item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
        key, i = item
        image = self.data[f"{key}_images"][i, self.channels].float().numpy()
        label = self.data[f"{key}_labels"][i].reshape(image.shape[-2:]).long().numpy()
        mask = np.where(label < 0, self.ignore_index, label)
        return image, mask


class RandomRot90(Dataset):
    """A segmentation dataset whose square samples are rotated together with their masks by ``k * 90`` degrees,
    ``k`` uniform in 0..3 (drawn from the global torch RNG, like the flips)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[index])
        k = int(torch.randint(0, 4, ()))
        if k:
            image = sample["image"]
            rotate = partial(torch.rot90, k=k, dims=(-2, -1))
            sample["image"] = {n: rotate(v) for n, v in image.items()} if isinstance(image, dict) else rotate(image)
            sample["mask"] = rotate(sample["mask"])
        return sample
