"""Scene-classification datasets (``smarties_terratorch.datasets``): EuroSAT, RESISC45, UC-Merced, WHU-RS19,
BigEarthNet, on the generated fixtures in each dataset's real layout.

``REFERENCE`` holds sha256 prefixes of samples (image bytes, shape, dtype and label) produced by the data modules
*before* the readers moved into ``datasets/`` (commit 54ec6a2, same fixtures, same seeds): the datasets and the
thinner data modules must reproduce them bit for bit. The digests pin torch's interpolation; if an upgrade changes
it, recompute them from a checkout of that commit.

JPEG decoding is not bit-exact across libjpeg builds: GDAL 3.10 (rasterio 1.4 wheels) and GDAL 3.12 (rasterio 1.5
wheels) decode the same fixture JPEG up to 9 levels apart in 27 % of the pixels. So the JPEG datasets (RESISC45,
WHU-RS19) keep one digest table per decoder, chosen by the digest of one decoded fixture JPEG. The 3.10 table is
the one from commit 54ec6a2; the 3.12 table was recorded by this code on rasterio 1.5.2, where everything after
decoding is the same torch code the 3.10 table (and the decoder-free digests here) pin bit for bit. A decoder with
no table skips those digests with its fingerprint; ``test_jpeg_reader_agrees_with_pillow`` checks any decoder's
pixels within JPEG tolerance.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from smarties_terratorch.datamodules.bigearthnet import BigEarthNetDataModule
from smarties_terratorch.datamodules.eurosat import EuroSATDataModule
from smarties_terratorch.datamodules.resisc45 import RESISC45DataModule
from smarties_terratorch.augmentation import ImageTransform, flip_rot90
from smarties_terratorch.datasets.utils import center_crop, resize_short_side
from smarties_terratorch.datamodules.classification import random_flip_rot90, random_resized_crop, read_split_file
from smarties_terratorch.datamodules.whurs19 import WHURS19DataModule
from smarties_terratorch.datasets.bigearthnet import S1_BANDS, S2_L2A_BANDS, BigEarthNet
from smarties_terratorch.datasets.classification import ClassFolderDataset, read_plain_image
from smarties_terratorch.datasets.eurosat import EUROSAT_FILE_BANDS, EuroSAT
from smarties_terratorch.datasets.resisc45 import RESISC45
from smarties_terratorch.datasets.ucmerced import UCMerced
from smarties_terratorch.datasets.whurs19 import WHURS19
from smarties_terratorch.io import RasterError
from smarties_terratorch.testing import make_fixture

REFERENCE: dict[str, Any] = {
    "eurosat_train_aug": ["87574f8a9e6b395f", "1cfc31c8f6a8b3ad"],
    "eurosat_val": ["282d86e36c72fa3d", "f60a4ca82cc439b3"],
    "eurosat_rgbn_holdout_train": ["845b67bbd846e414", "09da0e63db3e528c"],
    "eurosat_rgbn_holdout_val": ["8ef57080a3436a19", "9af5a6f16c6a76c1"],
    "ucmerced_train": ["baf97ca0209c18be", "843eb318ce52441a"],
    "ucmerced_val": ["6137c732ba676aec", "ee6efeff177fbbd9"],
    "ben_s2_train_aug": ["6f8fc47a79d6cdb8", "d6dd9342c9c678be"],
    "ben_s2_val": ["4f3bf4378db2c1a4", "52d42d81b2732783"],
    "ben_s1_train": ["b2af3e7b40882e3a", "e43f70666af529db"],
    "ben_mm_dict_aug": ["ba17ae6d2bbaaf4f", "2f405374bd15dc26"],
    "ben_mm_stack_holdout_train": ["05bcb53c157cd771", "52b36bce7f06a454"],
    "resize_short_side": "12f02da1e272c916(3, 256, 300)",
    "center_crop_odd": [
        "511d13359f694643(3, 224, 224)",
        "88caa1276c04e5e6(3, 224, 224)",
        "0f7be8a1e13a2658(3, 224, 224)",
    ],
    # random_resized_crop(x, 224) for seeds 0..5 (ratio 1, the only one the data modules use)
    "random_resized_crop": [
        "508aaf5ff73b8a96(3, 224, 224)",
        "8dd646883f9eddc6(3, 224, 224)",
        "7eac66faf5502f29(3, 224, 224)",
        "210c396542c29467(3, 224, 224)",
        "b2558c314640bf08(3, 224, 224)",
        "670920a4608431e8(3, 224, 224)",
    ],
    # (image 1, image 2, next random number) after random_flip_rot90 for seeds 0..7
    "random_flip_rot90": [
        "4c6569c358dd1806(3, 64, 64)8cfaaf8a3336cfea(2, 64, 64)a91afce58290ba80()",
        "5b9550516e7cd364(3, 64, 64)af6cf2002b404b7f(2, 64, 64)75157e7be7151500()",
        "1f988ef1b4226c3c(3, 64, 64)ed2a392a21be73ce(2, 64, 64)525a2bc6bb10d4f7()",
        "d160abc3ae1c4327(3, 64, 64)4889091fd946c953(2, 64, 64)3acf3b54c2e73bdf()",
        "d160abc3ae1c4327(3, 64, 64)4889091fd946c953(2, 64, 64)06ea15718d109510()",
        "4c6569c358dd1806(3, 64, 64)8cfaaf8a3336cfea(2, 64, 64)c39a15b7a71dba0c()",
        "d160abc3ae1c4327(3, 64, 64)4889091fd946c953(2, 64, 64)737e156ed0bea95b()",
        "1f988ef1b4226c3c(3, 64, 64)ed2a392a21be73ce(2, 64, 64)e61b6f572ac784f8()",
    ],
}


# JPEG datasets: {fingerprint of the decoder: digests}; the fingerprint is _jpeg_decoder's digest.
JPEG_REFERENCE: dict[str, dict[str, list[str]]] = {
    "ef99fb095c7c5240": {  # GDAL 3.10 (rasterio 1.4.4 wheels): the digests of commit 54ec6a2
        "resisc45_train_aug": ["9687abc89adb50c2", "856f74f27fb047e1"],
        "resisc45_val": ["8040df55327a62be", "cee882e410f73db8"],
        "resisc45_holdout_train": ["94639ee0f8df011c", "1e959cb54223ef0d"],
        "whurs19_train": ["1285227703b260da", "754ed8db00e53b2b"],
        "whurs19_val_holdout": ["66a1afc02ab700ab", "d2aa5695784e6a14"],
    },
    "f12ec08ff38dcbd7": {  # GDAL 3.12 (rasterio 1.5.2 wheels)
        "resisc45_train_aug": ["514d99f5752c72c4", "56066260eb46733c"],
        "resisc45_val": ["2124b23d69594e73", "8a435a8c5d4524d1"],
        "resisc45_holdout_train": ["ed0a62cf0595a6f6", "9c114352ab8a4b1d"],
        "whurs19_train": ["c1a7d8ceebed95c4", "b566c8616525ef47"],
        "whurs19_val_holdout": ["ac5a273dfb390b28", "9605a686bcb96937"],
    },
}


def _jpeg_decoder(fx: dict[str, Path]) -> str:
    """Fingerprint of this environment's JPEG decoder: the digest of one decoded fixture JPEG."""
    pixels = read_plain_image(next(iter(sorted((fx["resisc45"] / "airplane").glob("*.jpg")))))
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]


