"""Your own GeoTIFFs with TerraTorch's generic data modules: the SMARTIES normalisation transform, ``smarties stats``
and the example configs under ``configs/examples/`` (each run for one step on generated files in its layout)."""

from __future__ import annotations

import json
import re
import sys
import warnings
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
    UnitsWarning,
    compute_statistics,
)

EXAMPLES = REPO / "configs" / "examples"
HLS6 = ["B02", "B03", "B04", "B8A", "B11", "B12"]
HLS_NAMES = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]  # the same bands, TerraTorch names
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
    with pytest.raises(ValueError, match="'NIRR' is not in the S2-L2A statistics.*Close matches: 'NIR_BROAD'"):
        SmartiesAlbumentationsNormalize("S2-L2A", bands=["NIRR"])
    # one band vocabulary: TerraTorch names pick the table's rows
    by_name = SmartiesAlbumentationsNormalize("S2-L2A", bands=HLS_NAMES).normalize
    assert by_name.bands == tuple(HLS6)


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
    encoder = cli.model.model.encoder
    assert type(encoder).__name__ == "SmartiesBackbone"
    assert encoder.input_norm is not None and encoder.input_norm.bands == tuple(HLS6)  # normalised in the model


def test_example_classification_fits_with_computed_statistics(tmp_path: Path) -> None:
    root = make_classification(tmp_path / "my_scenes")
    stats_file = root / "stats.yaml"
    assert stats_cli.main([str(root / "train" / "*" / "*.tif"), "--bands", *S2_4, "--out", str(stats_file)]) == 0
    overrides = {
        **_common(tmp_path),
        "data.init_args.train_data_root": str(root / "train"),
        "data.init_args.val_data_root": str(root / "val"),
        "data.init_args.test_data_root": str(root / "val"),
        "model.init_args.model_args.backbone_stats": str(stats_file),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)  # raw digital numbers fit the statistics: no units warning
        cli = run_config(EXAMPLES / "own_data_classification.yaml", tmp_path, overrides)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert cli.model.model.encoder.input_norm.source == f"statistics file {stats_file}"


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
    assert any(getattr(m, "input_norm", None) is not None for m in cli.model.model.encoder.modules())


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
    """Lightning's behaviour the package works around: the checkpoint's hyperparameters win over the command line.

    With the autoload switched off and no ``SmartiesTiledPredict`` named, the package keeps nothing."""
    monkeypatch.setenv("SMARTIES_TERRATORCH_AUTOLOAD", "0")
    ckpt, config = seg_checkpoint
    extra = ["--model.init_args.tiled_inference_parameters", json.dumps(TILES)]
    cli, calls = _predict(ckpt, config, tmp_path / "pred", monkeypatch, extra)
    assert calls == [] and cli.model.tiled_inference_parameters is None


@pytest.mark.parametrize("how", ["zero lines", "command line", "callback argument"])
def test_predict_time_tiling_is_applied(seg_checkpoint, tmp_path: Path, monkeypatch, how: str) -> None:
    ckpt, config = seg_checkpoint
    if how == "zero lines":  # the autoload is on: the user only asks for the tiling
        extra = ["--model.init_args.tiled_inference_parameters", json.dumps(TILES)]
    elif how == "command line":  # as documented for the autoload switched off
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


def test_predict_time_tiling_with_the_autoload_off_and_the_callback_named(
    seg_checkpoint, tmp_path: Path, monkeypatch
) -> None:
    """Naming the callback (no arguments) is what keeps the command's tiling when the entry point adds nothing."""
    monkeypatch.setenv("SMARTIES_TERRATORCH_AUTOLOAD", "0")
    ckpt, config = seg_checkpoint
    extra = [
        "--model.init_args.tiled_inference_parameters", json.dumps(TILES),
        "--trainer.callbacks+=smarties_terratorch.backbone.SmartiesTiledPredict",
    ]  # fmt: skip
    cli, calls = _predict(ckpt, config, tmp_path / "pred", monkeypatch, extra)
    assert cli.model.tiled_inference_parameters == TILES and calls


def test_lightning_callbacks_factory_gives_the_binding_and_band_callbacks() -> None:
    """The predict-time tiling needs no callback from the entry point (the CLI keeps the request)."""
    from smarties_terratorch.backbone import BindClsTokenNorms, CheckBands, lightning_callbacks

    binder, bands = lightning_callbacks()  # binds SmartiesClsToken necks (tests/test_seams.py); checks bands
    assert isinstance(binder, BindClsTokenNorms) and isinstance(bands, CheckBands)


@pytest.mark.slow
def test_terratorch_predict_command_applies_the_tiling(seg_checkpoint, tmp_path: Path) -> None:
    """The documented command, in a subprocess: the requested tiling survives the checkpoint's hyperparameters."""
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


