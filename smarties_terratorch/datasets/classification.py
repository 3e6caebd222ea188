"""Single-label scene datasets stored as ``<root>/<Class>/<file>`` folders (ImageFolder-like).

:class:`ClassFolderDataset` lists the files (every file of every class folder, or an explicit list such as the
lines of an authors' split file, ``./<Class>/<file>``), derives the label from the class folder and returns
``{"image": float [C, H, W], "label": long}`` samples, the keys TerraTorch's classification task expects.
Subclasses implement :meth:`ClassFolderDataset.load_image` (read through :mod:`smarties_terratorch.io`,
SMARTIES normalisation, the protocol's resize); random augmentation is passed in as ``transforms`` by the data
modules.

torchgeo's ``NonGeoClassificationDataset`` (torchvision's ``ImageFolder``) is not used as the base: it reads with
PIL or as int32 without nodata, and its subclasses pin a root layout and their own split lists, while ours read
through the raster layer and take the authors' ``./<Class>/<file>`` lists.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from rasterio.errors import NotGeoreferencedWarning
from torch.utils.data import Dataset

from ..io import read_raster
from ..normalization import SmartiesNormalize, normalization_stats
from .utils import center_crop, check_channels, prepare_image, resize_short_side

__all__ = ["CenterCropFolderDataset", "ClassFolderDataset", "PathType", "Transforms", "read_plain_image"]

PathType = str | os.PathLike
#: A transform of a whole sample dict (torchgeo convention), e.g. a random flip of ``sample["image"]``.
Transforms = Callable[[dict[str, Any]], dict[str, Any]]


def read_plain_image(path: PathType) -> np.ndarray:
    """:func:`~smarties_terratorch.io.read_raster` of an image without georeference (JPEG, plain TIFF), quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # expected: scene photos carry no georeference
        return read_raster(path)