def _jpeg_reference(fx: dict[str, Path]) -> dict[str, list[str]]:
    decoder = _jpeg_decoder(fx)
    if decoder not in JPEG_REFERENCE:
        pytest.skip(
            f"no JPEG digests for this decoder (fingerprint {decoder}, GDAL {rasterio.__gdal_version__}); add its "
            "table to JPEG_REFERENCE (test_jpeg_reader_agrees_with_pillow still checks its pixels)"
        )
    return JPEG_REFERENCE[decoder]


def _digest(sample: dict[str, Any]) -> str:
    h = hashlib.sha256()
    image = sample["image"]
    for key, value in sorted(image.items()) if isinstance(image, dict) else [("", image)]:
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(str(value.dtype).encode())
        h.update(value.contiguous().numpy().tobytes())
    label = sample["label"]
    h.update(str(label.dtype).encode())
    h.update(label.numpy().tobytes())
    return h.hexdigest()[:16]


def _digests(dataset: Any, seed: int = 0) -> list[str]:
    """Digests of the first and last sample, each drawn right after ``torch.manual_seed(seed)``."""
    out = []
    for i in (0, len(dataset) - 1):
        torch.manual_seed(seed)
        out.append(_digest(dataset[i]))
    return out


def _tensor_digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()[:16] + str(tuple(x.shape))


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scene_datasets")
    return {n: make_fixture(n, root / n) for n in ("eurosat", "resisc45", "ucmerced", "whurs19", "bigearthnet")}


def _split(data: Path, name: str, split: str) -> Path:
    return data.parent / "eval_splits" / f"{name}-{split}.txt"