# ------------------------------------------------------------------------------------- normalisation in the model
# Typical HLS S30 surface reflectance x 10000 per band: (soil/vegetation, burned) means.
_DN_MEANS = np.array([[600, 900, 1100, 2800, 2400, 1600], [500, 700, 900, 1500, 2900, 2600]], dtype=np.float32)


def make_hls_dn(root: Path, n: int = 2, size: int = 224, splits: tuple[str, ...] = ("training", "validation")) -> Path:
    """Burn-scars layout with HLS-like reflectance **digital numbers** (uint16, 6 bands) and masks that follow the
    spectra (burned: low NIR, high SWIR), so a model can learn them in a few steps."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split in splits:
        for i in range(n):
            rng = _rng(1000 * len(split) + i)
            phase = rng.uniform(0, 2 * np.pi, 2)
            burned = (np.sin(6 * xx + phase[0]) * np.cos(5 * yy + phase[1]) > 0.2).astype(np.int16)
            mean = _DN_MEANS[burned].transpose(2, 0, 1)
            img = np.clip(mean * rng.normal(1.0, 0.15, (6, size, size)), 1, 10000).astype(np.uint16)
            _write(root / split / f"scene{i}_merged.tif", img)
            _write(root / split / f"scene{i}.mask.tif", burned[None])
    return root


GUIDE = REPO / "docs" / "guide" / "your-data.md"


def _guide_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), re.S)


def guide_config(epochs: int, lr: float) -> dict[str, Any]:
    """The complete config of ``docs/guide/your-data.md``, shrunk to a tiny model trained ``epochs`` epochs on CPU."""
    cfg = yaml.safe_load(next(b for b in _guide_blocks("yaml") if b.startswith("seed_everything")))
    args = cfg["model"]["init_args"]["model_args"]
    assert args["backbone_stats"] == "S2-L2A" and not any("transform" in k for k in cfg["data"]["init_args"])
    args = tiny_model_args(args)
    args.update(necks=[{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}],
                decoder="FCNDecoder")  # fmt: skip
    cfg["model"]["init_args"]["model_args"] = args
    cfg["trainer"].update(accelerator="cpu", max_epochs=epochs, logger=False, log_every_n_steps=1)
    cfg["data"]["init_args"].update(batch_size=2, num_workers=0)
    cfg["optimizer"]["init_args"]["lr"] = lr
    return cfg


def guide_commands() -> list[list[str]]:
    """The guide's ``terratorch fit`` / ``terratorch predict`` / ``smarties predict`` lines, as argv lists."""
    import shlex

    block = next(b for b in _guide_blocks("bash") if "terratorch fit -c my_config.yaml" in b)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _user_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subprocess_run: bool, epochs: int, lr: float, n: int
) -> dict[str, Any]:
    """The guide's steps, as a user runs them in a folder of 6-band HLS-like GeoTIFFs in reflectance digital
    numbers: its config, ``terratorch fit``, ``terratorch predict`` and ``smarties predict`` (no normalisation or
    band flags); returns the share of pixels on which both predictions agree and the class shares."""
    import subprocess

    monkeypatch.chdir(tmp_path)
    make_hls_dn(tmp_path / "my_data", n=n)
    make_hls_dn(tmp_path / "my_data", n=2, splits=("scenes",))
    Path("my_config.yaml").write_text(yaml.safe_dump(guide_config(epochs, lr)))
    commands = guide_commands()
    assert [c[:2] for c in commands] == [["terratorch", "fit"], ["terratorch", "predict"], ["smarties", "predict"]]
    assert not any(flag in c for c in commands for flag in ("--stats", "--bands"))
    for cmd in commands:
        if subprocess_run:
            smarties = str(Path(sys.executable).with_name("smarties"))
            exe = [sys.executable, "-m", "terratorch"] if cmd[0] == "terratorch" else [smarties]
            run = subprocess.run([*exe, *cmd[1:]], capture_output=True, text=True, timeout=1200)
            assert run.returncode == 0, run.stderr[-3000:]
        elif cmd[0] == "terratorch":
            from terratorch.cli_tools import build_lightning_cli

            build_lightning_cli(cmd[1:])
        else:
            from smarties_terratorch import cli

            assert cli.main(cmd[1:]) == 0
    hparams = torch.load("run/checkpoints/best.ckpt", map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hparams["model_args"]["backbone_stats"] == "S2-L2A"  # the statistics travel with the checkpoint
    agree, total, counts = 0, 0, np.zeros(2, np.int64)
    for scene in sorted(Path("my_data/scenes").glob("*_merged.tif")):
        with rasterio.open(Path("predictions") / f"{scene.stem}_pred.tif") as a, rasterio.open(
            next(Path("smarties_predictions").glob(f"{scene.stem}*.tif"))
        ) as b:
            theirs, mine = a.read(1).astype(np.int64), b.read(1).astype(np.int64)
        agree += int((theirs == mine).sum())
        total += theirs.size
        counts += np.bincount(mine.ravel(), minlength=2)[:2]
    return {"agree": agree / total, "pixels": total, "class_share": (counts / counts.sum()).tolist()}


def _report(result: dict[str, Any]) -> None:
    print(f"terratorch predict vs smarties predict: {100 * result['agree']:.3f} % of {result['pixels']} pixels agree;"
          f" class shares {[round(c, 3) for c in result['class_share']]}")  # fmt: skip
    assert min(result["class_share"]) > 0.05  # both classes predicted: the agreement is not trivial
    assert result["agree"] >= 0.99


@pytest.mark.slow  # ~70 s on a busy 2-core machine; tests/test_scene.py::test_predict_uses_the_checkpoints_statistics
# is the fast check of the same seam (a checkpoint with backbone_stats, smarties predict with no flags)
def test_user_run_in_model_normalisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the guide's config fit for one step at a negligible learning rate (an untrained, non-degenerate
    model), then both predict commands on raw digital numbers agree; no transform to forget."""
    _report(_user_run(tmp_path, monkeypatch, subprocess_run=False, epochs=1, lr=1e-9, n=2))


@pytest.mark.slow
def test_user_run_in_model_normalisation_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's commands as a user types them (``terratorch fit/predict``, ``smarties predict``, subprocesses),
    with a model trained for 8 epochs that has learned the two classes."""
    _report(_user_run(tmp_path, monkeypatch, subprocess_run=True, epochs=8, lr=1e-3, n=4))


