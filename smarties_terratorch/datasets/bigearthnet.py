"""BigEarthNet v1.0 (S2, S1, S1+S2): patch readers, the 43 -> 19 class label mapping and the multi-label dataset.

On-disk layout (the BigEarthNet v1.0 release, also used by the examples shipped in ``bigearthnet-common``)::

    <root>/<patch>/<patch>_B01.tif ... <patch>_B12.tif, <patch>_B8A.tif   (S2: 12 single-band uint16 GeoTIFFs)
    <root>/<patch>/<patch>_VV.tif, <patch>_VH.tif                         (S1: float32 backscatter in dB)
    <root>/<patch>/<patch>_labels_metadata.json                           (43-class CORINE labels + metadata)

S2 bands come at three resolutions: 120 x 120 (10 m: B02, B03, B04, B08), 60 x 60 (20 m) and 20 x 20 (60 m:
B01, B09). Like the SMARTIES authors, :func:`read_bigearthnet_s2` resamples every band bilinearly to 120 x 120
while reading and stacks them in :data:`S2_L2A_BANDS` order, the order of the S2-L2A normalisation table.

:class:`BigEarthNet` turns a list of patch folders (one per modality) into normalised, resized images and
19-class multi-hot targets. torchgeo's ``BigEarthNet`` reads the same band files in the same S2 order but is not
reused: it needs both modalities under one root with its own CSV split lists, casts every band to int32 (the S1
backscatter in dB included), ignores nodata and, for S1+S2, takes the labels from the S1 patch, where the authors
take them from the S2 patch.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from affine import Affine
from torch.utils.data import Dataset

from ..io import RasterReader
from ..normalization import SmartiesNormalize, normalization_stats, resize_to
from .classification import Transforms
from .utils import prepare_image, read_band_files

__all__ = [
    "BIGEARTHNET19_LABELS",
    "BIGEARTHNET43_LABELS",
    "BIGEARTHNET43_TO_19",
    "MODALITY_STATS",
    "PATCH_SIZE",
    "S1_BANDS",
    "S2_L2A_BANDS",
    "BigEarthNet",
    "read_bigearthnet_s1",
    "read_bigearthnet_s2",
    "read_labels",
    "read_metadata",
    "to_bigearthnet19",
]

PathType = Union[str, PathLike]

#: Sentinel-2 L2A bands of a BigEarthNet patch, in the stacking order of the authors (and of the S2-L2A stats).
S2_L2A_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
#: Sentinel-1 polarisations of a BigEarthNet patch, in stacking order.
S1_BANDS: tuple[str, ...] = ("VV", "VH")
#: Modality -> (name of its normalisation statistics, its bands in stacking order).
MODALITY_STATS: dict[str, tuple[str, tuple[str, ...]]] = {"S2": ("S2-L2A", S2_L2A_BANDS), "S1": ("S1-GRD", S1_BANDS)}
#: Side of a BigEarthNet patch at 10 m (1200 m on the ground).
PATCH_SIZE = 120

#: The 19 classes of the BigEarthNet-19 nomenclature, in the original BigEarthNet order. The SMARTIES authors'
#: class index order is not recorded anywhere we could read: a released fine-tuned BigEarthNet head may use
#: another order (e.g. alphabetical, as torchgeo), so check before reusing head weights with these indices.
BIGEARTHNET19_LABELS: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

# (43-class CORINE label, index of its 19-class label or None when BigEarthNet-19 drops it), in the original
# 43-class order of BigEarthNet v1.0.
_MAPPING_43_TO_19: tuple[tuple[str, int | None], ...] = (
    ("Continuous urban fabric", 0),
    ("Discontinuous urban fabric", 0),
    ("Industrial or commercial units", 1),
    ("Road and rail networks and associated land", None),
    ("Port areas", None),
    ("Airports", None),
    ("Mineral extraction sites", None),
    ("Dump sites", None),
    ("Construction sites", None),
    ("Green urban areas", None),
    ("Sport and leisure facilities", None),
    ("Non-irrigated arable land", 2),
    ("Permanently irrigated land", 2),
    ("Rice fields", 2),
    ("Vineyards", 3),
    ("Fruit trees and berry plantations", 3),
    ("Olive groves", 3),
    ("Pastures", 4),
    ("Annual crops associated with permanent crops", 3),
    ("Complex cultivation patterns", 5),
    ("Land principally occupied by agriculture, with significant areas of natural vegetation", 6),
    ("Agro-forestry areas", 7),
    ("Broad-leaved forest", 8),
    ("Coniferous forest", 9),
    ("Mixed forest", 10),
    ("Natural grassland", 11),
    ("Moors and heathland", 12),
    ("Sclerophyllous vegetation", 12),
    ("Transitional woodland/shrub", 13),
    ("Beaches, dunes, sands", 14),
    ("Bare rock", None),
    ("Sparsely vegetated areas", 11),
    ("Burnt areas", None),
    ("Inland marshes", 15),
    ("Peatbogs", 15),
    ("Salt marshes", 16),
    ("Salines", 16),
    ("Intertidal flats", None),
    ("Water courses", 17),
    ("Water bodies", 17),
    ("Coastal lagoons", 18),
    ("Estuaries", 18),
    ("Sea and ocean", 18),
)

#: The 43 CORINE land-cover labels of BigEarthNet v1.0, in the original order.
BIGEARTHNET43_LABELS: tuple[str, ...] = tuple(name for name, _ in _MAPPING_43_TO_19)
#: 43-class label -> index into :data:`BIGEARTHNET19_LABELS`, or ``None`` for the 11 labels BigEarthNet-19 drops.
BIGEARTHNET43_TO_19: dict[str, int | None] = dict(_MAPPING_43_TO_19)
_LOOKUP = {name.casefold(): idx for name, idx in _MAPPING_43_TO_19}

_LAYOUT_HINT = (
    "expected the BigEarthNet v1.0 layout <root>/<patch>/<patch>_<band>.tif with one GeoTIFF per band "
    "(S2: {s2}; S1: {s1}) and <patch>/<patch>_labels_metadata.json"
).format(s2=", ".join(S2_L2A_BANDS), s1=", ".join(S1_BANDS))


def _patch_dir(patch_dir: PathType) -> Path:
    path = Path(patch_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"BigEarthNet patch folder not found: {path} ({_LAYOUT_HINT})")
    return path


def _read_stack(
    patch_dir: PathType, bands: Sequence[str], size: int, ref_band: str
) -> tuple[np.ndarray, dict[str, Any]]:
    path = _patch_dir(patch_dir)
    files = [path / f"{path.name}_{band}.tif" for band in bands]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"Missing band file {file} ({_LAYOUT_HINT})")
    # GDAL interpolates the 20 m / 60 m bands bilinearly onto the 10 m grid while reading, as the authors do;
    # 10 m bands are read as they are. Nodata pixels come back as NaN.
    out = read_band_files(files, out_shape=(size, size), resampling="bilinear")
    with RasterReader(files[list(bands).index(ref_band)], [1]) as ref:
        # The stack lives on the reference band's grid, rescaled if size differs from its native size.
        transform = ref.transform @ Affine.scale(ref.width / size, ref.height / size)
        profile = {
            "driver": "GTiff", "dtype": "float32", "count": len(bands), "width": size, "height": size,
            "crs": ref.crs, "transform": transform, "nodata": float("nan"),
        }  # fmt: skip
    return out, profile


def read_bigearthnet_s2(patch_dir: PathType, size: int = PATCH_SIZE) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a BigEarthNet-S2 patch as one array.

    Args:
        patch_dir: the patch folder (its name is the patch name, e.g. ``S2A_MSIL2A_20170613T101031_87_48``).
        size: output side; every band is bilinearly resampled to ``size x size`` on read (120 = native 10 m).

    Returns:
        ``(image, profile)``: float32 ``[12, size, size]`` in :data:`S2_L2A_BANDS` order holding the raw
        uint16 values (surface reflectance x 10000), NaN where a band file marks nodata, and a rasterio profile
        of the stack (the georeference of B04, as the authors do; nodata NaN).

    Raises:
        FileNotFoundError: the folder or a band file is missing; the message names the file and the layout.
        RasterError: a band file is not a readable raster (the message names it).
    """
    return _read_stack(patch_dir, S2_L2A_BANDS, size, ref_band="B04")


