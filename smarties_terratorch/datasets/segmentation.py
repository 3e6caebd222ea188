"""Generic image + mask dataset of the SMARTIES segmentation readers, and its pixel helpers.

A reader subclasses :class:`SegmentationDataset` and implements :meth:`~SegmentationDataset.load` (one sample in its
dataset's on-disk layout: raw image with NaN = nodata, mask with the ignore index applied). Everything else happens
here, identically for every dataset, per sample, on read:

1. the channel count of the sample is checked against the configured bands (the error names the file);
2. ``scale`` converts raw units (e.g. HLS reflectance 0-1 -> x 10000 DN, to reuse the Sentinel-2 L2A statistics);
3. mask values are checked against ``num_classes`` (a 0/255 mask is reported, never trained on);
4. every pixel that is NaN/nodata in *any* band (and any date) becomes ``ignore_index`` in the mask, and its image
   value becomes 0 after normalisation (the band mean), so it counts neither in the loss nor in the metrics;
5. SMARTIES' two-step normalisation (``clip((x - p1) / (p99 - p1), 0, 1)``, then ``(x - mean) / std``);
6. optional resize to the model input (``image_size``: images bilinear, anti-aliased; masks nearest);
7. ``transforms`` (the data module's augmentations) on ``{"image", "mask"}``, then the optional split of the
   channels into a dict of modalities.

Samples are ``{"image": float [C, H, W] (or [C, T, H, W] for time series, or a dict of modalities),
"mask": long [H, W]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..normalization import SmartiesNormalize

__all__ = [
    "IGNORE_INDEX",
    "SegmentationDataset",
    "check_mask_values",
    "no_files_error",
    "resize_image",
    "resize_mask",
    "select_channels",
]

#: Mask value of pixels that count neither in the loss nor in the metrics (set ``ignore_index: -1`` in the task).
IGNORE_INDEX = -1

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def check_mask_values(mask: np.ndarray, num_classes: int, ignore_index: int, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if ``mask`` holds values other than ``0..num_classes-1`` and
    ``ignore_index`` (e.g. a 0/255 mask)."""
    bad = np.setdiff1d(np.unique(mask), np.r_[np.arange(num_classes), ignore_index])
    if bad.size:
        raise ValueError(
            f"{where}: mask values {bad.tolist()[:10]} are neither a class (0..{num_classes - 1}) nor the ignore index "
            f"{ignore_index}. Check num_classes, or the label encoding of this file."
        )


def resize_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, anti-aliased resize of the last two dims of a float ``[..., H, W]`` tensor."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return TF.resize(x, list(size), InterpolationMode.BILINEAR, antialias=True)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer or bool ``[H, W]`` mask (class values are never blended)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    # nearest-exact samples pixel centres (plain "nearest" shifts the grid by half a pixel when shrinking).
    return TF.resize(mask[None], list(size), InterpolationMode.NEAREST_EXACT)[0]


