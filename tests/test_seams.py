"""The smaller seams: output modes follow the umask, shipped configs reachable from a pip install, bench paths
resolved at parsing, ``SmartiesClsToken`` with TerraTorch's own ``ClassificationTask``, the loaded-weights log line,
a viewable PCA preview."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from smarties_terratorch import cli
from smarties_terratorch.bench.cli import parser as bench_parser
from smarties_terratorch.bench.config import HUB
from smarties_terratorch.io import write_text
from smarties_terratorch.scene.preview import pca_preview, preview_scale
from smarties_terratorch.tasks.pretrain import shipped_config_argv

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_honour_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        out = write_text(tmp_path / "out.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_replace_keeps_the_existing_mode(tmp_path: Path) -> None:
    out = write_text(tmp_path / "out.txt", "x")
    out.chmod(0o640)
    write_text(out, "y")
    assert out.stat().st_mode & 0o777 == 0o640 and out.read_text() == "y"


def test_config_command_lists_prints_and_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"demo", "pretrain_demo", "eurosat_linprobe", "examples/own_data_segmentation"} <= set(names)
    assert cli.main(["config", "pretrain_demo"]) == 0
    assert capsys.readouterr().out == (REPO / "configs" / "pretrain_demo.yaml").read_text()
    out = tmp_path / "demo.yaml"
    assert cli.main(["config", "configs/demo.yaml", "-o", str(out)]) == 0  # the checkout spelling works too
    assert yaml.safe_load(out.read_text())["model"]
    assert cli.main(["config", "demo", "-o", str(out)]) == 2  # never overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["config", "eurosat_linprob"]) == 2
    assert "did you mean eurosat_linprobe" in capsys.readouterr().err


def test_pretrain_config_paths_fall_back_to_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = shipped_config_argv(["fit", "-c", "configs/pretrain_demo.yaml", "--trainer.max_epochs", "1"])
    assert Path(argv[2]).is_file() and Path(argv[2]).parent.name == "configs"
    assert argv[3:] == ["--trainer.max_epochs", "1"]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "pretrain_demo.yaml").write_text("{}")  # a file where it is named always wins
    assert shipped_config_argv(["fit", "-c", "configs/pretrain_demo.yaml"])[2] == "configs/pretrain_demo.yaml"
    assert shipped_config_argv(["fit", "-c", "mine.yaml"])[2] == "mine.yaml"


def test_bench_paths_are_absolute_after_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args, _ = bench_parser().parse_known_args(
        ["run", "--out", "bench_results", "--data-root", "d", "--weights", "w", "--table", "t.yaml"]
    )
    assert args.out == tmp_path / "bench_results" and args.data_root == tmp_path / "d"
    assert args.weights == tmp_path / "w" and args.table == tmp_path / "t.yaml"
    args, _ = bench_parser().parse_known_args(["run"])
    assert args.out == tmp_path / "bench_results" and args.data_root == tmp_path / "data"
    assert bench_parser().parse_known_args(["run", "--weights", "hub"])[0].weights == HUB
    args, _ = bench_parser().parse_known_args(["report", "--out", "a", "b"])
    assert args.out == [tmp_path / "a", tmp_path / "b"]


_CLASSIFICATION = """
import torch, lightning.pytorch as pl
from torch.utils.data import DataLoader
from terratorch.tasks import ClassificationTask
task = ClassificationTask(model_factory="EncoderDecoderFactory", model_args=dict(
    backbone="smarties_vit_tiny_patch16", backbone_bands=["BLUE", "GREEN", "RED"],
    necks=[{"name": "SmartiesClsToken"}], decoder="IdentityDecoder", num_classes=3))