def read_bigearthnet_s1(patch_dir: PathType, size: int = PATCH_SIZE) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a BigEarthNet-S1 patch: float32 ``[2, size, size]`` backscatter in dB (VV, VH; nodata NaN) and profile.

    Raises:
        FileNotFoundError: the folder or a polarisation file is missing.
        RasterError: a polarisation file is not a readable raster (the message names it).
    """
    return _read_stack(patch_dir, S1_BANDS, size, ref_band="VV")


def read_metadata(patch_dir: PathType) -> dict[str, Any]:
    """The patch's ``<patch>_labels_metadata.json`` as a dict (labels, coordinates, dates, S1 -> S2 pairing)."""
    path = _patch_dir(patch_dir)
    file = path / f"{path.name}_labels_metadata.json"
    if not file.is_file():
        # Renamed copies of a patch folder keep the original file names: accept a single unambiguous match.
        matches = sorted(path.glob("*_labels_metadata.json"))
        if len(matches) != 1:
            raise FileNotFoundError(f"Missing label file {file} ({_LAYOUT_HINT})")
        file = matches[0]
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def read_labels(patch_dir: PathType) -> list[str]:
    """The 43-class CORINE label names of a patch (from ``*_labels_metadata.json``)."""
    labels = read_metadata(patch_dir).get("labels")
    if not isinstance(labels, list):
        raise ValueError(f"{patch_dir}: the labels metadata has no 'labels' list")
    return [str(label) for label in labels]


