"""Dataset readers: one torch ``Dataset`` per evaluation dataset, pixels read through :mod:`smarties_terratorch.io`
and normalised per sample with SMARTIES statistics (as torchgeo separates ``datasets`` from ``datamodules``).

Each reader takes a root and an explicit sample list; the Lightning data modules in
:mod:`smarties_terratorch.datamodules` choose the samples (split files, hold-out rules) and the augmentation.
"""

from .bigearthnet import (
    BIGEARTHNET19_LABELS,
    BIGEARTHNET43_LABELS,
    BIGEARTHNET43_TO_19,
    S1_BANDS,
    S2_L2A_BANDS,
    BigEarthNet,
    read_bigearthnet_s1,
    read_bigearthnet_s2,
    read_labels,
    read_metadata,
    to_bigearthnet19,
)
from .burnscars import HLS_BANDS, HLSBurnScars
from .classification import ClassFolderDataset
from .dfc2020 import DFC2020, DFC2020_BANDS, load_dfc2020
from .dynamicearthnet import DYNAMICEARTHNET_BANDS, DynamicEarthNet
from .eurosat import EUROSAT_BANDS, EUROSAT_CLASSES, EUROSAT_FILE_BANDS, EuroSAT
from .landcover import L7_BANDS, LANDCOVER_CLASSES, LandCoverScene, LandCoverTiles, load_landcover_scene
from .paired import PairedImageDataset
from .pairs import SourceSpec, ViewSpec, read_pairs_list, read_view
from .resisc45 import RESISC45, RESISC45_BANDS
from .segmentation import IGNORE_INDEX, SegmentationDataset
from .sickle import SICKLE, SICKLE_BANDS
from .spacenet7 import SPACENET7_BANDS, SpaceNet7
from .ucmerced import UCMERCED_BANDS, UCMerced
from .whurs19 import WHURS19, WHURS19_BANDS

__all__ = [
    "BIGEARTHNET19_LABELS",
    "BIGEARTHNET43_LABELS",
    "BIGEARTHNET43_TO_19",
    "DFC2020",
    "DFC2020_BANDS",
    "DYNAMICEARTHNET_BANDS",
    "EUROSAT_BANDS",
    "EUROSAT_CLASSES",
    "EUROSAT_FILE_BANDS",
    "HLS_BANDS",
    "IGNORE_INDEX",
    "L7_BANDS",
    "LANDCOVER_CLASSES",
    "RESISC45",
    "RESISC45_BANDS",
    "S1_BANDS",
    "S2_L2A_BANDS",
    "SICKLE",
    "SICKLE_BANDS",
    "SPACENET7_BANDS",
    "UCMERCED_BANDS",
    "WHURS19",
    "WHURS19_BANDS",
    "BigEarthNet",
    "ClassFolderDataset",
    "DynamicEarthNet",
    "EuroSAT",
    "HLSBurnScars",
    "LandCoverScene",
    "LandCoverTiles",
    "PairedImageDataset",
    "SegmentationDataset",
    "SourceSpec",
    "SpaceNet7",
    "UCMerced",
    "ViewSpec",
    "load_dfc2020",
    "load_landcover_scene",
    "read_bigearthnet_s1",
    "read_bigearthnet_s2",
    "read_labels",
    "read_metadata",
    "read_pairs_list",
    "read_view",
    "to_bigearthnet19",
]
