"""Lightning data modules for SMARTIES: split lists, training augmentation and loaders around the readers of
:mod:`smarties_terratorch.datasets`."""

from .bigearthnet import BigEarthNetDataModule
from .burnscars import HLSBurnScarsDataModule
from .dfc2020 import DFC2020DataModule
from .dynamicearthnet import DynamicEarthNetDataModule
from .eurosat import EuroSATDataModule
from .landcover import LandCoverDataModule
from .paired import PairedPretrainDataModule
from .resisc45 import RESISC45DataModule
from .segmentation import SmartiesSegmentationDataModule
from .sickle import SICKLEDataModule
from .spacenet7 import SpaceNet7DataModule
from .ucmerced import UCMercedDataModule
from .whurs19 import WHURS19DataModule

__all__ = [
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
]