data = [{"image": torch.randn(3, 32, 32), "label": torch.tensor(i % 3)} for i in range(4)]
trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)
trainer.fit(task, DataLoader(data, batch_size=2), DataLoader(data, batch_size=2))
neck = task.model.neck[0]
assert neck.__dict__["_norm"] is task.model.encoder.norm
print("ok", type(neck).__name__)
"""


def test_cls_token_neck_with_terratorch_classification_task() -> None:
    """A fresh process (nothing of the package imported but the startup hook): TerraTorch's own task finds the
    neck by name and the package's callback binds the backbone's final norm."""
    proc = subprocess.run([sys.executable, "-c", _CLASSIFICATION], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["ok", "SmartiesClsToken"]


def test_cls_token_bound_in_python() -> None:
    import torch
    from terratorch.models import EncoderDecoderFactory

    from smarties_terratorch.tasks.classification import bind_cls_token_norms

    model = EncoderDecoderFactory().build_model(
        task="classification", backbone="smarties_vit_tiny_patch16", backbone_bands=["BLUE", "GREEN", "RED"],
        necks=[{"name": "SmartiesClsToken"}], decoder="IdentityDecoder", num_classes=3,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="bind_cls_token_norms"):
        model(torch.randn(1, 3, 32, 32))
    assert bind_cls_token_norms(model) == 1
    assert model(torch.randn(1, 3, 32, 32)).output.shape == (1, 3)


def test_loaded_weights_confirmed_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from smarties_terratorch.models import smarties_vit_tiny_patch16
    from smarties_terratorch.fetch import file_sha256
    from smarties_terratorch.pretrained import save_weights

    path = save_weights(smarties_vit_tiny_patch16(), tmp_path / "w.safetensors")
    from terratorch.registry import BACKBONE_REGISTRY

    for build in (
        lambda: smarties_vit_tiny_patch16(ckpt_path=path),
        lambda: BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=["RED"], ckpt_path=str(path)),
    ):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="smarties_terratorch"):
            build()
        lines = [r.getMessage() for r in caplog.records if "loaded SMARTIES weights" in r.getMessage()]
        assert len(lines) == 1 and str(path) in lines[0] and file_sha256(path)[:16] in lines[0]


def test_info_lines_reach_the_console_of_an_unconfigured_program(tmp_path: Path) -> None:
    code = (
        "from smarties_terratorch.models import smarties_vit_tiny_patch16 as m\n"
        "from smarties_terratorch.pretrained import save_weights\n"
        f"save_weights(m(), {str(tmp_path / 'w.safetensors')!r}); m(ckpt_path={str(tmp_path / 'w.safetensors')!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("loaded SMARTIES weights from") == 1


def test_preview_png_is_upsampled_to_a_viewable_size(tmp_path: Path) -> None:
    feats = np.random.default_rng(0).normal(size=(8, 20, 30)).astype(np.float32)
    src = tmp_path / "f.tif"
    with rasterio.open(src, "w", driver="GTiff", height=20, width=30, count=8, dtype="float32", crs="EPSG:32632",
                       transform=from_origin(0, 0, 160, 160)) as dst:  # fmt: skip
        dst.write(feats)
    info = pca_preview(src, png=tmp_path / "p.png", tif=tmp_path / "p.tif")
    assert info["png_scale"] == 16 == preview_scale(20, 30)  # 30 * 16 = 480: capped at one pixel per scene pixel
    with rasterio.open(tmp_path / "p.png") as png, rasterio.open(tmp_path / "p.tif") as tif:
        assert png.shape == (320, 480) and tif.shape == (20, 30)  # the GeoTIFF stays one pixel per token
        small, big = tif.read(), png.read()
    assert np.array_equal(big[:, ::16, ::16], small)  # nearest: every token a 16 x 16 square of its colour
    assert preview_scale(100, 200) == 3 and preview_scale(600, 700) == 1


def test_folders_renamed_into_place_honour_the_umask(tmp_path: Path) -> None:
    from smarties_terratorch.io.writer import temp_dir

    old = os.umask(0o022)
    try:
        folder = temp_dir(tmp_path, ".x-")
    finally:
        os.umask(old)
    assert folder.is_dir() and folder.name.startswith(".x-") and folder.stat().st_mode & 0o777 == 0o755