def test_terratorch_predict_uses_the_test_transform(tmp_path: Path) -> None:
    """What the guide warns about: TerraTorch's generic data module builds the predict set with test_transform."""
    from terratorch.datamodules import GenericNonGeoSegmentationDataModule

    root = make_hls_dn(tmp_path / "my_data", n=1, size=32, splits=("scenes",))
    t = SmartiesAlbumentationsNormalize("S2-L2A", bands=HLS_NAMES)
    dm = GenericNonGeoSegmentationDataModule(
        batch_size=1, num_workers=0, num_classes=2, train_data_root=root / "scenes", val_data_root=root / "scenes",
        test_data_root=root / "scenes", predict_data_root=root / "scenes", img_grep="*_merged.tif",
        label_grep="*.mask.tif", test_transform=[t, _to_tensor()],
    )  # fmt: skip
    dm.setup("predict")
    image = dm.predict_dataset[0]["image"]
    raw = torch.from_numpy(read_raster(root / "scenes" / "scene0_merged.tif"))
    assert torch.allclose(image, SmartiesNormalize.from_spec("S2-L2A", HLS6)(raw), atol=1e-6)


def test_stats_command_checks_band_names_first(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path / "a.tif", _rng(3).uniform(0, 255, (3, 8, 8)).astype(np.float32))
    assert stats_cli.main([str(path), "--bands", "BLUE", "NIRR", "RED", "--out", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Unknown band 'NIRR'" in err and "NIR_BROAD" in err and err.count("\n") == 1
    # bare RGB names need the sensor, which the file then records (the rows are found in its vocabulary)
    out = tmp_path / "rgb.yaml"
    assert stats_cli.main([str(path), "--bands", "R", "G", "B", "--sensor", "RGB", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["sensor"] == "RGB"
    assert SmartiesNormalize.from_spec(out, ["RGB:B", "RED"]).bands == ("B", "R")


def test_guide_python_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "In plain PyTorch" block of the guide, with a ``stats.yaml`` of three bands in the working directory."""
    block = next(b for b in _guide_blocks("python") if "stats=" in b)
    monkeypatch.chdir(tmp_path)
    s2 = SmartiesNormalize.from_spec("S2-L2A", ["B04", "B03", "B02"])
    Path("stats.yaml").write_text(yaml.safe_dump({"bands": ["B04", "B03", "B02"], "mean": s2.mean.tolist(),
                                                  "std": s2.std.tolist(), "p1": s2.p1.tolist(), "p99": s2.p99.tolist()}))  # fmt: skip
    scope: dict[str, Any] = {"raw": torch.rand(2, 3, 32, 32) * 3000}
    exec(compile(block, str(GUIDE), "exec"), scope)  # noqa: S102 (our own documentation)
    assert scope["x"].shape == (2, 3, 32, 32)
    assert torch.equal(scope["model"].input_norm(scope["raw"]), scope["x"])  # the same statistics rows
