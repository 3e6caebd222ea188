"""Building blocks shared by the dataset readers and Lightning data modules.

TerraTorch's generic data modules standardise with plain mean/std after the batch is on the device; SMARTIES
needs the percentile clip first (``transforms.SmartiesNormalize``), in raw data units. Our data modules therefore
normalise per sample, on read, and hand TerraTorch batches that are ready for the encoder:
``{"image": float [B, C, H, W], "mask": long [B, H, W]}`` (segmentation) or ``{"image", "label"}``
(classification). TerraTorch tasks pass any other batch key to the model, so samples carry nothing else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..io import RasterReader, read_raster

__all__ = ["SmartiesDataModule", "prepare_image", "read_band_files", "read_raster"]

PathType = str | os.PathLike


def read_band_files(
    paths: Sequence[PathType],
    out_shape: tuple[int, int] | None = None,
    resampling: str = "bilinear",
) -> np.ndarray:
    """One single-band file per band as float32 ``[C, H, W]`` (nodata as NaN), each resampled on read.

    Meant for co-registered patches whose bands differ only in pixel size (BigEarthNet's 10/20/60 m files):
    each file is resampled to ``out_shape`` by GDAL while reading, as the SMARTIES authors prepare such patches;
    warping them onto one grid (:class:`~smarties_terratorch.io.RasterReader` with several paths) is for files
    of different extents or CRS.

    Args:
        paths: the band files, in channel order.
        out_shape: ``(H, W)`` of the output (default: the largest band's shape).
        resampling: kernel of the resampling on read.
    """
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(RasterReader(p, [1], resampling=resampling, gdal_cache_mb=16)) for p in paths]
        shape = out_shape if out_shape is not None else max((r.shape for r in readers), key=lambda s: s[0] * s[1])
        shape = (int(shape[0]), int(shape[1]))
        return np.concatenate([r.read(out_shape=shape) for r in readers])


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

