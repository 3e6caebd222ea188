"""BigEarthNet v1.0 (S2, S1 and S1+S2) multi-label data module for TerraTorch.

On-disk layout (the v1.0 release)::

    <s2_root>/<S2 patch>/<S2 patch>_{B01,...,B12,B8A}.tif    12 single-band uint16 GeoTIFFs: 120x120 (10 m),
                                                             60x60 (20 m), 20x20 (60 m: B01, B09)
    <s2_root>/<S2 patch>/<S2 patch>_labels_metadata.json     43-class CORINE "labels", ...
    <s1_root>/<S1 patch>/<S1 patch>_{VV,VH}.tif              float32 dB, 120x120
    <s1_root>/<S1 patch>/<S1 patch>_labels_metadata.json     ..., "corresponding_s2_patch": "<S2 patch>"

Per sample (:class:`~smarties_terratorch.datasets.bigearthnet.BigEarthNet`): every band bilinearly
resampled to 120x120 on read (as the authors) -> SMARTIES normalisation with the S2-L2A / S1-GRD statistics (each
source its own) -> bicubic resize to 224; this module adds the split files and, for fine-tuning, joint flips +
rot90. Target: the 43 labels mapped to the 19-class multi-hot vector (``to_bigearthnet19``; for S1+S2 the labels
of the S2 patch, as the authors).

Images: one modality -> ``[C, 224, 224]``; two modalities -> ``{"S2": ..., "S1": ...}`` (for the backbone's
``modality_bands`` with late/mixup/early fusion) or, with ``stack_modalities: true``, one ``[C_S2 + C_S1, 224, 224]``
tensor in ``modalities`` order (early fusion through a plain band list).

Split files (the authors' ``eval_splits``): one patch folder name per line (S2 or S1 names), or
``<first> <second>`` pair lines; names are matched against the roots, so either order works. A single name in a
two-modality split is paired through the S1 metadata's ``corresponding_s2_patch``. Without split files a
deterministic 20 % hold-out stands in for val/test (the paper used SeCo's split: 10 % train list 31,166, val
103,944).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from ..augmentation import ImageTransform, flip_rot90
from ..datasets.bigearthnet import (
    BIGEARTHNET19_LABELS,
    MODALITY_STATS,
    S1_BANDS,
    S2_L2A_BANDS,
    BigEarthNet,
    read_metadata,
)
from ..normalization import normalization_stats
from .base import SmartiesDataModule
from .classification import holdout_indices, read_split_file

__all__ = ["BigEarthNetDataModule", "BigEarthNetDataset"]

#: The reader under its former name (it lived here before :mod:`smarties_terratorch.datasets`).
BigEarthNetDataset = BigEarthNet

_MODALITIES = MODALITY_STATS

#: One sample: patch folder per modality.
Sample = dict[str, Path]


class BigEarthNetDataModule(SmartiesDataModule):
    """BigEarthNet v1.0, 19-class multi-label, for S2, S1 or S1+S2.

    Args:
        s2_root: folder of the S2 patch folders (``BigEarthNet-v1.0``); needed when ``"S2"`` is a modality.
        s1_root: folder of the S1 patch folders (``BigEarthNet-S1-v1.0``); needed when ``"S1"`` is a modality.
        modalities: ``["S2"]``, ``["S1"]`` or both (their order is the dict/stack order).
        s2_bands: S2 bands to feed, by name (default all 12, in the order B01..B08, B8A, B09, B11, B12).
        s1_bands: S1 bands (default VV, VH).
        stack_modalities: with two modalities, one stacked tensor instead of a dict.
        train_split, val_split, test_split: the authors' split files (see the module docstring).
        val_fraction: hold-out fraction without split files.
        size: model input side (224).
        augment: joint flips + rot90 on training samples (fine-tuning protocol; off for linear probing).
        skip_empty_labels: drop patches whose 19-class target is empty (57 in the full dataset).
        batch_size, num_workers, drop_last: loader settings.
    """

    multilabel = True
    num_classes = len(BIGEARTHNET19_LABELS)
    class_names = list(BIGEARTHNET19_LABELS)

    def __init__(
        self,
        s2_root: str | None = None,
        s1_root: str | None = None,
        modalities: list[str] | None = None,
        s2_bands: list[str] | None = None,
        s1_bands: list[str] | None = None,
        stack_modalities: bool = False,
        train_split: str | None = None,
        val_split: str | None = None,
        test_split: str | None = None,
        val_fraction: float = 0.2,
        size: int = 224,
        augment: bool = False,
        skip_empty_labels: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, drop_last=drop_last)
        modalities = list(modalities) if modalities is not None else ["S2"]
        unknown = [m for m in modalities if m not in _MODALITIES]
        if unknown or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be 'S2', 'S1' or both (no repeats), got {modalities}")
        self.modalities = modalities
        self.roots = {"S2": Path(s2_root) if s2_root else None, "S1": Path(s1_root) if s1_root else None}
        for m in modalities:
            root = self.roots[m]
            if root is None:
                raise ValueError(f"modality {m} needs {m.lower()}_root")
            if not root.is_dir():
                raise FileNotFoundError(f"BigEarthNet {m} root {root} does not exist")
        self.bands = {
            "S2": list(s2_bands) if s2_bands is not None else list(S2_L2A_BANDS),
            "S1": list(s1_bands) if s1_bands is not None else list(S1_BANDS),
        }
        for m in modalities:  # validate names early (clear error for unknown bands)
            normalization_stats(_MODALITIES[m][0]).select(self.bands[m])
        self.stack_modalities = stack_modalities
        self.split_files = {"train": train_split, "val": val_split, "test": test_split}
        self.val_fraction = val_fraction
        self.size = size
        self.augment = augment
        self.skip_empty_labels = skip_empty_labels
        self._s2_to_s1: dict[str, str] | None = None

    @property
    def output_bands(self) -> list[str]:
        """Channel names in model order (for ``backbone_bands`` when stacking, else per modality)."""
        return [b for m in self.modalities for b in self.bands[m]]

    # ---------------------------------------------------------------- samples
    def _patches(self, modality: str) -> list[str]:
        root = self.roots[modality]
        assert root is not None
        names = sorted(
            d.name for d in root.iterdir() if d.is_dir() and (d / f"{d.name}_labels_metadata.json").is_file()
        )
        if not names:
            raise FileNotFoundError(
                f"No BigEarthNet {modality} patch folders under {root} (expected <root>/<patch>/<patch>_<band>.tif "
                "and <patch>/<patch>_labels_metadata.json)"
            )
        return names

    def _s1_partner(self, s2_name: str) -> str:
        if self._s2_to_s1 is None:
            mapping = {}
            for s1 in self._patches("S1"):
                partner = read_metadata(self.roots["S1"] / s1).get("corresponding_s2_patch")
                if partner:
                    mapping[str(partner)] = s1
            self._s2_to_s1 = mapping
        if s2_name not in self._s2_to_s1:
            raise FileNotFoundError(
                f"No S1 patch under {self.roots['S1']} names {s2_name} as its corresponding_s2_patch"
            )
        return self._s2_to_s1[s2_name]

    def _which(self, name: str) -> str:
        for m in ("S2", "S1"):
            root = self.roots[m]
            if root is not None and (root / name).is_dir():
                return m
        roots = ", ".join(str(r) for r in self.roots.values() if r is not None)
        raise FileNotFoundError(f"BigEarthNet patch {name!r} not found under {roots}")

    def _sample(self, names: Sequence[str]) -> Sample:
        found: dict[str, str] = {}
        for name in names:
            found[self._which(name)] = name
        if "S2" in self.modalities and "S2" not in found:
            if "S1" not in found:
                raise ValueError(f"No S2 patch among {names}")
            found["S2"] = str(read_metadata(self.roots["S1"] / found["S1"]).get("corresponding_s2_patch") or "")
            if not found["S2"] or not (self.roots["S2"] / found["S2"]).is_dir():
                raise FileNotFoundError(f"S2 partner of {found['S1']} not found under {self.roots['S2']}")
        if "S1" in self.modalities and "S1" not in found:
            found["S1"] = self._s1_partner(found["S2"])
        return {m: self.roots[m] / found[m] for m in self.modalities}

    def split_samples(self, split: str) -> list[Sample]:
        split_file = self.split_files.get(split if split != "predict" else "test")
        if split_file is not None:
            samples = [self._sample(line.split()) for line in read_split_file(split_file)]
        else:
            if split == "train" and any(self.split_files[s] for s in ("val", "test")):
                warnings.warn("BigEarthNet: no train_split given; training on every patch not held out")
            elif split != "train" and self.split_files["train"]:
                warnings.warn(
                    f"BigEarthNet: no {split}_split given; the {split} hold-out is drawn from every patch under the "
                    "root and may overlap the train list"
                )
            lead = self.modalities[0]
            names = self._patches(lead)
            held = holdout_indices(len(names), self.val_fraction)
            keep = [n for i, n in enumerate(names) if (i in held) == (split != "train")]
            samples = [self._sample([n]) for n in keep]
        if not samples:
            raise ValueError(f"BigEarthNet: the {split} split is empty")
        return samples

    def build_dataset(self, split: str) -> Dataset:
        augment = ImageTransform(flip_rot90()) if self.augment and split == "train" else None
        dataset = BigEarthNet(
            self.split_samples(split),
            self.modalities,
            self.bands,
            size=self.size,
            stack=self.stack_modalities,
            transforms=augment,
        )
        if self.skip_empty_labels:
            keep = [i for i in range(len(dataset)) if dataset.labels(i).any()]
            dataset.samples = [dataset.samples[i] for i in keep]
        return dataset