# ------------------------------------------------------------------------------------------------- same pixels
def test_eurosat_samples_unchanged(fx: dict[str, Path]) -> None:
    root = fx["eurosat"]
    train = _split(root, "eurosat", "train")
    aug = ImageTransform(flip_rot90())
    dataset = EuroSAT(root, read_split_file(train), transforms=aug, source=train)
    assert _digests(dataset) == REFERENCE["eurosat_train_aug"]
    assert _digests(EuroSAT(root, read_split_file(_split(root, "eurosat", "val")))) == REFERENCE["eurosat_val"]
    sample = dataset[0]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (12, 224, 224)
    assert sample["label"].dtype == torch.long and dataset.classes[0] == "AnnualCrop"
    torch.manual_seed(0)  # loader workers get a pickled copy, augmentation included
    assert _digest(pickle.loads(pickle.dumps(dataset))[0]) == REFERENCE["eurosat_train_aug"][0]
    # band subset + hold-out through the data module
    dm = EuroSATDataModule(str(root), bands=["B04", "B03", "B02", "B8A"], size=96)
    assert _digests(dm.build_dataset("train")) == REFERENCE["eurosat_rgbn_holdout_train"]
    assert _digests(dm.build_dataset("val")) == REFERENCE["eurosat_rgbn_holdout_val"]
    assert EuroSAT(root, ["./Forest/Forest_1.tif"], size=None)[0]["image"].shape == (12, 64, 64)


def test_resisc45_samples_unchanged(fx: dict[str, Path]) -> None:
    reference = _jpeg_reference(fx)
    root = fx["resisc45"]
    dm = RESISC45DataModule(
        str(root),
        train_split=str(_split(root, "resisc45", "train")),
        val_split=str(_split(root, "resisc45", "val")),
        augment=True,
    )
    train = dm.build_dataset("train")
    assert _digests(train, seed=3) == reference["resisc45_train_aug"]
    assert _digests(pickle.loads(pickle.dumps(train)), seed=3) == reference["resisc45_train_aug"]
    val = RESISC45(root, read_split_file(_split(root, "resisc45", "val")))
    assert _digests(val) == reference["resisc45_val"]
    holdout = RESISC45DataModule(str(root), size=200, resize_size=230).build_dataset("train")
    assert _digests(holdout) == reference["resisc45_holdout_train"]
    assert RESISC45(root, ["./airplane/airplane_001.jpg"], size=None)[0]["image"].shape == (3, 256, 256)


def test_jpeg_reader_agrees_with_pillow(fx: dict[str, Path]) -> None:
    """Any JPEG decoder: our reader (GDAL) gives Pillow's pixels in ``[C, H, W]`` order, within JPEG tolerance
    (libjpeg builds differ by rounding; measured: GDAL 3.12 identical, GDAL 3.10 at most 9 levels, mean 0.34)."""
    from PIL import Image

    files = sorted(fx["resisc45"].rglob("*.jpg"))[:8] + sorted(fx["whurs19"].rglob("*.jpg"))[:8]
    for path in files:
        ours = read_plain_image(path)
        with Image.open(path) as image:
            pillow = np.asarray(image.convert("RGB")).transpose(2, 0, 1).astype(np.float32)
        assert ours.shape == pillow.shape, path
        diff = np.abs(ours - pillow)
        assert diff.max() <= 16 and diff.mean() <= 1.0, (path, diff.max(), diff.mean())


def test_ucmerced_and_whurs19_samples_unchanged(fx: dict[str, Path]) -> None:
    reference = _jpeg_reference(fx)
    ucm = fx["ucmerced"]
    splits = ucm.parent.parent / "eval_splits"
    train = UCMerced(ucm, read_split_file(splits / "ucmerced-train.txt"))
    assert _digests(train) == REFERENCE["ucmerced_train"]
    assert _digests(UCMerced(ucm, read_split_file(splits / "ucmerced-val.txt"))) == REFERENCE["ucmerced_val"]
    assert len(train.classes) == 21 and train[0]["image"].shape == (3, 224, 224)
    whu = fx["whurs19"]
    whu_train = _split(whu, "whurs19", "train")
    assert _digests(WHURS19(whu, read_split_file(whu_train))) == reference["whurs19_train"]
    dm = WHURS19DataModule(str(whu), train_split=str(whu_train))
    with pytest.warns(UserWarning, match="may overlap the train list"):
        assert _digests(dm.build_dataset("val")) == reference["whurs19_val_holdout"]