def select_channels(all_bands: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[int]:
    """Positions of ``wanted`` band names in ``all_bands`` (``None`` = all).

    Raises:
        ValueError: a name that is not in ``all_bands`` (the message lists the dataset's bands).
    """
    if wanted is None:
        return list(range(len(all_bands)))
    index = {b: i for i, b in enumerate(all_bands)}
    unknown = [b for b in wanted if b not in index]
    if unknown:
        raise ValueError(f"{where}: bands {unknown} are not channels of this dataset ({list(all_bands)}).")
    return [index[b] for b in wanted]


def no_files_error(folder: Path, pattern: str, what: str) -> FileNotFoundError:
    """The error for a folder without files matching ``pattern`` (or a missing folder), naming what it holds."""
    if not folder.is_dir():
        return FileNotFoundError(f"{what}: folder {folder} does not exist.")
    others = sorted(p.name for p in folder.iterdir())[:5]
    seen = f" It contains e.g. {others}." if others else " It is empty."
    return FileNotFoundError(f"{what}: no files matching {pattern!r} in {folder}.{seen}")


class SegmentationDataset(Dataset):
    """Image + mask samples of one split (shared steps: module docstring).

    Subclasses implement :meth:`load` (and :meth:`describe`); a plain instance can also be given a ``load``
    function.

    Args:
        items: one sample descriptor per sample (what :meth:`load` reads).
        load: ``item -> (raw image [C, H, W] or [C, T, H, W] float with NaN = nodata, mask [H, W] int with the
            ignore index applied)``; default: the subclass's :meth:`load`.
        normalize: SMARTIES normalisation (``[..., C, H, W]``), or a function building it on first use (lazily
            computed statistics); ``None`` only for :meth:`raw` access.
        num_channels: expected ``C`` (``None`` = not checked).
        describe: ``item -> str`` naming the sample's files in errors; default: the subclass's :meth:`describe`.
        ignore_index: mask value of ignored pixels.
        num_classes: if given, mask values are validated (:func:`check_mask_values`).
        scale: multiplies the raw image before normalising.
        image_size: resize image (bilinear) and mask (nearest) to this side (``None`` = keep).
        transforms: applied to ``{"image", "mask"}`` after normalising and resizing (augmentations).
        groups: split the channels into a dict of modalities ``{name: [channel indices]}`` (multi-modal backbones).
    """

    def __init__(
        self,
        items: Sequence[Any],
        load: Callable[[Any], tuple[np.ndarray, np.ndarray]] | None = None,
        normalize: SmartiesNormalize | Callable[[], SmartiesNormalize] | None = None,
        num_channels: int | None = None,
        describe: Callable[[Any], str] | None = None,
        ignore_index: int = IGNORE_INDEX,
        num_classes: int | None = None,
        scale: float = 1.0,
        image_size: int | None = None,
        transforms: Transform | None = None,
        groups: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.items = list(items)
        self._load = load
        self._describe = describe
        self._normalize = normalize
        self.num_channels = num_channels
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.scale = scale
        self.image_size = image_size
        self.transforms = transforms
        self.groups = {k: list(v) for k, v in groups.items()} if groups else None

    def __len__(self) -> int:
        return len(self.items)

    def load(self, item: Any) -> tuple[np.ndarray, np.ndarray]:
        """Read one sample: raw image ``[C, H, W]``/``[C, T, H, W]`` (NaN = nodata) and mask ``[H, W]``."""
        if self._load is None:
            raise NotImplementedError(f"{type(self).__name__} implements no load() and got no load function.")
        return self._load(item)

    def describe(self, item: Any) -> str:
        """Where a sample comes from, for error messages."""
        return self._describe(item) if self._describe is not None else f"{type(self).__name__} sample {item}"

    @property
    def normalize(self) -> SmartiesNormalize:
        """The normalisation (built on first use when given as a function)."""
        if self._normalize is None:
            raise ValueError(f"{type(self).__name__}: no normalize given; only raw() samples are available.")
        if not isinstance(self._normalize, SmartiesNormalize):
            self._normalize = self._normalize()  # lazily computed statistics
        return self._normalize

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw ``(image, mask)`` of a sample, channel count and mask values checked, ``scale`` applied (no
        normalisation).

        Raises:
            ValueError: wrong channel count, mask shape or mask values (the message names the sample's file).
        """
        item = self.items[index]
        image, mask = self.load(item)
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in (3, 4) or (self.num_channels is not None and image.shape[0] != self.num_channels):
            raise ValueError(
                f"{self.describe(item)}: image has shape {tuple(image.shape)} (channels first) but {self.num_channels} "
                f"bands are configured. The band list must name every channel of the file, in file order."
            )
        if tuple(mask.shape) != tuple(image.shape[-2:]) and self.image_size is None:
            raise ValueError(
                f"{self.describe(item)}: mask shape {tuple(mask.shape)} differs from the image's "
                f"{tuple(image.shape[-2:])}; set image_size to resample both to a common size."
            )
        if self.num_classes is not None:
            check_mask_values(mask, self.num_classes, self.ignore_index, self.describe(item))
        if self.scale != 1.0:
            image = image * np.float32(self.scale)
        return image, np.asarray(mask, dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.raw(index)
        x = torch.from_numpy(np.ascontiguousarray(image))
        y = torch.from_numpy(np.ascontiguousarray(mask))
        invalid = torch.isnan(x).reshape(-1, *x.shape[-2:]).any(dim=0)
        if x.ndim == 4:  # [C, T, H, W] -> normalise per channel over [T, C, H, W]
            x = self.normalize(x.transpose(0, 1)).transpose(0, 1)
        else:
            x = self.normalize(x)
        x = torch.nan_to_num(x, nan=0.0)  # 0 = the band mean after standardisation; those pixels are ignored
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            x, y, invalid = resize_image(x, size), resize_mask(y, size), resize_mask(invalid, size)
        y = torch.where(invalid, torch.full_like(y, self.ignore_index), y)
        sample: dict[str, Any] = {"image": x, "mask": y}
        if self.transforms is not None:
            sample = self.transforms(sample)
        x = sample["image"].contiguous()
        sample["image"] = {k: x[idx] for k, idx in self.groups.items()} if self.groups else x
        sample["mask"] = sample["mask"].contiguous()
        return sample
