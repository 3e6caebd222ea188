"""Your own GeoTIFFs with TerraTorch's generic data modules: the SMARTIES normalisation transform, ``smarties stats``
and the example configs under ``configs/examples/`` (each run for one step on generated files in its layout)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).parent))
from cli_utils import REPO, run_config, tiny_model_args  # noqa: E402

from smarties_terratorch import stats as stats_cli  # noqa: E402
from smarties_terratorch.io import read_raster  # noqa: E402
from smarties_terratorch.normalization import (  # noqa: E402
    SmartiesAlbumentationsNormalize,
    SmartiesNormalize,
    compute_statistics,
)

EXAMPLES = REPO / "configs" / "examples"
HLS6 = ["B02", "B03", "B04", "B8A", "B11", "B12"]
S2_4 = ["B02", "B03", "B04", "B08"]


def _write(path: Path, array: np.ndarray, nodata: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    count, h, w = array.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=h, width=w, count=count, dtype=array.dtype, crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(array)
    return path


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_segmentation(root: Path, n: int = 2, size: int = 64) -> Path:
    """Burn-scars layout: ``<split>/<name>_merged.tif`` (6 bands, reflectance 0-1) + ``<name>.mask.tif``."""
    for split in ("training", "validation"):
        for i in range(n):
            rng = _rng(hash((split, i)) % 2**32)
            _write(root / split / f"s{i}_merged.tif", rng.uniform(0, 0.5, (6, size, size)).astype(np.float32))
            _write(root / split / f"s{i}.mask.tif", rng.integers(-1, 2, (1, size, size)).astype(np.int16))
    return root


def make_classification(root: Path, n: int = 2, size: int = 32) -> Path:
    """ImageFolder layout: ``<split>/<class>/<name>.tif`` (4 bands, Sentinel-2 digital numbers)."""
    for split in ("train", "val"):
        for k, cls in enumerate(("forest", "urban", "water")):
            for i in range(n):
                rng = _rng(100 * k + i + (0 if split == "train" else 50))
                img = rng.uniform(200 + 500 * k, 3000 + 500 * k, (4, size, size)).astype(np.uint16)
                _write(root / split / cls / f"{cls}_{i}.tif", img)
    return root


def make_multitemporal(root: Path, n: int = 2, size: int = 64, dates: int = 3) -> Path:
    """Date-major stacks: ``<split>/<name>_img.tif`` (dates x 4 bands, digital numbers) + ``<name>_mask.tif``."""
    for split in ("train", "val"):
        for i in range(n):
            rng = _rng(7 + i + (0 if split == "train" else 50))
            _write(root / split / f"t{i}_img.tif", rng.uniform(0, 4000, (4 * dates, size, size)).astype(np.float32))
            _write(root / split / f"t{i}_mask.tif", rng.integers(0, 3, (1, size, size)).astype(np.int16))
    return root


# ------------------------------------------------------------------------------------------------- the transform
def test_transform_equals_smarties_normalize_on_channels_last_samples() -> None:
    img = _rng(0).uniform(-100, 6000, (24, 40, 6)).astype(np.float32)
    img[0, 0, 0] = np.nan
    t = SmartiesAlbumentationsNormalize("S2-L2A", bands=HLS6)
    ref = SmartiesNormalize.from_spec("S2-L2A", HLS6)(torch.from_numpy(img).permute(2, 0, 1)).permute(1, 2, 0)
    out = t(image=img)["image"]
    assert out.shape == img.shape and out.dtype == np.float32
    # bit for bit, NaN kept where the input was NaN
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=0, atol=0, equal_nan=True)
    filled = SmartiesAlbumentationsNormalize("S2-L2A", bands=HLS6, nan_to=0.0)(image=img)["image"]
    assert filled[0, 0, 0] == 0.0 and np.isfinite(filled).all()
    # multi-temporal samples [T, H, W, C]: every date with the same statistics
    series = np.stack([img, 2 * img])
    out_t = t(image=series)["image"]
    assert np.array_equal(out_t[1], t(image=2 * img)["image"], equal_nan=True)


def test_transform_says_where_it_belongs() -> None:
    t = SmartiesAlbumentationsNormalize("S2-L2A", bands=S2_4)
    with pytest.raises(ValueError, match="before FlattenTemporalIntoChannels and ToTensorV2"):
        t(image=np.zeros((8, 8, 12), np.float32))  # flattened dates: 12 channels for 4 statistics bands
    with pytest.raises(ValueError, match="'BLUE' is not in the S2-L2A statistics"):
        SmartiesAlbumentationsNormalize("S2-L2A", bands=["BLUE"])


def test_generic_segmentation_module_gives_the_two_step_normalisation(tmp_path: Path) -> None:
    from terratorch.datamodules import GenericNonGeoSegmentationDataModule

    root = make_segmentation(tmp_path / "seg", n=2, size=32)
    t = SmartiesAlbumentationsNormalize("S2-L2A", bands=HLS6)
    dm = GenericNonGeoSegmentationDataModule(
        batch_size=2, num_workers=0, num_classes=2, train_data_root=root / "training",
        val_data_root=root / "validation", img_grep="*_merged.tif",
        label_grep="*.mask.tif", constant_scale=10000.0, train_transform=[t, _to_tensor()], no_data_replace=0,
        no_label_replace=-1,
    )  # fmt: skip
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    raw = torch.from_numpy(np.stack([read_raster(f) for f in sorted((root / "training").glob("*_merged.tif"))]))
    expected = SmartiesNormalize.from_spec("S2-L2A", HLS6)(raw * 10000.0)
    assert torch.allclose(batch["image"], expected, atol=1e-6, rtol=0)


def test_generic_classification_module_with_means_0_stds_1(tmp_path: Path) -> None:
    from terratorch.datamodules import GenericNonGeoClassificationDataModule

    root = make_classification(tmp_path / "cls", n=1)
    spec = stats_cli.raster_statistics(sorted((root / "train").rglob("*.tif")), S2_4)
    t = SmartiesAlbumentationsNormalize(spec)
    dm = GenericNonGeoClassificationDataModule(
        batch_size=3, num_workers=0, train_data_root=root / "train", val_data_root=root / "val",
        test_data_root=root / "val", means=[0.0], stds=[1.0], num_classes=3, train_transform=[t, _to_tensor()],
    )  # fmt: skip
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    by_name = {Path(f).name: img for f, img in zip(batch["filename"], batch["image"])}
    for name, image in by_name.items():
        raw = torch.from_numpy(read_raster(next((root / "train").rglob(name))))
        assert torch.allclose(image, SmartiesNormalize.from_spec(spec)(raw), atol=1e-6, rtol=0)


def _to_tensor():
    from albumentations.pytorch import ToTensorV2

    return ToTensorV2()


# ------------------------------------------------------------------------------------------------- smarties stats
def test_stats_command_writes_what_from_spec_and_the_transform_load(tmp_path: Path, capsys) -> None:
    root = make_classification(tmp_path / "cls", n=2)
    out = tmp_path / "out" / "stats.yaml"
    assert stats_cli.main([str(root / "train" / "*" / "*.tif"), "--bands", *S2_4, "--out", str(out)]) == 0
    assert "6 file(s), 4 band(s)" in capsys.readouterr().out
    written = yaml.safe_load(out.read_text())
    files = sorted((root / "train").rglob("*.tif"))
    expected = compute_statistics([read_raster(f) for f in files], band_names=S2_4)
    assert written["bands"] == S2_4 and written["files"] == 6
    for key in ("mean", "std", "p1", "p99"):
        assert written[key] == pytest.approx(expected[key], rel=1e-12)
    norm = SmartiesNormalize.from_spec(out, ["B04", "B02"])  # loadable, and selectable by band name
    assert norm.p1.tolist() == pytest.approx([expected["p1"][2], expected["p1"][0]], rel=1e-6)
    img = read_raster(files[0])
    out_t = SmartiesAlbumentationsNormalize(str(out))(image=np.moveaxis(img, 0, -1))["image"]
    ref = SmartiesNormalize.from_spec(expected)(torch.from_numpy(img))
    assert torch.equal(torch.from_numpy(out_t).permute(2, 0, 1), ref)


def test_stats_command_nodata_and_temporal(tmp_path: Path) -> None:
    img = _rng(1).uniform(0, 1000, (6, 16, 16)).astype(np.float32)
    img[:, :4] = -9999.0  # nodata rows must not reach the percentiles
    path = _write(tmp_path / "series.tif", img, nodata=-9999.0)
    out = tmp_path / "s.yaml"
    assert stats_cli.main([str(path), "--bands", "B04", "B08", "--temporal", "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text())
    dates = img[:, 4:].reshape(3, 2, 12, 16).swapaxes(0, 1)  # (date, band) pairs, date-major
    expected = compute_statistics([dates])
    assert written["p1"] == pytest.approx(expected["p1"]) and min(written["p1"]) >= 0


def test_stats_command_errors_are_one_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path / "a.tif", _rng(2).uniform(0, 1, (4, 8, 8)).astype(np.float32))
    assert stats_cli.main([str(tmp_path / "none_*.tif"), "--bands", "B02", "--out", str(tmp_path / "x.yaml")]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert stats_cli.main([str(path), "--bands", "B02", "B03", "--out", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert "has 4 bands but --bands names 2" in err and "--temporal" in err and err.count("\n") == 1
    assert not (tmp_path / "x.yaml").exists()


# ------------------------------------------------------------------------------------------------- example configs
def _common(tmp_path: Path) -> dict:
    return {"data.init_args.batch_size": 2, "data.init_args.num_workers": 0}


def test_example_configs_have_no_registration_line() -> None:
    for path in sorted(EXAMPLES.glob("own_data_*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        assert "custom_modules_path" not in cfg and not cfg["trainer"].get("callbacks"), path.name
        assert cfg["model"]["init_args"]["model_args"]["backbone"].startswith("smarties_vit_")


def test_example_segmentation_fits(tmp_path: Path) -> None:
    root = make_segmentation(tmp_path / "my_data")
    overrides = {
        **_common(tmp_path),
        "data.init_args.train_data_root": str(root / "training"),
        "data.init_args.val_data_root": str(root / "validation"),
        "data.init_args.test_data_root": str(root / "validation"),
    }
    cli = run_config(EXAMPLES / "own_data_segmentation.yaml", tmp_path, overrides)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert type(cli.model.model.encoder).__name__ == "SmartiesBackbone"


def test_example_classification_fits_with_computed_statistics(tmp_path: Path) -> None:
    root = make_classification(tmp_path / "my_scenes")
    stats_file = root / "stats.yaml"
    assert stats_cli.main([str(root / "train" / "*" / "*.tif"), "--bands", *S2_4, "--out", str(stats_file)]) == 0
    normalise = {"class_path": "smarties_terratorch.normalization.SmartiesAlbumentationsNormalize",
                 "init_args": {"statistics": str(stats_file)}}  # fmt: skip
    cfg = yaml.safe_load((EXAMPLES / "own_data_classification.yaml").read_text())["data"]["init_args"]
    overrides = {
        **_common(tmp_path),
        "data.init_args.train_data_root": str(root / "train"),
        "data.init_args.val_data_root": str(root / "val"),
        "data.init_args.test_data_root": str(root / "val"),
    }
    for split in ("train", "val", "test"):
        overrides[f"data.init_args.{split}_transform"] = [normalise, *cfg[f"{split}_transform"][1:]]
    cli = run_config(EXAMPLES / "own_data_classification.yaml", tmp_path, overrides)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_example_multitemporal_fits(tmp_path: Path) -> None:
    root = make_multitemporal(tmp_path / "my_series")
    overrides = {
        **_common(tmp_path),
        "data.init_args.train_data_root": str(root / "train"),
        "data.init_args.val_data_root": str(root / "val"),
        "data.init_args.test_data_root": str(root / "val"),
    }
    cli = run_config(EXAMPLES / "own_data_multitemporal.yaml", tmp_path, overrides)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert type(cli.model.model.encoder).__name__ == "TemporalWrapper"


# ------------------------------------------------------------------------------------------------- predict tiling
@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-step checkpoint of the segmentation example trained *without* tiling, and its config."""
    from terratorch.cli_tools import build_lightning_cli

    tmp = tmp_path_factory.mktemp("tiling")
    root = make_segmentation(tmp / "my_data", n=2, size=64)
    cfg = yaml.safe_load((EXAMPLES / "own_data_segmentation.yaml").read_text())
    cfg["model"]["init_args"]["model_args"] = tiny_model_args(cfg["model"]["init_args"]["model_args"])
    cfg["model"]["init_args"]["model_args"]["decoder_channels"] = 16  # a small UPerNet: a fast step
    del cfg["model"]["init_args"]["tiled_inference_parameters"]
    cfg["trainer"].update(accelerator="cpu", max_steps=1, max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0,
                          logger=False, default_root_dir=str(tmp / "run"))  # fmt: skip
    data = cfg["data"]["init_args"]
    data.update(batch_size=2, num_workers=0, predict_data_root=str(root / "validation"))
    for split, folder in (("train", "training"), ("val", "validation"), ("test", "validation")):
        data[f"{split}_data_root"] = str(root / folder)
    config = tmp / "fit.yaml"
    config.write_text(yaml.safe_dump(cfg))
    build_lightning_cli(["fit", "-c", str(config)])
    return next(p for p in sorted((tmp / "run").rglob("*.ckpt")) if "state_dict" not in p.name), config


