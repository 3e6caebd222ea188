"""Lightning data modules for SMARTIES: split lists, training augmentation and loaders around the readers of
:mod:`smarties_terratorch.datasets` (the reader names below are re-exported from there for older imports)."""

from ..transforms import compute_statistics
from .bigearthnet import (
    BIGEARTHNET19_LABELS,
    BIGEARTHNET43_LABELS,
    BIGEARTHNET43_TO_19,
    S1_BANDS,
    S2_L2A_BANDS,
    read_bigearthnet_s1,
    read_bigearthnet_s2,
    read_labels,
    read_metadata,
    to_bigearthnet19,
)
from .bigearthnet_datamodule import BigEarthNetDataModule
from .burnscars import HLSBurnScarsDataModule
from .dfc2020 import DFC2020DataModule
from .dynamicearthnet import DynamicEarthNetDataModule
from .eurosat import EuroSATDataModule
from .landcover import L7_BANDS, LANDCOVER_CLASSES, LandCoverDataModule, load_landcover_scene
from .paired import PairedPretrainDataModule, prepare_demo_data
from .resisc45 import RESISC45DataModule
from .segmentation import SmartiesSegmentationDataModule
from .sickle import SICKLEDataModule
from .spacenet7 import SpaceNet7DataModule
from .ucmerced import UCMercedDataModule
from .whurs19 import WHURS19DataModule

__all__ = [
    "BIGEARTHNET19_LABELS",
    "BIGEARTHNET43_LABELS",
    "BIGEARTHNET43_TO_19",
    "L7_BANDS",
    "LANDCOVER_CLASSES",
    "S1_BANDS",
    "S2_L2A_BANDS",
    "BigEarthNetDataModule",
    "DFC2020DataModule",
    "DynamicEarthNetDataModule",
    "EuroSATDataModule",
    "HLSBurnScarsDataModule",
    "LandCoverDataModule",
    "PairedPretrainDataModule",
    "RESISC45DataModule",
    "SICKLEDataModule",
    "SmartiesSegmentationDataModule",
    "SpaceNet7DataModule",
    "UCMercedDataModule",
    "WHURS19DataModule",
    "compute_statistics",
    "load_landcover_scene",
    "prepare_demo_data",
    "read_bigearthnet_s1",
    "read_bigearthnet_s2",
    "read_labels",
    "read_metadata",
    "to_bigearthnet19",
]
