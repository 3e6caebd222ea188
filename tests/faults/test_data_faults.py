"""Fault injection into the data side: data modules, data sets, the raster reader and the normaliser builder.

Each case feeds one hostile or bad input and asserts the exception type, that the message names the offending file
or value, and that every input (and earlier output) is byte-identical afterwards.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from smarties_terratorch.datasets.bigearthnet import read_bigearthnet_s2
from smarties_terratorch.datamodules.bigearthnet import BigEarthNetDataModule
from smarties_terratorch.datamodules.burnscars import HLSBurnScarsDataModule
from smarties_terratorch.datamodules.dfc2020 import DFC2020DataModule
from smarties_terratorch.datamodules.dynamicearthnet import DynamicEarthNetDataModule
from smarties_terratorch.datasets.paired import PairedImageDataset
from smarties_terratorch.datasets.pairs import ViewSpec, read_pairs_list
from smarties_terratorch.io import RasterError, RasterReader, read_raster
from smarties_terratorch.testing import make_fixture
from smarties_terratorch.normalization import SmartiesNormalize

from .conftest import write_hostile_checkpoint

GOOD_STATS = {"mean": [0.5] * 6, "std": [0.2] * 6, "p1": [0.0] * 6, "p99": [1.0] * 6}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-fixtures")
    for name in ("burnscars", "bigearthnet", "dynamicearthnet"):
        make_fixture(name, root / name)
    return root


def _copy(fixtures: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixtures / name, tmp_path / name))


def _burnscars(root: Path, **kwargs) -> HLSBurnScarsDataModule:
    return HLSBurnScarsDataModule(str(root), protocol="terratorch", crop_size=None, **kwargs)


def _first_image(root: Path) -> Path:
    return sorted((root / "validation").glob("*_merged.tif"))[0]


# ------------------------------------------------------------------------------------------------ broken rasters
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text("this is not a GeoTIFF"), "is not a readable raster"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "could not be read"),
        (lambda p: p.write_bytes(b""), "is not a readable raster"),
    ],
    ids=["text-file", "truncated", "empty"],
)
def test_broken_image_is_named(fixtures: Path, tmp_path: Path, frozen, damage, message: str) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    image = _first_image(root)
    damage(image)
    dm = _burnscars(root, statistics=GOOD_STATS, scale=1.0)
    with frozen(tmp_path), pytest.raises(RasterError, match=re.escape(str(image)) + ".*" + message):
        dm.load(dm.items("val")[0])


def test_truncated_bigearthnet_band_is_named(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "bigearthnet", tmp_path)
    patch = next(p for p in sorted((root / "BigEarthNet-v1.0").iterdir()) if p.is_dir())
    band = patch / f"{patch.name}_B05.tif"
    band.write_bytes(band.read_bytes()[:300])
    with frozen(tmp_path), pytest.raises(RasterError, match=re.escape(str(band))):
        read_bigearthnet_s2(patch)


def test_wrong_band_count_vs_bands(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    five = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1"]
    dm = _burnscars(root, bands=five, statistics={k: v[:5] for k, v in GOOD_STATS.items()}, scale=1.0)
    image = dm.items("val")[0][0]
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(image)) + r": 6 bands in the file but 5"):
        dm.datasets.setdefault("val", dm.build_dataset("val"))[0]


def test_label_with_out_of_range_values(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    mask = sorted((root / "validation").glob("*.mask.tif"))[0]
    with rasterio.open(mask, "r+") as dst:
        data = dst.read()
        data[0, 3, 3] = 7
        dst.write(data)
    dm = _burnscars(root, statistics=GOOD_STATS, scale=1.0)
    image_name = mask.name.replace(".mask.tif", "_merged.tif")
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(image_name) + r": mask values \[7\]"):
        dm.build_dataset("val")[0]


def test_dynamicearthnet_label_with_wrong_band_count(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "dynamicearthnet", tmp_path)
    dm = DynamicEarthNetDataModule(str(root), statistics="compute", stats_samples=1, crop_size=None)
    label = dm.items("train")[0][1]
    with rasterio.open(label) as src:
        profile, first = src.profile, src.read(1)
    profile.update(count=1)
    with rasterio.open(label, "w", **profile) as dst:
        dst.write(first[None])
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(label)) + r": 1 bands; .*7 one-hot"):
        dm.load(dm.items("train")[0])


# ------------------------------------------------------------------------------------------------ reader inputs
def test_band_files_not_overlapping(tmp_path: Path, frozen) -> None:
    def write(path: Path, x0: float) -> Path:
        with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="float32", crs="EPSG:32632",
                           transform=rasterio.transform.from_origin(x0, 5e6, 10, 10)) as dst:  # fmt: skip
            dst.write(np.ones((1, 4, 4), np.float32))
        return path

    here, far = write(tmp_path / "B02.tif", 5e5), write(tmp_path / "B03.tif", 6e5)
    with frozen(tmp_path), pytest.raises(RasterError, match=rf"{re.escape(str(far))} does not overlap .*B02\.tif"):
        read_raster([here, far])


def test_band_index_out_of_range(fixtures: Path, frozen) -> None:
    image = _first_image(fixtures / "burnscars")
    with frozen(image), pytest.raises(RasterError, match=re.escape(str(image)) + r" has 6 band\(s\).*\[7\]"):
        RasterReader(image, indexes=[1, 7])


def test_missing_raster_is_named(tmp_path: Path, frozen) -> None:
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.tif"))):
        read_raster(tmp_path / "nope.tif")


# ------------------------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize(
    "content, error, message",
    [
        (yaml.safe_dump({k: v[:5] for k, v in GOOD_STATS.items()}), ValueError, r"has 5 values per statistic .* 6"),
        ("mean: [0.5, 0.5\nstd: {", ValueError, "is not valid JSON/YAML"),
        (yaml.safe_dump({"mean": [0.5] * 6, "std": [0.2] * 6}), ValueError, "lacks p1, p99"),
        ("- 1\n- 2\n", ValueError, "must hold a mapping"),
        (yaml.safe_dump({**GOOD_STATS, "p99": [0.0] * 6}), ValueError, "p99 must be > p1"),
    ],
    ids=["wrong-channel-count", "malformed-yaml", "missing-keys", "not-a-mapping", "p99-below-p1"],
)
def test_bad_statistics_file(fixtures: Path, tmp_path: Path, frozen, content: str, error: type, message: str) -> None:
    stats = tmp_path / "stats.yaml"
    stats.write_text(content)
    dm = _burnscars(fixtures / "burnscars", statistics=str(stats), scale=1.0)
    pattern = r"HLSBurnScarsDataModule: statistics file " + re.escape(str(stats)) + ".*" + message
    with frozen(tmp_path), pytest.raises(error, match=pattern):
        dm.normalizer()


def test_corrupt_statistics_cache_is_reported_not_overwritten(fixtures: Path, tmp_path: Path, frozen) -> None:
    cache = tmp_path / "cache.yaml"
    cache.write_text("mean: [oops")
    dm = _burnscars(fixtures / "burnscars", statistics="compute", statistics_file=str(cache), scale=1.0)
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(cache)) + " is not valid JSON/YAML"):
        dm.normalizer()


def test_unknown_statistics_table_is_named(fixtures: Path, frozen) -> None:
    dm = _burnscars(fixtures / "burnscars", statistics="S2-L3Z")
    with frozen(fixtures / "burnscars"), pytest.raises(ValueError, match=r"HLSBurnScarsDataModule: .*'S2-L3Z'"):
        dm.normalizer()


def test_view_statistics_file_with_wrong_channel_count(tmp_path: Path, frozen) -> None:
    stats = tmp_path / "l8.json"
    stats.write_text('{"mean": [0.5, 0.5], "std": [0.2, 0.2], "p1": [0, 0], "p99": [1, 1]}')
    view = ViewSpec(bands=["L8:B4", "L8:B3", "L8:B2"], statistics=str(stats))
    with frozen(tmp_path), pytest.raises(ValueError, match=r"View \['L8:B4'.*" + re.escape(str(stats)) + ".*2 values"):
        view.normalizer()


def test_from_spec_rejects_other_types(frozen, tmp_path: Path) -> None:
    with frozen(tmp_path), pytest.raises(TypeError, match="got list"):
        SmartiesNormalize.from_spec([0.5, 0.2, 0.0, 1.0])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ split files
def test_pairs_list_naming_missing_files(tmp_path: Path, frozen) -> None:
    listing = tmp_path / "pairs.txt"
    listing.write_text("a.tif b.tif\n\n# comment\nc.tif\n")
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=r"line 1: .*a\.tif\n.*line 1: .*b\.tif\n.*line 4"):
        read_pairs_list(listing)


def test_bigearthnet_split_naming_a_missing_patch(fixtures: Path, tmp_path: Path, frozen) -> None:
    split = tmp_path / "split.txt"
    split.write_text("S2A_MSIL2A_20170613T101031_99_99\n")
    s2_root = fixtures / "bigearthnet" / "BigEarthNet-v1.0"
    dm = BigEarthNetDataModule(str(s2_root), train_split=str(split))
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match="'S2A_MSIL2A_20170613T101031_99_99' not found"):
        dm.split_samples("train")


def test_dynamicearthnet_split_naming_a_missing_file(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "dynamicearthnet", tmp_path)
    split = root / "dynnet_training_splits" / "train.txt"
    planet, label, month = split.read_text().splitlines()[0].split()
    split.write_text(f"{planet} {label.replace('.tif', '_gone.tif')} {month}\n")
    dm = DynamicEarthNetDataModule(str(root), crop_size=None)
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=re.escape(str(split)) + r".*_gone\.tif"):
        dm.items("train")


def test_non_overlapping_pair(tmp_path: Path, frozen) -> None:
    from data.paired.data import make  # the paired fixture, with an S1 image 100 km away

    pairs = make(tmp_path / "paired")
    far = pairs.parent / "far.txt"
    far.write_text("s2/pair_0.tif far/far.tif\n")
    source = {"list": str(far), "first": {"bands": ["S2-L2A:B02", "S2-L2A:B03", "S2-L2A:B04", "S2-L2A:B08"],
              "statistics": "S2-L2A"}, "second": {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"}}  # fmt: skip
    with frozen(tmp_path), pytest.raises(ValueError, match=r"pair_0\.tif and .*far\.tif do not overlap"):
        PairedImageDataset([source], img_size=32)


# ------------------------------------------------------------------------------------------------ pickles
def test_dfc2020_pickle_is_refused_and_never_run(tmp_path: Path, frozen) -> None:
    marker = tmp_path / "PWNED"
    path = write_hostile_checkpoint(tmp_path / "DFC_preprocessed.pt", marker)
    dm = DFC2020DataModule(str(path))
    pattern = re.escape(str(path)) + r" holds pickled Python objects"
    with frozen(tmp_path), pytest.raises(ValueError, match=pattern) as err:
        dm.setup("fit")
    assert "trust_pickle" in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()


def test_dfc2020_truncated_file(tmp_path: Path, frozen) -> None:
    path = make_fixture("dfc2020", tmp_path / "dfc")
    path.write_bytes(path.read_bytes()[:1000])
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(path)) + " is not a readable PyTorch file"):
        DFC2020DataModule(str(path)).setup("fit")