TILES = {"h_crop": 32, "w_crop": 32, "h_stride": 16, "w_stride": 16, "average_patches": True}


def _predict(checkpoint: Path, config: Path, out: Path, monkeypatch, extra: list[str]) -> tuple[Any, list[dict]]:
    import terratorch.tasks.segmentation_tasks as seg
    from terratorch.cli_tools import build_lightning_cli

    calls: list[dict] = []
    tiled = seg.tiled_inference
    monkeypatch.setattr(seg, "tiled_inference", lambda *a, **k: calls.append(k) or tiled(*a, **k))
    args = ["predict", "-c", str(config), "--ckpt_path", str(checkpoint), "--predict_output_dir", str(out), *extra]
    return build_lightning_cli(args), calls


def test_predict_time_tiling_is_lost_without_the_callback(seg_checkpoint, tmp_path: Path, monkeypatch) -> None:
    """Lightning's behaviour the callback exists for: the checkpoint's hyperparameters win over the command line.

    With the autoload switched off, the installed ``callbacks_factory`` entry point adds no callback."""
    monkeypatch.setenv("SMARTIES_TERRATORCH_AUTOLOAD", "0")
    ckpt, config = seg_checkpoint
    extra = ["--model.init_args.tiled_inference_parameters", json.dumps(TILES)]
    cli, calls = _predict(ckpt, config, tmp_path / "pred", monkeypatch, extra)
    assert calls == [] and cli.model.tiled_inference_parameters is None


