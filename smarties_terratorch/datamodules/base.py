"""Building blocks shared by the dataset readers and Lightning data modules.

TerraTorch's generic data modules standardise with plain mean/std after the batch is on the device; SMARTIES
needs the percentile clip first (``transforms.SmartiesNormalize``), in raw data units. Our data modules therefore
normalise per sample, on read, and hand TerraTorch batches that are ready for the encoder:
``{"image": float [B, C, H, W], "mask": long [B, H, W]}`` (segmentation) or ``{"image", "label"}``
(classification). TerraTorch tasks pass any other batch key to the model, so samples carry nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from torch.utils.data import DataLoader, Dataset

from ..transforms import SmartiesNormalize

__all__ = ["SmartiesDataModule", "make_normalize", "prepare_image", "read_raster"]


def read_raster(
    path: str | Path,
    indexes: Sequence[int] | None = None,
    out_shape: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.bilinear,
) -> np.ndarray:
    """Read bands of a raster as float32 ``[C, H, W]``; nodata pixels become NaN.

    Args:
        path: GeoTIFF (or anything GDAL reads).
        indexes: 1-based band indexes (rasterio convention); ``None`` = all.
        out_shape: ``(H, W)`` to resample to on read (mixed-resolution bands).
        resampling: resampling kernel for ``out_shape``.
    """
    with rasterio.open(path) as src:
        indexes = list(indexes) if indexes is not None else list(src.indexes)
        shape = (len(indexes), *out_shape) if out_shape is not None else None
        data = src.read(indexes, out_shape=shape, resampling=resampling, masked=True)
    return np.ma.filled(data.astype(np.float32), np.nan)


def make_normalize(
    statistics: str | None = None,
    bands: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    p1: Sequence[float] | None = None,
    p99: Sequence[float] | None = None,
) -> SmartiesNormalize:
    """A :class:`SmartiesNormalize` from a statistics table name (optionally a band subset) or explicit values.

    Raises:
        ValueError: neither or both of a table name and explicit values are given.
    """
    explicit = [v is not None for v in (mean, std, p1, p99)]
    if statistics is not None and any(explicit):
        raise ValueError("Give either statistics=<table name> or explicit mean/std/p1/p99, not both.")
    if statistics is not None:
        return SmartiesNormalize.from_stats(statistics, bands=bands)
    if not all(explicit):
        raise ValueError(
            "Normalization needs statistics=<table name> (e.g. 'S2-L2A') or all four of mean, std, p1, p99 "
            "(SMARTIES' percentile clip then standardise; compute them on the training split)."
        )
    return SmartiesNormalize(mean, std, p1, p99, bands=bands)


class SmartiesDataModule(pl.LightningDataModule):
    """Base data module: subclasses implement :meth:`build_dataset`; loaders, batching and workers live here.

    Args:
        batch_size: samples per batch (train; eval uses the same).
        num_workers: DataLoader workers.
        drop_last: drop the last incomplete training batch.
    """

    def __init__(self, batch_size: int = 8, num_workers: int = 0, drop_last: bool = False) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.drop_last = drop_last
        self.datasets: dict[str, Dataset] = {}

    def build_dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` (``train``, ``val``, ``test`` or ``predict``)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}
        for split in splits.get(stage, ("train", "val", "test")) if stage else ("train", "val"):
            if split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            self.datasets[split] = self.build_dataset(split)
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=self.drop_last and shuffle,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)


def prepare_image(
    image: np.ndarray, normalize: Callable[[torch.Tensor], torch.Tensor], nan_fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise a raw ``[C, H, W]`` sample; returns the image (NaN -> ``nan_fill``, i.e. the band mean after
    normalisation) and a ``[H, W]`` bool mask of pixels where any band was nodata/NaN."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    invalid = torch.isnan(x).any(dim=0)
    x = normalize(x)
    return torch.nan_to_num(x, nan=nan_fill), invalid

