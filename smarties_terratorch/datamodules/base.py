"""The base of the Lightning data modules (loaders, batching, workers); the readers are in
:mod:`smarties_terratorch.datasets`.

TerraTorch's generic data modules standardise with plain mean/std after the batch is on the device; SMARTIES
needs the percentile clip first (:class:`~smarties_terratorch.normalization.SmartiesNormalize`), in raw data units. Our data modules therefore
normalise per sample, on read, and hand TerraTorch batches that are ready for the encoder:
``{"image": float [B, C, H, W], "mask": long [B, H, W]}`` (segmentation) or ``{"image", "label"}``
(classification). TerraTorch tasks pass any other batch key to the model, so samples carry nothing else.
"""

from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

__all__ = ["SmartiesDataModule"]


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
