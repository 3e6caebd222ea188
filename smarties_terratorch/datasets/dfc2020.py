"""DFC2020 reader for CROMA's preprocessed copy (``DFC_preprocessed.pt``).

On-disk layout (Hugging Face dataset ``antofuller/CROMA_benchmarks``, file ``DFC_preprocessed.pt``; the SMARTIES
authors' ``data/DFC2020/DFC_preprocessed.pt``): **one** PyTorch file holding a dict::

    train_images        [N, 14, 96, 96]   values already scaled to 0-255; channels = 12 Sentinel-2 bands in L2A order
    validation_images   [M, 14, 96, 96]     (B01, B02, B03, B04, B05, B06, B07, B08, B8A, B09, B11, B12), then VV, VH
    train_labels        [N, 96, 96] (or flattened / [N, 1, 96, 96]): 8 classes 0..7, -1 = no label
    validation_labels   [M, ...]

Labels -1 become the ignore index. A thin reader: torchgeo 0.8.1's DFC2020 classes
(``CopernicusBenchDFC2020S1``/``S2``) read Copernicus-Bench's per-patch GeoTIFFs with 11 classes, not this
single 8-class tensor file. The file is loaded with ``torch.load(weights_only=True)``
unless ``trust_pickle`` (a copy that pickles numpy arrays). A file that is not a PyTorch file at all (an HTML error
page saved in its place) or a damaged one is told apart from one that holds pickled objects: only the latter may be
a file to trust.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .segmentation import SegmentationDataset, select_channels

__all__ = ["DFC2020", "DFC2020_BANDS", "DFC2020_S2_BANDS", "load_dfc2020"]

#: The 14 channels of ``DFC_preprocessed.pt``, in file order.
DFC2020_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "VV", "VH"]
#: The 12 Sentinel-2 channels (the authors' S2-only input).
DFC2020_S2_BANDS = DFC2020_BANDS[:12]


def load_dfc2020(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The dict of ``DFC_preprocessed.pt``, checked: the four keys, ``[N, 14, H, W]`` images, matching labels.

    Args:
        path: the ``.pt`` file.
        trust_pickle: load with ``weights_only=False`` (arbitrary pickled objects); only for a trusted file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: pickled objects without ``trust_pickle``, an unreadable file, or wrong shapes.
        KeyError: a missing key (the message lists the file's keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"DFC2020: {path} not found. Expected CROMA's DFC_preprocessed.pt (Hugging Face dataset "
            f"antofuller/CROMA_benchmarks)."
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as err:
        # torch's message suggests loading without the check; say what the file is instead.
        raise ValueError(_unreadable(path, err)) from None
    data = {k: torch.as_tensor(v) for k, v in data.items()} if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise ValueError(f"DFC2020: {path} holds a {type(data).__name__}, expected a dict of tensors.")
    keys = [f"{k}_{s}" for k in ("train", "validation") for s in ("images", "labels")]
    missing = [k for k in keys if k not in data]
    if missing:
        raise KeyError(f"DFC2020: {path} lacks {missing}; it has keys {sorted(data)}.")
    for split in ("train", "validation"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        if images.ndim != 4 or images.shape[1] != len(DFC2020_BANDS):
            raise ValueError(
                f"DFC2020: {path} {split}_images has shape {tuple(images.shape)}; expected "
                f"[N, {len(DFC2020_BANDS)}, H, W] with channels {DFC2020_BANDS}."
            )
        if labels.shape[0] != images.shape[0] or labels[0].numel() != images.shape[-2] * images.shape[-1]:
            raise ValueError(
                f"DFC2020: {path} has {images.shape[0]} {split} images of {tuple(images.shape[-2:])} but "
                f"{split}_labels of shape {tuple(labels.shape)}: counts or pixel counts differ."
            )
    return data


_REFETCH = "Delete it and download it again (`smarties data download dfc2020`)."


def _unreadable(path: Path, err: BaseException) -> str:
    """Why ``torch.load`` failed, told apart: not a PyTorch file at all (e.g. an HTML error page saved in its place),
    a file holding pickled objects, or a damaged one. Only the second may be a file to trust."""
    from ..checkpoints import is_torch_file, unsafe_objects

    if not is_torch_file(path):
        with open(path, "rb") as fh:
            head = fh.read(256)
        what = "an HTML page (an error page saved in its place?)" if head.lstrip()[:1] == b"<" else (
            f"no PyTorch data (it starts with {head[:16]!r})")  # fmt: skip
        return f"DFC2020: {path} is not a readable PyTorch file: it holds {what}. {_REFETCH}"
    objects = unsafe_objects(path) if isinstance(err, pickle.UnpicklingError) else []
    if objects:
        return (
            f"DFC2020: {path} holds pickled Python objects ({', '.join(objects[:6])}), not only tensors, and loading "
            f"them could run code from the file. If you made the file or trust its source (e.g. the "
            f"CROMA_benchmarks release) and it passed `smarties data download`'s checks, set trust_pickle: true."
        )
    reason = " ".join(str(err).split())[:200] or type(err).__name__
    if "weights_only" in reason:  # torch's advice to switch the check off is not passed on
        reason = type(err).__name__
    return f"DFC2020: {path} is not a readable PyTorch file (truncated or corrupt: {reason}). {_REFETCH}"


class DFC2020(SegmentationDataset):
    """DFC2020 samples from ``DFC_preprocessed.pt``: ``{"image": float [C, H, W] (or a dict of modalities),
    "mask": long [H, W]}`` (classes 0..7, ignore index).

    Args:
        path: the ``.pt`` file.
        samples: ``(key, index)`` pairs, ``key`` ``"train"`` or ``"validation"``.
        output_bands: channels to deliver, by name (default: the 12 S2 bands).
        data: the already loaded dict (:func:`load_dfc2020`), to share one copy between splits.
        trust_pickle: see :func:`load_dfc2020`.
        **kwargs: :class:`SegmentationDataset` options (``normalize``, ``image_size``, ``groups``, ...).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        samples: Sequence[tuple[str, int]],
        output_bands: Sequence[str] | None = None,
        data: Mapping[str, torch.Tensor] | None = None,
        trust_pickle: bool = False,
        **kwargs: Any,
    ) -> None:
        self.path = Path(path)
        self.channels = select_channels(DFC2020_BANDS, output_bands or DFC2020_S2_BANDS, type(self).__name__)
        self.data = dict(data) if data is not None else load_dfc2020(self.path, trust_pickle)
        kwargs.setdefault("num_classes", 8)
        super().__init__(samples, num_channels=len(self.channels), **kwargs)

    def describe(self, item: tuple[str, int]) -> str:
        return f"DFC2020 {self.path} {item[0]}_images[{item[1]}]"

    def load(self, item: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
        key, i = item
        image = self.data[f"{key}_images"][i, self.channels].float().numpy()
        label = self.data[f"{key}_labels"][i].reshape(image.shape[-2:]).long().numpy()
        mask = np.where(label < 0, self.ignore_index, label)
        return image, mask
