"""Shared pieces of the scene-classification data modules (EuroSAT, RESISC45, BigEarthNet).

* Split files in the SMARTIES authors' formats (``eval_splits/``): single-label lines
  ``./<Class>/<file>`` (the class is the second path component), BigEarthNet lines ``<patch>``, BigEarthNet-MM /
  pair lines ``<first> <second>``. Blank lines and ``#`` comments are skipped.
* Without a split file, a deterministic, stratified hold-out (``val_fraction``) stands in for ``val`` (and
  ``test``, since the authors evaluate on their val list); numbers from it are not comparable with the paper.
* Augmentations of the fine-tuning protocol: joint flips + rot90 (several modalities move together) and
  RandomResizedCrop(scale 0.25-1, ratio 1) for RESISC45.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..transforms import resize_to
from ..datasets.utils import check_channels
from .base import SmartiesDataModule

__all__ = [
    "ClassFolderDataModule",
    "ClassFolderDataset",
    "center_crop",
    "holdout_indices",
    "random_flip_rot90",
    "random_resized_crop",
    "read_split_file",
    "resize_short_side",
]

SPLITS = ("train", "val", "test", "predict")


def read_split_file(path: str | Path) -> list[str]:
    """Non-empty, non-comment lines of a split file, stripped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it lists nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Split file not found: {path}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"Split file {path} lists no samples")
    return lines


def holdout_indices(n: int, fraction: float, offset: int = 0) -> set[int]:
    """Evenly spread indices of ``round(n * fraction)`` (at least 1 when n > 1) held-out items out of ``n``."""
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction}")
    if n <= 1:
        return set()
    k = min(max(1, round(n * fraction)), n - 1)
    step = n / k
    return {min(n - 1, int(math.floor(i * step + step / 2))) for i in range(k)}


def random_flip_rot90(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The same random horizontal/vertical flip and rot90 (k = 0..3) applied to every ``[C, H, W]`` image."""
    hflip, vflip = bool(torch.rand(()) < 0.5), bool(torch.rand(()) < 0.5)
    k = int(torch.randint(0, 4, ()))
    out = []
    for x in images:
        if hflip:
            x = x.flip(-1)
        if vflip:
            x = x.flip(-2)
        if k:
            x = torch.rot90(x, k, dims=(-2, -1))
        out.append(x.contiguous())
    return out


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[C, H, W]`` so that its shorter side is ``size`` (bicubic, anti-aliased), keeping the aspect."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    return resize_to(x, (max(size, round(h * scale)), max(size, round(w * scale))))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of ``[C, H, W]``."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"Cannot centre-crop {size}x{size} from a {h}x{w} image")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_resized_crop(
    x: torch.Tensor, size: int, scale: tuple[float, float] = (0.25, 1.0), ratio: tuple[float, float] = (1.0, 1.0)
) -> torch.Tensor:
    """torchvision-style RandomResizedCrop of ``[C, H, W]`` (area fraction ``scale``, aspect ``ratio``), resized to
    ``size`` bicubically with anti-aliasing (the authors' RESISC45 fine-tuning augmentation)."""
    h, w = x.shape[-2:]
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(()).uniform_(*scale))
        aspect = math.exp(float(torch.empty(()).uniform_(*log_ratio)))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, ()))
            left = int(torch.randint(0, w - cw + 1, ()))
            return resize_to(x[..., top : top + ch, left : left + cw], size)
    side = min(h, w)  # fallback: centre crop, as torchvision
    return resize_to(center_crop(x, side), size)


class ClassFolderDataset(Dataset):
    """``(file, class index)`` samples read by ``load`` (file -> ``[C, H, W]`` tensor).

    Items are ``{"image", "label"}`` dicts, as TerraTorch's classification task expects."""

    def __init__(self, samples: Sequence[tuple[Path, int]], load: Callable[[Path], torch.Tensor]) -> None:
        self.samples = list(samples)
        self.load = load

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.samples[index]
        return {"image": self.load(path), "label": torch.tensor(label, dtype=torch.long)}