class ClassFolderDataset(Dataset):
    """Scene-classification samples from ``<root>/<Class>/<file>`` folders.

    Args:
        root: folder with one sub-folder per class.
        files: the samples: split-file lines (``./<Class>/<file>``), paths relative to ``root`` or paths under
            ``root``; ``None`` = every :attr:`pattern` file of every class folder, class by class, sorted.
        classes: class folder names in label order; ``None`` = the sorted class folders holding
            :attr:`pattern` files (:meth:`find_classes`).
        transforms: applied to each sample dict after reading (random augmentation).
        source: where ``files`` come from (a split file), named in error messages.

    Raises:
        FileNotFoundError: ``root``, a class folder's files or a listed file are missing (the message names it).
        ValueError: a listed line is not ``./<Class>/<file>`` or names an unknown class.
    """

    #: Glob of the image files inside a class folder.
    pattern: ClassVar[str] = "*"
    #: Name used in error messages.
    dataset_name: ClassVar[str] = "dataset"
    #: Expected layout, quoted in error messages.
    layout_hint: ClassVar[str] = "<root>/<Class>/<file>"

    def __init__(
        self,
        root: PathType,
        files: Sequence[PathType] | None = None,
        classes: Sequence[str] | None = None,
        transforms: Transforms | None = None,
        source: PathType | None = None,
    ) -> None:
        self.root = self.check_root(root)
        self.classes = list(classes) if classes is not None else self.find_classes(self.root)
        self.transforms = transforms
        if files is None:
            index = {c: i for i, c in enumerate(self.classes)}
            self.samples = [(f, index[c]) for c, paths in self.scan(self.root, self.classes).items() for f in paths]
        else:
            self.samples = [self._resolve(f, source) for f in files]

    # ---------------------------------------------------------------- layout
    @classmethod
    def check_root(cls, root: PathType) -> Path:
        """``root`` as a ``Path``; raises ``FileNotFoundError`` naming it and the layout when it is no folder."""
        path = Path(root)
        if not path.is_dir():
            raise FileNotFoundError(
                f"{cls.dataset_name} root {path} does not exist (expected the layout {cls.layout_hint})"
            )
        return path

    @classmethod
    def find_classes(cls, root: PathType) -> list[str]:
        """Sorted names of the sub-folders of ``root`` that hold :attr:`pattern` files."""
        root = cls.check_root(root)
        found = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob(cls.pattern)))
        if not found:
            raise FileNotFoundError(
                f"No class folder with {cls.pattern} files under {root} (expected {cls.layout_hint})"
            )
        return found

    @classmethod
    def scan(cls, root: PathType, classes: Sequence[str]) -> dict[str, list[Path]]:
        """Sorted :attr:`pattern` files of each class folder; raises ``FileNotFoundError`` for an empty class."""
        root = cls.check_root(root)
        per_class = {c: sorted((root / c).glob(cls.pattern)) for c in classes}
        missing = [c for c, files in per_class.items() if not files]
        if missing:
            raise FileNotFoundError(f"No {cls.pattern} files for classes {missing} under {root}")
        return per_class

    def _resolve(self, entry: PathType, source: PathType | None) -> tuple[Path, int]:
        where = f"{source}: " if source is not None else ""
        path = Path(entry)
        if path.is_absolute():
            try:
                path = path.relative_to(self.root)
            except ValueError:
                raise ValueError(f"{where}{entry} is not under the {self.dataset_name} root {self.root}") from None
        parts = [p for p in path.parts if p not in (".", "")]
        if len(parts) < 2:
            raise ValueError(f"{where}line {str(entry)!r} is not in the ./<Class>/<file> format")
        cls = parts[-2]
        if cls not in self.classes:
            raise ValueError(f"{where}class {cls!r} of {str(entry)!r} is not one of {self.classes}")
        file = self.root.joinpath(*parts)
        if not file.is_file():
            raise FileNotFoundError(f"{where}{str(entry)!r} -> {file} does not exist")
        return file, self.classes.index(cls)

    # ---------------------------------------------------------------- samples
    def load_image(self, path: Path) -> torch.Tensor:
        """Read ``path`` and return the normalised, resized ``[C, H, W]`` image (implemented by subclasses)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.samples[index]
        sample = {"image": self.load_image(path), "label": torch.tensor(label, dtype=torch.long)}
        return self.transforms(sample) if self.transforms is not None else sample


class CenterCropFolderDataset(ClassFolderDataset):
    """Class folders of plain RGB images evaluated as the authors do: SMARTIES normalisation with the dataset's
    statistics, then the short side rescaled to ``resize_size`` and a centre crop of ``size``.

    Subclasses set :attr:`stats_name` (the statistics table), :attr:`file_kind` (for error messages) and the
    :class:`ClassFolderDataset` attributes.

    Args:
        root: folder with one sub-folder per class.
        files: split-file lines (``./<class>/<file>``) or paths; ``None`` = every file.
        size: side of the centre crop (224); ``None`` = no resize or crop (the native size, for a training
            transform that crops and resizes itself).
        resize_size: short side before the centre crop (256).
        classes, transforms, source: see :class:`ClassFolderDataset`.

    Raises:
        ValueError: ``resize_size < size``.
    """

    #: Name of the normalisation statistics (:func:`~smarties_terratorch.normalization.normalization_stats`).
    stats_name: ClassVar[str] = ""
    #: What a file is, for error messages (e.g. ``"RESISC45 RGB JPEG"``).
    file_kind: ClassVar[str] = "RGB image"

    def __init__(
        self,
        root: PathType,
        files: Sequence[PathType] | None = None,
        size: int | None = 224,
        resize_size: int = 256,
        classes: Sequence[str] | None = None,
        transforms: Transforms | None = None,
        source: PathType | None = None,
    ) -> None:
        if size is not None and resize_size < size:
            raise ValueError(f"resize_size ({resize_size}) must be >= size ({size}) for the centre crop")
        self.size = size
        self.resize_size = resize_size
        self.bands = list(normalization_stats(self.stats_name).bands)
        self.normalize = SmartiesNormalize.from_spec(self.stats_name)
        super().__init__(root, files, classes=classes, transforms=transforms, source=source)

    def load_image(self, path: Path) -> torch.Tensor:
        """Read and normalise one image; short-side resize and centre crop unless ``size`` is ``None``."""
        raw = read_plain_image(path)
        check_channels(raw, len(self.bands), path, self.file_kind)
        image, _ = prepare_image(raw, self.normalize)
        if self.size is None:
            return image
        return center_crop(resize_short_side(image, self.resize_size), self.size)