def test_bigearthnet_samples_unchanged(fx: dict[str, Path]) -> None:
    ben = fx["bigearthnet"]
    s2, s1, splits = ben / "BigEarthNet-v1.0", ben / "BigEarthNet-S1-v1.0", ben / "eval_splits"
    s2_train = [{"S2": s2 / name} for name in read_split_file(splits / "BigEarthNet-S2-train.txt")]
    aug = ImageTransform(flip_rot90())
    assert _digests(BigEarthNet(s2_train, ["S2"], size=64, transforms=aug)) == REFERENCE["ben_s2_train_aug"]
    s2_val = [{"S2": s2 / name} for name in read_split_file(splits / "BigEarthNet-S2-val.txt")]
    assert _digests(BigEarthNet(s2_val, ["S2"], size=64)) == REFERENCE["ben_s2_val"]
    s1_train = [{"S1": s1 / name} for name in read_split_file(splits / "BigEarthNet-S1-train.txt")]
    s1_data = BigEarthNet(s1_train, ["S1"], size=64)
    assert _digests(s1_data) == REFERENCE["ben_s1_train"]
    pairs = [line.split() for line in read_split_file(splits / "BigEarthNet-MM-train.txt")]
    mm = [{"S2": s2 / a, "S1": s1 / b} for a, b in pairs]
    mm_data = BigEarthNet(mm, ["S2", "S1"], {"S2": ["B04", "B03", "B02"]}, size=64, transforms=aug)
    assert _digests(mm_data) == REFERENCE["ben_mm_dict_aug"]
    assert _digests(pickle.loads(pickle.dumps(mm_data))) == REFERENCE["ben_mm_dict_aug"]
    dm = BigEarthNetDataModule(str(s2), str(s1), modalities=["S1", "S2"], stack_modalities=True, size=64)
    stacked = dm.build_dataset("train")
    assert _digests(stacked) == REFERENCE["ben_mm_stack_holdout_train"]
    # shapes, dtypes and the S2 labels of an S1+S2 sample
    sample = mm_data[0]
    assert set(sample["image"]) == {"S2", "S1"} and sample["image"]["S2"].shape == (3, 64, 64)
    assert sample["label"].dtype == torch.float32 and sample["label"].shape == (19,)
    assert stacked[0]["image"].shape == (len(S1_BANDS) + len(S2_L2A_BANDS), 64, 64)
    assert torch.equal(mm_data.labels(0), BigEarthNet(mm[:1], ["S2"]).labels(0))
    assert BigEarthNet(s2_val, ["S2"], size=None)[0]["image"].shape == (12, 120, 120)


# ------------------------------------------------------------------------------------------------- augmentation
def test_torchvision_augmentations_keep_the_old_pixels() -> None:
    x = torch.randn(3, 257, 301, generator=torch.Generator().manual_seed(1))
    assert _tensor_digest(resize_short_side(x, 256)) == REFERENCE["resize_short_side"]
    crops = [center_crop(x, 224), center_crop(x[:, :, :229], 224), center_crop(x[:, :227], 224)]
    assert [_tensor_digest(c) for c in crops] == REFERENCE["center_crop_odd"]
    rrc = []
    for seed in range(6):
        torch.manual_seed(seed)
        rrc.append(_tensor_digest(random_resized_crop(x, 224)))
    assert rrc == REFERENCE["random_resized_crop"]
    flips = []
    for seed in range(8):
        torch.manual_seed(seed)
        a, b = random_flip_rot90([x[:, :64, :64], x[:2, :64, :64] * 2])
        flips.append(_tensor_digest(a) + _tensor_digest(b) + _tensor_digest(torch.rand(())))
    assert flips == REFERENCE["random_flip_rot90"]
    # a dict image (two modalities) moves as one: the same flips/rotation for both
    torch.manual_seed(0)
    out = ImageTransform(flip_rot90())({"image": {"S2": x[:, :64, :64], "S1": x[:2, :64, :64] * 2}, "label": 1})
    torch.manual_seed(0)
    a, b = random_flip_rot90([x[:, :64, :64], x[:2, :64, :64] * 2])
    assert torch.equal(out["image"]["S2"], a) and torch.equal(out["image"]["S1"], b) and out["label"] == 1
    assert type(a) is torch.Tensor and a.is_contiguous()
    # a mask moves with the image; the label passes through untouched
    image, mask = torch.arange(32.0).reshape(2, 4, 4), torch.arange(16).reshape(4, 4)
    for seed in range(4):
        torch.manual_seed(seed)
        out = ImageTransform(flip_rot90())({"image": image, "mask": mask, "label": torch.tensor(3)})
        assert torch.equal(out["image"][0], out["mask"].float()) and out["mask"].dtype == torch.int64
        assert type(out["mask"]) is torch.Tensor and out["label"] == 3


