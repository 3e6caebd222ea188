"""Paired multi-sensor pre-training data: list parsing, reading, augmentation, batching, bad input, demo data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from smarties_terratorch.datamodules.paired import PairedPretrainDataModule
from smarties_terratorch.datamodules.sampling import SourceBatchSampler
from smarties_terratorch.datasets.paired import PairedImageDataset, paired_augment
from smarties_terratorch.datasets.pairs import ViewSpec, read_pairs_list, read_view

DATA = Path(__file__).parent / "data"
S2 = {"bands": ["S2-L2A:B02", "S2-L2A:B03", "S2-L2A:B04", "S2-L2A:B08"], "statistics": "S2-L2A"}
S1 = {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"}


def _fixture():
    spec = importlib.util.spec_from_file_location("_paired_fixture", DATA / "paired" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return _fixture().make(tmp_path)


def test_pairs_list_relative_paths_and_single_images(pairs: Path) -> None:
    parsed = read_pairs_list(pairs)
    assert len(parsed) == 4
    assert parsed[0] == (pairs.parent / "s2/pair_0.tif", pairs.parent / "s1/pair_0.tif")
    single = pairs.parent / "single.txt"
    single.write_text("s2/pair_1.tif\n\n# comment\n")
    assert read_pairs_list(single) == [(pairs.parent / "s2/pair_1.tif",) * 2]


def test_missing_file_error_names_file_and_line(pairs: Path) -> None:
    bad = pairs.parent / "bad.txt"
    bad.write_text("s2/pair_0.tif s1/pair_0.tif\ns2/pair_1.tif s1/nope.tif\n")
    with pytest.raises(FileNotFoundError, match=r"line 2: .*s1/nope\.tif"):
        read_pairs_list(bad)
    bad.write_text("a b c\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_pairs_list(bad)


def test_unresolvable_bands_raise() -> None:
    with pytest.raises(ValueError):
        ViewSpec(bands=["S2-L1C:B10"])  # cirrus has no SMARTIES projection
    with pytest.raises(ValueError):
        ViewSpec(bands=["NOT_A_BAND"])
    with pytest.raises(ValueError, match="at least one band"):
        ViewSpec(bands=[])


def test_non_overlapping_pair_raises(pairs: Path) -> None:
    far = pairs.parent / "far.txt"
    far.write_text("s2/pair_0.tif far/far.tif\n")
    with pytest.raises(ValueError, match="do not overlap"):
        PairedImageDataset([{"list": str(far), "first": S2, "second": S1}], img_size=32)
    # the check can be switched off (e.g. ungeoreferenced crops known to be co-registered)
    PairedImageDataset([{"list": str(far), "first": S2, "second": S1, "check_overlap": False}], img_size=32)


def test_sample_is_normalised_per_sensor(pairs: Path) -> None:
    ds = PairedImageDataset([{"list": str(pairs), "first": S2, "second": S1}], img_size=32, augment=False)
    sample = ds[(0, 0)]
    raw_b = read_view(pairs.parent / "s1/pair_0.tif", ViewSpec(**S1))
    expected = ViewSpec(**S1).normalizer()(torch.from_numpy(raw_b))
    torch.testing.assert_close(sample["image_b"], expected)
    assert sample["image_a"].shape == (4, 32, 32)


def test_nan_pixels_become_band_mean(pairs: Path) -> None:
    path = pairs.parent / "s2/pair_0.tif"
    with rasterio.open(path, "r+") as dst:
        data = dst.read()
        data[:, 3:5, 7:9] = np.nan
        dst.write(data)
    ds = PairedImageDataset([{"list": str(pairs), "first": S2, "second": S1}], img_size=32, augment=False)
    image = ds[(0, 0)]["image_a"]
    assert torch.isfinite(image).all()
    assert (image[:, 3:5, 7:9] == 0).all()  # 0 = the band mean after normalisation


def test_folder_entry_resamples_mixed_resolutions(pairs: Path) -> None:
    view = ViewSpec(bands=["S2-L2A:B02", "S2-L2A:B05"])
    image = read_view(pairs.parent / "folder/p0", view)
    assert image.shape == (2, 32, 32)  # B05 (16 x 16 at 20 m) resampled to the 10 m grid on read
    with rasterio.open(pairs.parent / "folder/p0/p0_B05.tif") as src:
        coarse = src.read(1)
    np.testing.assert_allclose(image[1].mean(), coarse.mean(), rtol=0.02)
    with pytest.raises(FileNotFoundError, match="B11"):
        read_view(pairs.parent / "folder/p0", ViewSpec(bands=["S2-L2A:B11"]))


def test_paired_crop_keeps_views_aligned() -> None:
    # The same smooth scene at 32 px and 64 px: after the paired augmentation both views must still agree.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    fine = torch.stack([torch.sin(3 * xx) + yy, xx * yy])
    coarse = torch.nn.functional.interpolate(fine[None], size=32, mode="area")[0]
    for seed in range(5):
        a, b = paired_augment(coarse, fine, np.random.default_rng(seed), 48)
        assert a.shape == b.shape == (2, 48, 48)
        assert (a - b).abs().mean() < 0.03
    # different seeds give different windows
    a0, _ = paired_augment(coarse, fine, np.random.default_rng(0), 48)
    a1, _ = paired_augment(coarse, fine, np.random.default_rng(1), 48)
    assert not torch.allclose(a0, a1)


def _pre_split_augment(a, b, rng, size, scale=(0.25, 1.0)):
    """The hand-written flips/crop this module used before torchvision v2 (kept as the regression reference)."""
    import math

    from smarties_terratorch.normalization import resize_to

    if rng.random() < 0.5:
        a, b = a.flip(-2), b.flip(-2)
    if rng.random() < 0.5:
        a, b = a.flip(-1), b.flip(-1)
    k = int(rng.integers(4))
    a, b = a.rot90(k, (-2, -1)), b.rot90(k, (-2, -1))
    side = math.sqrt(rng.uniform(*scale))
    top, left = rng.uniform(0, 1 - side), rng.uniform(0, 1 - side)
    out = []
    for x in (a, b):
        h, w = x.shape[-2:]
        y0, x0 = round(top * h), round(left * w)
        y1, x1 = max(y0 + 1, round((top + side) * h)), max(x0 + 1, round((left + side) * w))
        out.append(resize_to(x[..., y0:y1, x0:x1].contiguous(), size))
    return out


@pytest.mark.parametrize("scale", [(0.25, 1.0), (1.0, 1.0)])
def test_torchvision_augment_is_unchanged(scale) -> None:
    """Same seed -> the same tensors as the pre-torchvision code, bit for bit (views of 40 and 120 px; a full
    window at the output size, where the resize is skipped, included)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 40, 40, generator=gen), torch.randn(12, 120, 120, generator=gen)
    for seed in range(20):
        for size in (32, 40):
            new = paired_augment(a, b, np.random.default_rng(seed), size, scale)
            old = _pre_split_augment(a, b, np.random.default_rng(seed), size, scale)
            for x, y in zip(new, old):
                assert torch.equal(x, y)


