"""Segmentation configs (burn scars, DFC2020, SpaceNet7, DynamicEarthNet, SICKLE) and their data modules.

Every shipped segmentation config runs ``terratorch fit`` in-process (tiny backbone, ``fast_dev_run``) on tiny
fixtures written in the dataset's real on-disk layout by :mod:`smarties_terratorch.testing`. A callback checks that
probing configs really freeze the encoder (no encoder weight moves, the decoder does) and that the fine-tuning
config trains it. The rest tests the data modules: shapes, finite normalisation, nodata -> ignore, split rules, and
the bad-input cases of issue 3.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import yaml
from cli_utils import CONFIGS, run_config
from lightning.pytorch.callbacks import Callback

from smarties_terratorch.datamodules.burnscars import HLSBurnScarsDataModule, pangaea_train_val_split
from smarties_terratorch.datamodules.dfc2020 import DFC2020DataModule
from smarties_terratorch.datamodules.dynamicearthnet import DynamicEarthNetDataModule
from smarties_terratorch.normalization import compute_statistics
from smarties_terratorch.datamodules.sickle import SICKLEDataModule
from smarties_terratorch.datasets.sickle import acquisition_date
from smarties_terratorch.datamodules.spacenet7 import SpaceNet7DataModule
from smarties_terratorch.normalization import SmartiesNormalize

DATA = Path(__file__).parent / "data"
IGNORE = -1


def generator(name: str) -> Any:
    """The fixture generator module :mod:`smarties_terratorch.testing.<name>`."""
    return importlib.import_module(f"smarties_terratorch.testing.{name}")


@pytest.fixture(scope="session")
def burnscars_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator("burnscars").make(tmp_path_factory.mktemp("hls_burn_scars"))


@pytest.fixture(scope="session")
def dfc_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator("dfc2020").make(tmp_path_factory.mktemp("dfc2020"))


@pytest.fixture(scope="session")
def sn7_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator("spacenet7").make(tmp_path_factory.mktemp("spacenet7"))


@pytest.fixture(scope="session")
def den_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator("dynamicearthnet").make(tmp_path_factory.mktemp("dynamicearthnet"))


@pytest.fixture(scope="session")
def sickle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator("sickle").make(tmp_path_factory.mktemp("sickle"))


# --- every config runs -------------------------------------------------------------------------------------------


class FreezeProbe(Callback):
    """Records whether encoder / decoder weights changed during the (one-step) fit."""

    result: dict[str, Any] = {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        model = pl_module.model
        self.before = {
            part: {n: p.detach().clone() for n, p in getattr(model, part).named_parameters()}
            for part in ("encoder", "decoder")
        }
        FreezeProbe.result = {
            "encoder_trainable": any(p.requires_grad for p in model.encoder.parameters()),
        }

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        model = pl_module.model
        for part, before in self.before.items():
            now = dict(getattr(model, part).named_parameters())
            FreezeProbe.result[f"{part}_changed"] = any(not torch.equal(now[n], v) for n, v in before.items())


SMALL = {
    "data.init_args.batch_size": 2,
    "data.init_args.num_workers": 0,
    "model.init_args.model_args.decoder_channels": 32,
}
TILES_32 = {"model.init_args.tiled_inference_parameters": {"h_crop": 32, "w_crop": 32, "h_stride": 24, "w_stride": 24}}


def overrides_for(config: str, request: Any, tmp_path: Path, dfc: Path | None = None) -> dict[str, Any]:
    if config.startswith("burnscars"):
        root = request.getfixturevalue("burnscars_root")
        return {"data.init_args.root": str(root), "data.init_args.crop_size": 32, **TILES_32}
    if config.startswith("dfc2020"):
        path = dfc if dfc is not None else request.getfixturevalue("dfc_path")
        return {"data.init_args.path": str(path), "data.init_args.image_size": 32}
    if config == "spacenet7.yaml":
        return {
            "data.init_args.root": str(request.getfixturevalue("sn7_root")),
            "data.init_args.scene_size": 64,
            "data.init_args.tile_size": 32,
            "data.init_args.crop_size": 16,
            "model.init_args.tiled_inference_parameters": {"h_crop": 16, "w_crop": 16, "h_stride": 8, "w_stride": 8},
        }
    if config == "dynamicearthnet.yaml":
        return {
            "data.init_args.root": str(request.getfixturevalue("den_root")),
            "data.init_args.crop_size": 32,
            "data.init_args.statistics_file": str(tmp_path / "den_stats.yaml"),
            **TILES_32,
        }
    if config == "sickle.yaml":
        return {
            "data.init_args.root": str(request.getfixturevalue("sickle_root")),
            "data.init_args.image_size": 32,
            "data.init_args.statistics_file": str(tmp_path / "sickle_stats.yaml"),
        }
    raise AssertionError(f"no fixture for {config}")


SEGMENTATION_CONFIGS = [
    "burnscars.yaml",
    "burnscars_finetune.yaml",
    "dfc2020_upernet.yaml",
    "dfc2020_s1s2.yaml",
    "spacenet7.yaml",
    "dynamicearthnet.yaml",
    "sickle.yaml",
]


def with_probe(config: str) -> list[dict[str, Any]]:
    callbacks = yaml.safe_load((CONFIGS / config).read_text())["trainer"]["callbacks"]
    return [*callbacks, {"class_path": f"{__name__}.FreezeProbe"}]


@pytest.mark.parametrize("config", SEGMENTATION_CONFIGS)
def test_config_fits(config: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    overrides = {**SMALL, **overrides_for(config, request, tmp_path), "trainer.callbacks": with_probe(config)}
    cli = run_config(config, tmp_path, overrides)
    assert cli.trainer.state.finished
    metrics = cli.trainer.callback_metrics
    assert math.isfinite(float(metrics["train/loss"])) and math.isfinite(float(metrics["val/loss"]))
    assert 0.0 <= float(metrics["val/mIoU"]) <= 1.0
    probe = FreezeProbe.result
    assert probe["decoder_changed"], "the decoder must train"
    finetune = not yaml.safe_load((CONFIGS / config).read_text())["model"]["init_args"]["freeze_backbone"]
    assert probe["encoder_trainable"] == finetune
    assert probe["encoder_changed"] == finetune, "probing must leave every encoder weight untouched"


def test_dfc2020_authors_probe_config(dfc_path: Path, tmp_path: Path) -> None:
    """configs/dfc2020.yaml is the authors' DFC2020 probe: frozen encoder, S2 only, the last block's tokens -> one
    1x1 convolution, label smoothing 0.1, flips + rot90, their optimiser and schedule; it fits and only the head
    moves."""
    cfg = yaml.safe_load((CONFIGS / "dfc2020.yaml").read_text())
    init, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    args = init["model_args"]
    assert init["freeze_backbone"] and init["label_smoothing"] == 0.1 and init["loss"] == "ce"
    assert [n["name"] for n in args["necks"]] == ["SelectIndices", "ReshapeTokensToImage"]
    assert args["necks"][0]["indices"] == [-1] and args["decoder"] == "IdentityDecoder"
    assert args["backbone_bands"] == data["output_bands"] and "VV" not in data["output_bands"]
    assert data["augment"] and data["rot90"] and data["batch_size"] == 1024
    assert cfg["optimizer"]["init_args"] == {"lr": 4.0e-3, "weight_decay": 0.0, "betas": [0.9, 0.95]}
    assert cfg["lr_scheduler"]["init_args"] == {"milestones": [60, 80], "gamma": 0.1}
    assert cfg["trainer"]["max_epochs"] == 100 and cfg["trainer"]["check_val_every_n_epoch"] == 1

    overrides = {
        "data.init_args.batch_size": 2,
        "data.init_args.num_workers": 0,
        **overrides_for("dfc2020.yaml", request=None, tmp_path=tmp_path, dfc=dfc_path),
        "trainer.callbacks": with_probe("dfc2020.yaml"),
    }
    cli = run_config("dfc2020.yaml", tmp_path, overrides)
    assert cli.trainer.state.finished and 0.0 <= float(cli.trainer.callback_metrics["val/mIoU"]) <= 1.0
    assert cli.model.criterion.label_smoothing == 0.1
    head = [m for m in cli.model.model.head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(head) == 1 and head[0].kernel_size == (1, 1)
    assert not FreezeProbe.result["encoder_trainable"] and not FreezeProbe.result["encoder_changed"]


def test_dfc2020_rot90_rotates_image_and_mask_together(dfc_path: Path) -> None:
    from smarties_terratorch.augmentation import RandomRot90

    dm = DFC2020DataModule(str(dfc_path), image_size=None, augment=True, rot90=True)
    dm.setup("fit")
    steps = dm.datasets["train"].transforms.transform.transforms
    assert isinstance(steps[-1], RandomRot90) and dm.datasets["val"].transforms is None
    flips_only = DFC2020DataModule(str(dfc_path), image_size=None, augment=True, rot90=False)
    flips_only.setup("fit")
    torch.manual_seed(0)
    seen = set()
    for _ in range(12):
        state = torch.get_rng_state()
        plain = flips_only.datasets["train"][0]  # the flips, drawn first
        torch.set_rng_state(state)
        rotated = dm.datasets["train"][0]  # the same flips, then the rotation
        k = next(k for k in range(4) if torch.equal(torch.rot90(plain["mask"], k, (-2, -1)), rotated["mask"]))
        assert torch.equal(torch.rot90(plain["image"], k, (-2, -1)), rotated["image"])
        seen.add(k)
    assert len(seen) > 1


def test_configs_shared_conventions() -> None:
    for config in SEGMENTATION_CONFIGS:
        text = (CONFIGS / config).read_text()
        cfg = yaml.safe_load(text)
        assert "smarties_terratorch.backbone." not in text  # registration is the startup hook's job, not a config line
        args = cfg["model"]["init_args"]["model_args"]
        assert args["backbone"] == "smarties_vit_base_patch16" and "backbone_ckpt_path" in args
        necks = [n["name"] for n in args["necks"] if n["name"] != "TemporalLTAE"]  # DynamicEarthNet's date fusion
        assert necks == ["SelectIndices", "ReshapeTokensToImage", "LearnedInterpolateToPyramidal"]
        assert args["necks"][0]["indices"] == [3, 5, 7, 11]
        assert args["decoder"] == "UperNetDecoder" and args["decoder_channels"] == 512
        assert cfg["model"]["init_args"]["ignore_index"] == IGNORE
        assert cfg["optimizer"]["init_args"] == {"lr": 1.0e-4, "weight_decay": 0.05, "betas": [0.9, 0.999]}
        assert cfg["lr_scheduler"]["init_args"]["milestones"] == [48, 72] and cfg["trainer"]["max_epochs"] == 80
        assert cfg["data"]["init_args"]["batch_size"] == 8


def test_burnscars_test_subcommand(burnscars_root: Path, tmp_path: Path) -> None:
    overrides = {**SMALL, **TILES_32, "data.init_args.root": str(burnscars_root)}
    cli = run_config("burnscars.yaml", tmp_path, overrides, "test")
    assert "test/mIoU" in cli.trainer.callback_metrics


def test_unknown_backbone_band_is_reported(burnscars_root: Path, tmp_path: Path) -> None:
    overrides = {**SMALL, **TILES_32, "data.init_args.root": str(burnscars_root), "data.init_args.crop_size": 32}
    overrides["model.init_args.model_args.backbone_bands"] = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_3"]
    with pytest.raises(ValueError, match="SWIR_3"):
        run_config("burnscars.yaml", tmp_path, overrides)


# --- HLS burn scars ----------------------------------------------------------------------------------------------


def test_burnscars_samples(burnscars_root: Path) -> None:
    dm = HLSBurnScarsDataModule(str(burnscars_root), protocol="terratorch", crop_size=None, batch_size=2)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4 and len(dm.datasets["val"]) == 2
    sample = dm.datasets["train"][0]  # T10SEH: fill values in [:4, :4], NaN at (10, 10), label -1 in [-4:, -4:]
    image, mask = sample["image"], sample["mask"]
    assert image.shape == (6, 64, 64) and image.dtype == torch.float32 and mask.dtype == torch.int64
    assert torch.isfinite(image).all()
    assert (mask[:4, :4] == IGNORE).all() and mask[10, 10] == IGNORE and (mask[-4:, -4:] == IGNORE).all()
    assert set(mask.unique().tolist()) <= {IGNORE, 0, 1}
    assert (image[:, :4, :4] == 0).all()  # nodata -> band mean after normalisation
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 6, 64, 64) and batch["mask"].shape == (2, 64, 64)


def test_burnscars_normalisation_uses_s2_stats_after_scaling(burnscars_root: Path) -> None:
    dm = HLSBurnScarsDataModule(str(burnscars_root), crop_size=None)
    norm = dm.normalizer()
    expected = SmartiesNormalize.from_spec("S2-L2A", ["B02", "B03", "B04", "B8A", "B11", "B12"])
    assert torch.equal(norm.p99, expected.p99) and dm.scale == 10000.0
    raw, _ = dm.load(dm.items("train")[0])
    x = torch.from_numpy(np.nan_to_num(raw[:, 20:30, 20:30] * 10000.0))
    assert torch.allclose(norm(x), expected(x))


def test_burnscars_pangaea_split(burnscars_root: Path) -> None:
    dm = HLSBurnScarsDataModule(str(burnscars_root))
    train, val, test = dm.items("train"), dm.items("val"), dm.items("test")
    assert len(train) == 3 and len(val) == 1 and len(test) == 2
    assert not {p for p, _ in train} & {p for p, _ in val}
    assert all(p.parent.name == "validation" for p, _ in test)
    assert dm.crop_size == 224


def test_pangaea_split_matches_sklearn() -> None:
    model_selection = pytest.importorskip("sklearn.model_selection")
    for n in (4, 10, 541):
        sk_train, sk_val = model_selection.train_test_split(np.arange(n), test_size=0.1, random_state=23)
        train, val = pangaea_train_val_split(n)
        assert train == sk_train.tolist() and val == sk_val.tolist()


def test_burnscars_random_crop(burnscars_root: Path) -> None:
    dm = HLSBurnScarsDataModule(str(burnscars_root), crop_size=32)
    dm.setup("fit")
    assert dm.datasets["train"][0]["image"].shape == (6, 32, 32)
    assert dm.datasets["val"][0]["image"].shape == (6, 64, 64)  # evaluation sees whole scenes


def test_burnscars_band_subset(burnscars_root: Path) -> None:
    dm = HLSBurnScarsDataModule(str(burnscars_root), output_bands=["RED", "NIR_NARROW"], crop_size=None)
    dm.setup("fit")
    assert dm.datasets["train"][0]["image"].shape == (2, 64, 64)
    assert dm.default_statistics_bands() == ["B04", "B8A"]


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_burnscars_band_count_mismatch(burnscars_root: Path) -> None:
    five = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1"]
    dm = HLSBurnScarsDataModule(str(burnscars_root), bands=five, crop_size=None)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"_merged\.tif: 6 bands in the file but 5 band names"):
        dm.datasets["train"][0]


def test_burnscars_no_files(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "notes.txt").write_text("x")
    dm = HLSBurnScarsDataModule(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no files matching '\*_merged\.tif' in .*training"):
        dm.setup("fit")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HLSBurnScarsDataModule(str(tmp_path / "missing")).setup("fit")


def test_burnscars_image_mask_mismatch(burnscars_root: Path, tmp_path: Path) -> None:
    root = copy_tree(burnscars_root, tmp_path / "copy")
    mask = sorted((root / "training").glob("*.mask.tif"))[1]
    mask.unlink()
    with pytest.raises(ValueError, match=r"do not pair up by name.*" + mask.name.replace(".mask.tif", "_merged")):
        HLSBurnScarsDataModule(str(root)).setup("fit")


def test_burnscars_bad_mask_values(burnscars_root: Path, tmp_path: Path) -> None:
    root = copy_tree(burnscars_root, tmp_path / "copy")
    mask = sorted((root / "validation").glob("*.mask.tif"))[0]
    with rasterio.open(mask, "r+") as dst:
        data = dst.read()
        data[:, 0, 0] = 255
        dst.write(data)
    dm = HLSBurnScarsDataModule(str(root), protocol="terratorch", crop_size=None)
    dm.setup("fit")
    image_name = mask.name.replace(".mask.tif", "_merged.tif")
    with pytest.raises(ValueError, match=re.escape(image_name) + r": mask values \[255\]"):
        dm.datasets["val"][0]


def test_statistics_length_mismatch(burnscars_root: Path) -> None:
    stats = {"mean": [0.5] * 5, "std": [0.2] * 5, "p1": [0.0] * 5, "p99": [1.0] * 5}
    match = r"HLSBurnScarsDataModule: .*5 values per statistic but the data has 6 channels"
    with pytest.raises(ValueError, match=match):
        HLSBurnScarsDataModule(str(burnscars_root), statistics=stats, scale=1.0).setup("fit")


# --- statistics --------------------------------------------------------------------------------------------------


def test_compute_statistics_two_step_rule() -> None:
    rng = np.random.default_rng(0)
    images = [rng.normal([[[10.0]], [[500.0]]], [[[2.0]], [[50.0]]], (2, 16, 16)) for _ in range(4)]
    images[0][1, 0, 0] = np.nan  # excluded
    stats = compute_statistics(images, max_pixels_per_image=10_000)
    x = np.concatenate([im.reshape(2, -1) for im in images], axis=1)
    x = x[:, np.isfinite(x).all(axis=0)]
    p1, p99 = np.percentile(x, [1, 99], axis=1)
    np.testing.assert_allclose(stats["p1"], p1)
    np.testing.assert_allclose(stats["p99"], p99)
    y = np.clip((x - p1[:, None]) / (p99 - p1)[:, None], 0, 1)
    np.testing.assert_allclose(stats["mean"], y.mean(axis=1))
    np.testing.assert_allclose(stats["std"], y.std(axis=1))
    with pytest.raises(ValueError, match="B are constant"):
        compute_statistics([np.stack([rng.random((4, 4)), np.ones((4, 4))])], band_names=["A", "B"])
    with pytest.raises(ValueError, match="no valid"):
        compute_statistics([np.full((2, 3, 3), np.nan)])


def test_statistics_file_cache(burnscars_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "stats.yaml"
    dm = HLSBurnScarsDataModule(str(burnscars_root), statistics="compute", scale=1.0, statistics_file=str(path))
    first = dm.normalizer()
    stats = yaml.safe_load(path.read_text())
    assert len(stats["p99"]) == 6 and all(0 < m < 1 for m in stats["mean"])
    stats["p99"] = [v * 2 for v in stats["p99"]]
    path.write_text(yaml.safe_dump(stats))
    again = HLSBurnScarsDataModule(str(burnscars_root), statistics="compute", scale=1.0, statistics_file=str(path))
    assert torch.allclose(again.normalizer().p99, first.p99 * 2)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.yaml"]  # written atomically: no temporary file left
    # the same file given directly as statistics (what `smarties stats` writes) gives the same normaliser
    direct = HLSBurnScarsDataModule(str(burnscars_root), statistics=str(path), scale=1.0).normalizer()
    assert torch.equal(direct.p99, again.normalizer().p99) and torch.equal(direct.mean, again.normalizer().mean)


# --- DFC2020 -----------------------------------------------------------------------------------------------------


def test_dfc2020_samples(dfc_path: Path) -> None:
    dm = DFC2020DataModule(str(dfc_path), image_size=None)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4 and len(dm.datasets["val"]) == 2 and len(dm.items("test")) == 2
    sample = dm.datasets["val"][0]
    assert sample["image"].shape == (12, 32, 32) and torch.isfinite(sample["image"]).all()
    assert (sample["mask"][:3, :3] == IGNORE).all() and sample["mask"].max() <= 7
    assert dm.output_bands[-1] == "B12"


def test_dfc2020_modalities_and_resize(dfc_path: Path) -> None:
    dm = DFC2020DataModule(str(dfc_path), modalities={"S2": ["B02", "B03", "B04"], "S1": ["VV", "VH"]}, image_size=48)
    dm.setup("fit")
    sample = dm.datasets["train"][0]
    assert set(sample["image"]) == {"S2", "S1"}
    assert sample["image"]["S2"].shape == (3, 48, 48) and sample["image"]["S1"].shape == (2, 48, 48)
    assert sample["mask"].shape == (48, 48)
    assert dm.normalizer().num_channels == 5


def test_dfc2020_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "DFC_preprocessed.pt"
    torch.save({"train_images": torch.zeros(2, 13, 8, 8), "train_labels": torch.zeros(2, 8, 8),
                "validation_images": torch.zeros(1, 13, 8, 8), "validation_labels": torch.zeros(1, 8, 8)}, path)
    with pytest.raises(ValueError, match=r"train_images has shape \(2, 13, 8, 8\)"):
        DFC2020DataModule(str(path)).setup("fit")
    torch.save({"train_images": torch.zeros(2, 14, 8, 8)}, path)
    with pytest.raises(KeyError, match="lacks"):
        DFC2020DataModule(str(path)).setup("fit")
    with pytest.raises(FileNotFoundError, match="CROMA"):
        DFC2020DataModule(str(tmp_path / "nope.pt")).setup("fit")


# --- SpaceNet7 ---------------------------------------------------------------------------------------------------


def test_spacenet7_items_and_samples(sn7_root: Path) -> None:
    dm = SpaceNet7DataModule(str(sn7_root), scene_size=64, tile_size=32, crop_size=None)
    # One AOI per split, one usable month each (masked and unlabelled months skipped), 2 x 2 tiles.
    assert [len(dm.items(s)) for s in ("train", "val", "test")] == [4, 4, 4]
    assert {i[0] for i in dm.items("val")} == {"L15-0357E-1223N_1429_3296_13"}
    assert all((year, month) == (2018, 1) for _, year, month, _, _ in dm.items("train"))
    dm.setup("fit")
    sample = dm.datasets["train"][0]  # tile (0, 0) of the train AOI: alpha 0 in [:8, :8]
    assert sample["image"].shape == (3, 32, 32) and torch.isfinite(sample["image"]).all()
    assert (sample["mask"][:8, :8] == IGNORE).all() and set(sample["mask"].unique().tolist()) <= {IGNORE, 0, 1}
    within = SpaceNet7DataModule(str(sn7_root), split_mode="within_scene", scene_size=64, tile_size=32,
                                 i_split=32, j_split=32)
    assert [len(within.items(s)) for s in ("train", "val", "test")] == [6, 3, 3]


def test_spacenet7_missing_aois(sn7_root: Path) -> None:
    aois = {"train": ["L15-9999E-9999N_0000_0000_13"]}
    dm = SpaceNet7DataModule(str(sn7_root), aois=aois, scene_size=64, tile_size=32)
    with pytest.raises(FileNotFoundError, match="none of the 1 AOIs"):
        dm.items("train")


# --- DynamicEarthNet ---------------------------------------------------------------------------------------------


def test_dynamicearthnet_samples(den_root: Path, tmp_path: Path) -> None:
    dm = DynamicEarthNetDataModule(str(den_root), crop_size=None, statistics_file=str(tmp_path / "s.yaml"))
    assert [len(dm.items(s)) for s in ("train", "val", "test")] == [3, 1, 1]
    images, label = dm.items("train")[0]
    assert images[0].parts[-6:] == ("planet", "10N", "26E-183N", "1330_3107_13", "PF-SR", "2018-01-01.tif")
    raw, mask = dm.load(dm.items("train")[0])
    assert raw.shape == (4, 6, 64, 64)
    with rasterio.open(images[2]) as src:  # channel order = file order (B, G, R, NIR)
        np.testing.assert_array_equal(raw[:, 2], src.read().astype(np.float32))
    with rasterio.open(label) as src:
        onehot = src.read()
    assert (mask[onehot[6] == 255] == IGNORE).all() and (mask[:4, :4] == IGNORE).all()
    for k in range(6):
        assert (mask[onehot[k] == 255] == k).all()
    dm.setup("fit")
    sample = dm.datasets["val"][0]
    assert sample["image"].shape == (4, 6, 64, 64) and torch.isfinite(sample["image"]).all()
    impervious = DynamicEarthNetDataModule(str(den_root), unlabelled_as_impervious=True)
    assert (impervious.load(impervious.items("train")[0])[1][:4, :4] == 0).all()


def test_dynamicearthnet_single_date(den_root: Path) -> None:
    dm = DynamicEarthNetDataModule(str(den_root), temporal=False, crop_size=24, statistics="S2-L2A",
                                   statistics_bands=["B02", "B03", "B04", "B08"])
    dm.setup("fit")
    assert dm.datasets["train"][0]["image"].shape == (4, 24, 24)


def test_dynamicearthnet_bad_input(den_root: Path, tmp_path: Path) -> None:
    root = copy_tree(den_root, tmp_path / "copy")
    split = root / "dynnet_training_splits" / "val.txt"
    line = split.read_text().split()
    split.write_text(" ".join(line[:2]) + "\n")
    with pytest.raises(ValueError, match=r"val\.txt line 1: expected"):
        DynamicEarthNetDataModule(str(root)).items("val")
    test_txt = root / "dynnet_training_splits" / "test.txt"
    planet = Path(test_txt.read_text().split()[0].replace("/reprocess-cropped/UTM-24000/", "planet/"))
    next((root / planet).glob("*-10.tif")).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing .*-10\.tif"):
        DynamicEarthNetDataModule(str(root)).items("test")
    with pytest.raises(FileNotFoundError, match="train.txt"):
        DynamicEarthNetDataModule(str(tmp_path / "empty")).items("train")


# --- SICKLE ------------------------------------------------------------------------------------------------------


def test_sickle_acquisition_and_mask(sickle_root: Path) -> None:
    dm = SICKLEDataModule(str(sickle_root), statistics="compute", image_size=None)
    uid, files, plots = dm.items("train")[0]
    assert uid == "1" and plots == frozenset({101, 102, 103})
    assert [f.name for f in files][0] == "LC08_142051_20180610.npz"  # out-of-season 2017 file dropped
    image, mask = dm.load((uid, files, plots))
    # Valid acquisitions: 0610, 0712, 0813 (0701 is 60 % fill, 0720 lacks ST_B10): the middle one is 0712.
    with np.load(sickle_root / "images" / "L8" / "npy" / "1" / "LC08_142051_20180712.npz") as npz:
        np.testing.assert_array_equal(image[0], npz["SR_B1"].astype(np.float32))
    assert image.shape == (8, 11, 11) and mask.shape == (32, 32)
    assert (mask[:4] == IGNORE).all()  # outside plots
    assert (mask[20:28, 20:28] == IGNORE).all()  # plot 201 belongs to the val split
    assert set(np.unique(mask[4:20, 4:20]).tolist()) <= {0, 1}
    first = SICKLEDataModule(str(sickle_root), acquisition="first", image_size=None)
    assert first.load(first.items("train")[0])[0][0, 0, 0] == np.load(files[0])["SR_B1"][0, 0]


def test_sickle_splits_and_samples(sickle_root: Path, tmp_path: Path) -> None:
    dm = SICKLEDataModule(str(sickle_root), image_size=40, statistics_file=str(tmp_path / "s.yaml"))
    assert [len(dm.items(s)) for s in ("train", "val", "test")] == [3, 2, 2]  # test reads val (no public labels)
    dm.setup("fit")
    sample = dm.datasets["val"][1]
    assert sample["image"].shape == (8, 40, 40) and sample["mask"].shape == (40, 40)
    assert torch.isfinite(sample["image"]).all()
    assert acquisition_date("S1A_IW_GRDH_1SDV_20180105T001122_x.npz").isoformat() == "2018-01-05"
    assert acquisition_date("20180105T050211_20180105T050728_T44PLT.npz").isoformat() == "2018-01-05"


def test_sickle_bad_input(sickle_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sickle_dataset_tabular.csv"):
        SICKLEDataModule(str(tmp_path)).items("train")
    root = copy_tree(sickle_root, tmp_path / "copy")
    (root / "masks" / "10m" / "2.tif").unlink()
    with pytest.raises(FileNotFoundError, match=r"sample 2 has no mask"):
        SICKLEDataModule(str(root)).items("train")
    with pytest.raises(ValueError, match="SPLIT == 'holdout'"):
        SICKLEDataModule(str(sickle_root), test_split="holdout").items("test")


# --- fixtures and full-size models --------------------------------------------------------------------------------


def test_fixtures_match_real_layouts(burnscars_root: Path, sn7_root: Path, den_root: Path, sickle_root: Path) -> None:
    def info(path: Path) -> tuple[int, str]:
        with rasterio.open(path) as src:
            return src.count, src.dtypes[0]

    image = next((burnscars_root / "training").glob("subsetted_512x512_HLS.S30.T*.v1.4_merged.tif"))
    assert info(image) == (6, "float32")
    assert info(image.with_name(image.name.replace("_merged", ".mask"))) == (1, "int16")
    aoi_id = "L15-0331E-1257N_1327_3160_13"
    aoi = sn7_root / "train" / aoi_id
    assert info(aoi / "images_masked" / f"global_monthly_2018_01_mosaic_{aoi_id}.tif") == (4, "uint8")
    assert (aoi / "labels_raster" / f"global_monthly_2018_01_mosaic_{aoi_id}_Buildings.tif").is_file()
    assert info(next(den_root.glob("planet/*/*/*/PF-SR/2018-01-01.tif"))) == (4, "int16")
    assert info(next(den_root.glob("labels/*/Labels/Raster/*/*-2018_01_01.tif"))) == (7, "uint8")
    with np.load(next((sickle_root / "images" / "L8" / "npy" / "1").glob("LC08_*.npz"))) as npz:
        assert npz.files == ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10"]
    assert info(sickle_root / "masks" / "10m" / "1.tif") == (6, "int16")


@pytest.mark.slow
@pytest.mark.parametrize("config", ["burnscars.yaml", "dfc2020_s1s2.yaml", "dynamicearthnet.yaml", "sickle.yaml"])
def test_full_size_model_builds(config: str) -> None:
    """The shipped model_args (ViT-B, blocks [3, 5, 7, 11], UPerNet 512) build and run on a 224 x 224 input."""
    from terratorch.models import EncoderDecoderFactory

    args = dict(yaml.safe_load((CONFIGS / config).read_text())["model"]["init_args"]["model_args"])
    args.pop("backbone_ckpt_path")
    num_classes = args.pop("num_classes")
    model = EncoderDecoderFactory().build_model("segmentation", num_classes=num_classes, **args).eval()
    x: Any
    if "backbone_modality_bands" in args:
        x = {m: torch.randn(1, len(b), 224, 224) for m, b in args["backbone_modality_bands"].items()}
    elif args.get("backbone_use_temporal"):
        x = torch.randn(1, len(args["backbone_bands"]), 2, 224, 224)
    else:
        x = torch.randn(1, len(args["backbone_bands"]), 224, 224)
    with torch.no_grad():
        assert model(x).output.shape == (1, num_classes, 224, 224)


def test_dfc2020_numpy_pickle_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "DFC_preprocessed.pt"
    arrays = {f"{k}_images": np.zeros((2, 14, 8, 8), np.float32) for k in ("train", "validation")}
    arrays.update({f"{k}_labels": np.zeros((2, 8, 8), np.int64) for k in ("train", "validation")})
    torch.save(arrays, path)
    with pytest.raises(ValueError, match="trust_pickle"):
        DFC2020DataModule(str(path)).items("train")
    assert len(DFC2020DataModule(str(path), trust_pickle=True).items("train")) == 2