@pytest.mark.parametrize("how", ["zero lines", "command line", "callback argument"])
def test_predict_time_tiling_is_applied(seg_checkpoint, tmp_path: Path, monkeypatch, how: str) -> None:
    ckpt, config = seg_checkpoint
    if how == "zero lines":  # the installed entry point adds the callback: the user only asks for the tiling
        extra = ["--model.init_args.tiled_inference_parameters", json.dumps(TILES)]
    elif how == "command line":  # as documented; also what the callbacks_factory entry point adds (no arguments)
        extra = [
            "--model.init_args.tiled_inference_parameters", json.dumps(TILES),
            "--trainer.callbacks+=smarties_terratorch.backbone.SmartiesTiledPredict",
        ]  # fmt: skip
    else:
        callback = {"class_path": "smarties_terratorch.backbone.SmartiesTiledPredict",
                    "init_args": {"tiled_inference_parameters": TILES}}  # fmt: skip
        extra = ["--trainer.callbacks", json.dumps([callback])]
    cli, calls = _predict(ckpt, config, tmp_path / "pred", monkeypatch, extra)
    assert cli.model.tiled_inference_parameters == TILES
    assert calls and all({k: c[k] for k in TILES} == TILES for c in calls)  # every batch tiled, as asked
    assert sorted(p.name for p in (tmp_path / "pred").iterdir())  # predictions written


def test_lightning_callbacks_factory_gives_the_tiling_callback() -> None:
    from smarties_terratorch.backbone import SmartiesTiledPredict, lightning_callbacks

    (callback,) = lightning_callbacks()
    assert isinstance(callback, SmartiesTiledPredict) and callback.tiled_inference_parameters is None


@pytest.mark.slow
def test_terratorch_predict_command_applies_the_tiling(seg_checkpoint, tmp_path: Path) -> None:
    """The documented command, in a subprocess: the callback re-reads the real command line (sys.argv)."""
    import subprocess

    ckpt, config = seg_checkpoint
    out = tmp_path / "pred"
    cmd = [
        sys.executable, "-m", "terratorch", "predict", "-c", str(config), "--ckpt_path", str(ckpt),
        "--predict_output_dir", str(out), "--model.init_args.tiled_inference_parameters", json.dumps(TILES),
        "--trainer.callbacks+=smarties_terratorch.backbone.SmartiesTiledPredict",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "tiled_inference_parameters={'h_crop': 32" in run.stderr and "applied" in run.stderr
    assert any(out.iterdir())
