"""Shared pieces of the scene-classification data modules (EuroSAT, RESISC45, UC-Merced, WHU-RS19, BigEarthNet).

The datasets (:mod:`smarties_terratorch.datasets`) read and normalise; the data modules here choose the samples
and the training augmentation:

* Split files in the SMARTIES authors' formats (``eval_splits/``): single-label lines
  ``./<Class>/<file>`` (the class is the second path component), BigEarthNet lines ``<patch>``, BigEarthNet-MM /
  pair lines ``<first> <second>``. Blank lines and ``#`` comments are skipped.
* Without a split file, a deterministic, stratified hold-out (``val_fraction``) stands in for ``val`` (and
  ``test``, since the authors evaluate on their val list); numbers from it are not comparable with the paper.
* Augmentations of the fine-tuning protocol, built from torchvision v2 transforms: joint flips + rot90 (several
  modalities move together) and RandomResizedCrop(scale 0.25-1, ratio 1) for RESISC45.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..augmentation import ImageTransform, flip_rot90
from ..datasets.classification import ClassFolderDataset
from .base import SmartiesDataModule

__all__ = ["ClassFolderDataModule", "holdout_indices", "random_flip_rot90", "random_resized_crop", "read_split_file"]

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


# ------------------------------------------------------------------------------------------------- augmentation
def random_flip_rot90(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The same random horizontal/vertical flip and rot90 (k = 0..3) applied to every ``[C, H, W]`` image."""
    out = ImageTransform(flip_rot90())({"image": dict(enumerate(images))})["image"]
    return [out[i] for i in range(len(images))]


def random_resized_crop(
    x: torch.Tensor, size: int, scale: tuple[float, float] = (0.25, 1.0), ratio: tuple[float, float] = (1.0, 1.0)
) -> torch.Tensor:
    """torchvision's RandomResizedCrop of ``[C, H, W]`` (area fraction ``scale``, aspect ``ratio``), resized to
    ``size`` bicubically with anti-aliasing (the authors' RESISC45 fine-tuning augmentation).

    With the protocol's ``ratio=(1, 1)`` a seed gives the pixels of the hand-written version this replaces. With
    another ratio the aspect is drawn in float32 and, after ten failed draws, the fallback is torchvision's (the
    whole image when its aspect lies inside ``ratio``), no longer a square centre crop."""
    bicubic = v2.InterpolationMode.BICUBIC
    return v2.RandomResizedCrop(size, scale=scale, ratio=ratio, interpolation=bicubic, antialias=True)(x)


# ------------------------------------------------------------------------------------------------- data module
class ClassFolderDataModule(SmartiesDataModule):
    """Scene classification from ``<root>/<Class>/<file>`` folders (ImageFolder-like), with the authors' split files.

    Subclasses set :attr:`dataset_class` and implement :meth:`make_dataset` (the dataset of a file list, with the
    training augmentation when ``train``).

    Args:
        root: folder with one sub-folder per class.
        train_split, val_split, test_split: split files with ``./<Class>/<file>`` lines; ``None`` = deterministic
            stratified hold-out of ``val_fraction`` per class (val and test share it).
        val_fraction: hold-out fraction without split files.
        classes: class folder names in label order; ``None`` = the sorted sub-folders of ``root``.
        augment: train-time augmentation of the fine-tuning protocol (off for linear probing).
        batch_size, num_workers, drop_last: loader settings.
    """

    dataset_class: type[ClassFolderDataset] = ClassFolderDataset

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

    # ---------------------------------------------------------------- layout (from the dataset class)
    @property
    def pattern(self) -> str:
        return self.dataset_class.pattern

    @property
    def dataset_name(self) -> str:
        return self.dataset_class.dataset_name

    @property
    def layout_hint(self) -> str:
        return self.dataset_class.layout_hint

    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            self._classes = self.dataset_class.find_classes(self.root)
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ---------------------------------------------------------------- samples
    def split_samples(self, split: str) -> list[tuple[Path, int]]:
        """``(path, label)`` pairs of ``split``, from its split file or the hold-out rule."""
        split_file = self.split_files.get(split if split != "predict" else "test")
        if split_file is not None:
            return self.make_dataset(read_split_file(split_file), train=False, source=split_file).samples
        if split == "train" and any(self.split_files[s] for s in ("val", "test")):
            warnings.warn(f"{self.dataset_name}: no train_split given; training on every file not held out")
        elif split != "train" and self.split_files["train"]:
            warnings.warn(
                f"{self.dataset_name}: no {split}_split given; the {split} hold-out is drawn from every file under "
                "the root and may overlap the train list"
            )
        samples = []
        for label, (_, files) in enumerate(self.dataset_class.scan(self.root, self.classes).items()):
            held = holdout_indices(len(files), self.val_fraction)
            samples.extend((f, label) for i, f in enumerate(files) if (i in held) == (split != "train"))
        if not samples:
            raise ValueError(f"{self.dataset_name}: the {split} split is empty (too few files per class?)")
        return samples

    def make_dataset(
        self, files: Sequence[str | Path] | None, train: bool, source: str | Path | None = None
    ) -> ClassFolderDataset:
        """The dataset of ``files`` (split lines or paths), with the training augmentation when ``train``."""
        raise NotImplementedError

    def load(self, path: Path, train: bool) -> torch.Tensor:
        """The model input made from one file (read, normalise, resize; augmented when ``train``)."""
        return self.make_dataset([path], train=train)[0]["image"]

    def build_dataset(self, split: str) -> Dataset:
        files = [path for path, _ in self.split_samples(split)]
        return self.make_dataset(files, train=split == "train")