def test_band_orders_match_torchgeo() -> None:
    # The module docstrings say torchgeo reads the same files in the same band order; keep that true.
    from torchgeo.datasets import EuroSAT
    from torchgeo.datasets.utils import sort_sentinel2_bands

    assert tuple(EuroSAT.all_band_names) == EUROSAT_FILE_BANDS
    files = sorted((f"P_{b}.tif" for b in reversed(S2_L2A_BANDS)), key=sort_sentinel2_bands)
    assert tuple(f[2:-4] for f in files) == S2_L2A_BANDS


# ------------------------------------------------------------------------------------------------- errors
def test_errors_name_the_file(fx: dict[str, Path], tmp_path: Path) -> None:
    root = fx["eurosat"]
    with pytest.raises(FileNotFoundError, match=r"EuroSAT_MS root .*missing does not exist \(expected the layout"):
        EuroSAT(tmp_path / "missing")
    (tmp_path / "empty" / "Forest").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="No class folder with \\*.jpg files under"):
        WHURS19(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"No \*.tif files for classes \['Forest'\]"):
        EuroSAT(tmp_path / "empty", classes=["Forest"])
    with pytest.raises(FileNotFoundError, match=r"split.txt: './Forest/Forest_9.tif' -> .*Forest_9.tif does not exist"):
        EuroSAT(root, ["./Forest/Forest_9.tif"], source="split.txt")
    with pytest.raises(ValueError, match="split.txt: class 'Desert' of './Desert/x.tif' is not one of"):
        EuroSAT(root, ["./Desert/x.tif"], source="split.txt")
    with pytest.raises(ValueError, match="line 'Forest_1.tif' is not in the ./<Class>/<file> format"):
        EuroSAT(root, ["Forest_1.tif"])
    with pytest.raises(ValueError, match="is not under the EuroSAT_MS root"):
        EuroSAT(root, [tmp_path / "Forest" / "Forest_1.tif"])
    with pytest.raises(ValueError, match="B10"):
        EuroSAT(root, bands=["B02", "B10"])
    with pytest.raises(ValueError, match=r"resize_size \(200\) must be >= size \(224\)"):
        UCMerced(fx["ucmerced"], resize_size=200)
    # a file with the wrong channel count is named
    bad = tmp_path / "bad" / "Forest"
    bad.mkdir(parents=True)
    profile = dict(driver="GTiff", width=8, height=8, count=3, dtype="uint16", transform=from_origin(0, 0, 10, 10))
    with rasterio.open(bad / "Forest_1.tif", "w", **profile) as dst:
        dst.write(np.ones((3, 8, 8), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"Forest_1.tif: 3 channels, but EuroSAT_MS .* files have 13"):
        EuroSAT(bad.parent)[0]
    # an unreadable file is named by the raster layer
    (bad / "Forest_1.tif").write_bytes(b"not a tiff")
    with pytest.raises(RasterError, match="Forest_1.tif"):
        EuroSAT(bad.parent)[0]


def test_bigearthnet_errors_name_the_file(fx: dict[str, Path], tmp_path: Path) -> None:
    src = next(p for p in sorted((fx["bigearthnet"] / "BigEarthNet-v1.0").iterdir()) if p.is_dir())
    patch = tmp_path / src.name
    shutil.copytree(src, patch)
    (patch / f"{patch.name}_B05.tif").unlink()
    dataset = BigEarthNet([{"S2": patch}], ["S2"], size=None)
    with pytest.raises(FileNotFoundError, match=f"Missing band file .*{patch.name}_B05.tif"):
        dataset[0]
    with pytest.raises(ValueError, match="modalities must be 'S2', 'S1' or both"):
        BigEarthNet([{"S2": patch}], ["S3"])
    with pytest.raises(ValueError, match="Band 'B10'"):
        BigEarthNet([{"S2": patch}], ["S2"], {"S2": ["B10"]})


def test_class_folder_dataset_lists_files(fx: dict[str, Path]) -> None:
    root = fx["resisc45"]
    every = RESISC45(root, classes=["airplane", "beach"])
    assert [(p.name, y) for p, y in every.samples] == [
        ("airplane_001.jpg", 0), ("airplane_002.jpg", 0), ("beach_001.jpg", 1), ("beach_002.jpg", 1),
    ]  # fmt: skip
    # split lines, relative paths and absolute paths under the root name the same samples
    forms: Sequence[Any] = ["./beach/beach_002.jpg", "beach/beach_002.jpg", root / "beach" / "beach_002.jpg"]
    assert {tuple(RESISC45(root, [f]).samples) for f in forms} == {((root / "beach/beach_002.jpg", 4),)}
    assert isinstance(every, ClassFolderDataset) and len(every) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the JPEGs carry no georeference; reading them is quiet
        every[0]