def to_bigearthnet19(labels: Iterable[str], dtype: Any = np.float32) -> np.ndarray:
    """Multi-hot ``[19]`` target in :data:`BIGEARTHNET19_LABELS` order from 43-class label names.

    The 11 labels BigEarthNet-19 drops are ignored, so a patch with only those gives an all-zero target
    (57 such patches exist in the full dataset; the official recommended subset excludes them).

    Raises:
        ValueError: a name is not one of the 43 BigEarthNet labels (typo guard; matching ignores case).
    """
    target = np.zeros(len(BIGEARTHNET19_LABELS), dtype=dtype)
    for label in labels:
        key = str(label).strip().casefold()
        if key not in _LOOKUP:
            close = difflib.get_close_matches(str(label), BIGEARTHNET43_LABELS, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"Unknown BigEarthNet label {label!r}.{hint} Expected one of the 43 CORINE names.")
        idx = _LOOKUP[key]
        if idx is not None:
            target[idx] = 1
    return target


class BigEarthNet(Dataset):
    """BigEarthNet samples (one patch folder per modality) -> normalised, resized images + 19-class targets.

    Per sample and modality: :func:`read_bigearthnet_s2` / :func:`read_bigearthnet_s1` (bilinear to 120 x 120 on
    read) -> the chosen bands -> SMARTIES normalisation with the S2-L2A / S1-GRD statistics -> bicubic resize to
    ``size``. Items are ``{"image", "label"}`` with a float ``[19]`` multi-hot label (:func:`to_bigearthnet19` of
    the S2 patch's labels when S2 is used, else of the S1 patch's); the image is ``[C, size, size]`` for one
    modality, ``{modality: [C_m, size, size]}`` for two, or their concatenation in ``modalities`` order with
    ``stack=True``.

    Args:
        samples: one ``{modality: patch folder}`` dict per sample, holding every modality of ``modalities``.
        modalities: ``["S2"]``, ``["S1"]`` or both, in output order.
        bands: bands per modality, by name (default: all of :data:`S2_L2A_BANDS` / :data:`S1_BANDS`).
        size: output side (224); ``None`` keeps the 120 x 120 of the reader.
        stack: with two modalities, one concatenated tensor instead of a dict.
        transforms: applied to each sample dict after reading (random augmentation).

    Raises:
        ValueError: an unknown modality or band name.
    """

    def __init__(
        self,
        samples: Sequence[dict[str, Path]],
        modalities: Sequence[str] = ("S2",),
        bands: dict[str, list[str]] | None = None,
        size: int | None = 224,
        stack: bool = False,
        transforms: Transforms | None = None,
    ) -> None:
        self.samples = list(samples)
        self.modalities = list(modalities)
        unknown = [m for m in self.modalities if m not in MODALITY_STATS]
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be 'S2', 'S1' or both, got {self.modalities}")
        self.size = size
        self.stack = stack
        self.transforms = transforms
        self.positions: dict[str, list[int]] = {}
        self.normalize: dict[str, SmartiesNormalize] = {}
        for m in self.modalities:
            table, default = MODALITY_STATS[m]
            chosen = (bands or {}).get(m)
            stats = normalization_stats(table).select(list(default if chosen is None else chosen))
            self.positions[m] = list(stats.positions)
            self.normalize[m] = SmartiesNormalize.from_spec(table, bands=list(stats.bands))

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, modality: str, folder: Path) -> torch.Tensor:
        reader = read_bigearthnet_s2 if modality == "S2" else read_bigearthnet_s1
        raw, _ = reader(folder)
        image, _ = prepare_image(raw[self.positions[modality]], self.normalize[modality])
        return resize_to(image, self.size) if self.size is not None else image

    def labels(self, index: int) -> torch.Tensor:
        """The float ``[19]`` multi-hot target of sample ``index`` (read from its label file only)."""
        sample = self.samples[index]
        source = sample.get("S2") or sample["S1"]  # S1+S2: the labels of the S2 patch, as the authors
        return torch.from_numpy(to_bigearthnet19(read_labels(source)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        images = [self._read(m, self.samples[index][m]) for m in self.modalities]
        if len(images) == 1:
            image: Any = images[0]
        elif self.stack:
            image = torch.cat(images, dim=0)
        else:
            image = dict(zip(self.modalities, images))
        sample = {"image": image, "label": self.labels(index)}
        return self.transforms(sample) if self.transforms is not None else sample