class ClassFolderDataModule(SmartiesDataModule):
    """Scene classification from ``<root>/<Class>/<file>`` folders (ImageFolder-like), with the authors' split files.

    Subclasses set :attr:`pattern` / :attr:`dataset_name` and implement :meth:`load` (read + normalise + resize).

    Args:
        root: folder with one sub-folder per class.
        train_split, val_split, test_split: split files with ``./<Class>/<file>`` lines; ``None`` = deterministic
            stratified hold-out of ``val_fraction`` per class (val and test share it).
        val_fraction: hold-out fraction without split files.
        classes: class folder names in label order; ``None`` = the sorted sub-folders of ``root``.
        augment: train-time augmentation of the fine-tuning protocol (off for linear probing).
        batch_size, num_workers, drop_last: loader settings.
    """

    pattern = "*"
    dataset_name = "dataset"
    layout_hint = "<root>/<Class>/<file>"

    def __init__(
        self,
        root: str,
        train_split: str | None = None,
        val_split: str | None = None,
        test_split: str | None = None,
        val_fraction: float = 0.2,
        classes: list[str] | None = None,
        augment: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, drop_last=drop_last)
        self.root = Path(root)
        self.split_files = {"train": train_split, "val": val_split, "test": test_split}
        self.val_fraction = val_fraction
        self._classes = list(classes) if classes is not None else None
        self.augment = augment
        self.multilabel = False

    # ---------------------------------------------------------------- classes and files
    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.dataset_name} root {self.root} does not exist (expected the layout {self.layout_hint})"
            )

    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            self._check_root()
            found = sorted(d.name for d in self.root.iterdir() if d.is_dir() and any(d.glob(self.pattern)))
            if not found:
                raise FileNotFoundError(
                    f"No class folder with {self.pattern} files under {self.root} (expected {self.layout_hint})"
                )
            self._classes = found
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _all_files(self) -> dict[str, list[Path]]:
        self._check_root()
        per_class = {c: sorted((self.root / c).glob(self.pattern)) for c in self.classes}
        missing = [c for c, files in per_class.items() if not files]
        if missing:
            raise FileNotFoundError(f"No {self.pattern} files for classes {missing} under {self.root}")
        return per_class

    def split_samples(self, split: str) -> list[tuple[Path, int]]:
        """``(path, label)`` pairs of ``split``, from its split file or the hold-out rule."""
        index = {c: i for i, c in enumerate(self.classes)}
        split_file = self.split_files.get(split if split != "predict" else "test")
        if split_file is not None:
            samples = []
            for line in read_split_file(split_file):
                parts = [p for p in Path(line).parts if p not in (".", "")]
                if len(parts) < 2:
                    raise ValueError(f"{split_file}: line {line!r} is not in the ./<Class>/<file> format")
                cls = parts[-2]
                if cls not in index:
                    raise ValueError(f"{split_file}: class {cls!r} of {line!r} is not one of {self.classes}")
                path = self.root.joinpath(*parts)
                if not path.is_file():
                    raise FileNotFoundError(f"{split_file}: {line!r} -> {path} does not exist")
                samples.append((path, index[cls]))
            return samples
        if split == "train" and any(self.split_files[s] for s in ("val", "test")):
            warnings.warn(f"{self.dataset_name}: no train_split given; training on every file not held out")
        elif split != "train" and self.split_files["train"]:
            warnings.warn(
                f"{self.dataset_name}: no {split}_split given; the {split} hold-out is drawn from every file under "
                "the root and may overlap the train list"
            )
        samples = []
        for cls, files in self._all_files().items():
            held = holdout_indices(len(files), self.val_fraction)
            keep = [f for i, f in enumerate(files) if (i in held) == (split != "train")]
            samples.extend((f, index[cls]) for f in keep)
        if not samples:
            raise ValueError(f"{self.dataset_name}: the {split} split is empty (too few files per class?)")
        return samples

    # ---------------------------------------------------------------- datasets
    def load(self, path: Path, train: bool) -> torch.Tensor:
        raise NotImplementedError

    def build_dataset(self, split: str) -> Dataset:
        train = split == "train"
        return ClassFolderDataset(self.split_samples(split), partial(self.load, train=train))
