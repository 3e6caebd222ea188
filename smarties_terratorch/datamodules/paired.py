"""Paired multi-sensor pre-training data for SMARTIES as a Lightning data module.

The pieces, one concern per module:

* :mod:`~smarties_terratorch.datasets.pairs`: pair lists (``first second`` per line) and view specs (bands,
  channels, statistics), reading one view of an entry;
* :mod:`~smarties_terratorch.datasets.paired`: the dataset (read, normalise per sensor, joint flips/rot90
  and paired random-resized crop) and the per-source collate;
* :mod:`~smarties_terratorch.datamodules.sampling`: one-source batches, seeded per epoch, sharded over DDP ranks,
  resumable mid-epoch;
* :mod:`smarties_terratorch.sample_data`: the real demo data (``sources="demo"``).

Bad input:

* a list line naming a missing file raises ``FileNotFoundError`` listing every missing path with its line number;
* a view whose band names do not resolve raises ``ValueError`` (from :func:`~smarties_terratorch.spectrum.resolve_bands`);
* a pair whose georeferenced footprints do not intersect raises ``ValueError`` (pairs are checked when the
  source is opened if both rasters have a CRS; ungeoreferenced files are trusted to be co-registered);
* an unreadable or truncated raster raises :class:`~smarties_terratorch.io.RasterError` naming the file;
* statistics that do not fit the view's bands raise ``ValueError`` naming the view and the table or file;
* NaN and nodata pixels: a pixel that is NaN/nodata in a band becomes 0 after normalisation (the band mean,
  a neutral value), the way every SMARTIES data module here fills them; samples are still used. Build lists
  without mostly-empty tiles (the demo builder drops tiles with more than 5 % nodata).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from ..sample_data import demo_sources, prepare_demo_data
from ..datasets.paired import PairedImageDataset, _Collate
from .sampling import ResumableDataLoader, SourceBatchSampler

__all__ = ["PairedPretrainDataModule"]


class PairedPretrainDataModule(pl.LightningDataModule):
    """Paired multi-sensor pre-training data: list format in :mod:`~smarties_terratorch.datasets.pairs`, sample
    pipeline in :mod:`~smarties_terratorch.datasets.paired`, batching in
    :mod:`~smarties_terratorch.datamodules.sampling`.

    Args:
        sources: list of source dicts ``{list, first: {bands, channels?, statistics | mean/std/p1/p99}, second,
            repeat?, check_overlap?}``, or ``"demo"`` for the real demo data of :func:`prepare_demo_data`.
        img_size: training image side (224 in the paper).
        batch_size: samples per batch and device.
        num_workers: DataLoader workers.
        scale: area range of the paired random-resized crop.
        seed: sampling / augmentation seed.
        demo_root: where the demo data is built (default ``<cache_root>/pretrain_demo``).
    """

    def __init__(
        self,
        sources: list[dict[str, Any]] | str = "demo",
        img_size: int = 224,
        batch_size: int = 16,
        num_workers: int = 0,
        scale: tuple[float, float] = (0.25, 1.0),
        seed: int = 0,
        demo_root: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(sources, str) and sources != "demo":
            raise ValueError(f"sources must be a list of source dicts or 'demo', got {sources!r}")
        self.sources = sources
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.datasets: dict[str, Dataset] = {}
        self.img_size = img_size
        self.scale = tuple(scale)
        self.seed = seed
        self.demo_root = demo_root

    def prepare_data(self) -> None:
        if self.sources == "demo":
            prepare_demo_data(self.demo_root)

    def _source_specs(self) -> list[Any]:
        return demo_sources(prepare_demo_data(self.demo_root)) if self.sources == "demo" else list(self.sources)

    def build_dataset(self, split: str) -> Dataset:
        if split != "train":
            raise ValueError(f"Pre-training has only a train split, got {split!r}")
        return PairedImageDataset(self._source_specs(), self.img_size, augment=True, scale=self.scale)

    def setup(self, stage: str | None = None) -> None:
        if "train" not in self.datasets:
            self.datasets["train"] = self.build_dataset("train")

    def _batches_done(self) -> int:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        dataset: PairedImageDataset = self.datasets["train"]
        sampler = SourceBatchSampler(
            dataset.source_sizes(), self.batch_size, [s.repeat for s in dataset.sources], seed=self.seed
        )
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            # Lightning draws the first batch before it calls set_epoch; on a resumed run this is not epoch 0.
            sampler.set_epoch(trainer.current_epoch)
        bands = [(s.first.bands, s.second.bands) for s in dataset.sources]
        return ResumableDataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=_Collate(bands),
            persistent_workers=self.num_workers > 0,
            progress=self._batches_done,
        )