def test_batch_sampler_groups_sources_and_is_deterministic() -> None:
    sampler = SourceBatchSampler([5, 7], batch_size=2, repeats=[2, 1], seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 + 3  # 10 // 2 + 7 // 2 (drop_last per source)
    for batch in batches:
        sources = {idx >= 5 for idx, _ in batch}
        assert len(sources) == 1
    assert batches == list(SourceBatchSampler([5, 7], 2, [2, 1], seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    # resuming: every iteration of the resumed epoch skips its consumed batches (Lightning may iterate twice),
    # other epochs start at batch 0
    sampler.resume(0, 3)
    assert sampler.epoch == 0 and list(sampler) == batches[3:] and list(sampler) == batches[3:]
    sampler.set_epoch(1)
    fresh = SourceBatchSampler([5, 7], 2, [2, 1], seed=3)
    fresh.set_epoch(1)
    assert list(sampler) == list(fresh)
    # a position saved after the last batch of an epoch resumes at the start of the next one
    sampler.resume(0, len(sampler))
    assert sampler.epoch == 1 and len(list(sampler)) == len(sampler)


def test_batch_sampler_shards_ranks() -> None:
    ranks = [list(SourceBatchSampler([9, 8], 2, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(SourceBatchSampler([9, 8], 2, num_replicas=3))
    flat = [tuple(b) for r in ranks for b in r]
    assert len(flat) == len(set(flat))


def test_datamodule_batches(pairs: Path) -> None:
    dm = PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1}], img_size=32, batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image_a"].shape == (2, 4, 32, 32) and batch["image_b"].shape == (2, 2, 32, 32)
    assert batch["bands_a"] == S2["bands"] and batch["bands_b"] == S1["bands"]
    state = dm.train_dataloader().state_dict()
    assert state == {"epoch": 0, "consumed": 0}


def test_demo_data_is_real_and_complete() -> None:
    from smarties_terratorch.sample_data import demo_sources, prepare_demo_data

    root = prepare_demo_data()
    sources = demo_sources(root)
    sizes = [len(read_pairs_list(s["list"])) for s in sources]
    assert sizes == [6, 256, 225]
    ds = PairedImageDataset(sources, img_size=64)
    for index in (0, 6, 6 + 256):  # one sample of each source
        sample = ds[(index, 1)]
        assert sample["image_a"].shape[-2:] == (64, 64) and torch.isfinite(sample["image_b"]).all()
        assert sample["image_b"].std() > 0.1  # real texture, not a constant fill
    with rasterio.open(root / "s2_l1c" / "tile_00_00.tif") as src:
        assert src.count == 12 and src.shape == (120, 120) and src.res == (10.0, 10.0)
