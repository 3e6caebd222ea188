"""Fault injection for the scene tools (``smarties embed`` / ``predict`` / ``export`` and their Python API).

Each case feeds one hostile or bad input and asserts the exception type or exit code, that the message names the
offending file or value, and that every input and earlier output is byte-identical afterwards. The last cases kill
a real ``smarties embed`` process mid-run (SIGKILL, SIGTERM, SIGINT).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from smarties_terratorch import cli
from smarties_terratorch.checkpoints import CheckpointError
from smarties_terratorch.io import OutputError, RasterReader
from smarties_terratorch.models.vit import smarties_vit_tiny_patch16
from smarties_terratorch.scene import EmptyOutputError, embed_scene, load_segmentation_task, predict_scene

from .conftest import ALIASES, alias_of, write_hostile_checkpoint

BANDS = ["B02", "B03", "B04", "B08"]
TINY = "smarties_vit_tiny_patch16"
TRANSFORM = from_origin(435730.0, 4179460.0, 10.0, 10.0)


def write_tif(path: Path, data: np.ndarray, transform=TRANSFORM, nodata: float | None = None) -> Path:
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": str(data.dtype), "crs": "EPSG:32618", "transform": transform, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_tif(tmp_path / "scene.tif", np.random.default_rng(0).uniform(0, 3000, (4, 48, 48)).astype(np.float32))


@pytest.fixture
def earlier(tmp_path: Path, scene: Path) -> Path:
    """An earlier, complete output that no failed run may touch."""
    out = tmp_path / "emb.tif"
    assert cli.main(_embed_args(scene, out)) == 0
    return out


def _embed_args(scene: Path | str, out: Path | str, *extra: str) -> list[str]:
    return ["embed", str(scene), "--bands", ",".join(BANDS), "--arch", TINY, "--tile-size", "32", "--overlap", "16",
            "--quiet", "--out", str(out), *extra]  # fmt: skip


def _fails(capsys: pytest.CaptureFixture, argv: list[str], *names: str, code: int = 2) -> str:
    """Run the CLI, expect ``code`` and a one-line error naming every string in ``names``; return stderr."""
    capsys.readouterr()
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    for name in names:
        assert str(name) in err, (name, err)
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("how", ALIASES)
def test_out_that_is_the_input_is_refused(tmp_path: Path, scene: Path, capsys, frozen, how: str) -> None:
    alias = alias_of(scene, how, tmp_path)
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, alias, "--overwrite"), alias, "is an input")


def test_existing_output_needs_overwrite(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen) -> None:
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--stats", "S2-L2A"), earlier, "--overwrite")


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--tile-size", "20"], ["--tile-size 20", "16"]),
        (["--overlap", "32"], ["--overlap 32"]),
        (["--batch-size", "0"], ["--batch-size 0"]),
        (["--min-valid", "1.5"], ["--min-valid 1.5"]),
        (["--threads", "0"], ["--threads 0"]),
        (["--resampling", "sinc-ish"], ["sinc-ish"]),
        (["--device", "tpu"], ["tpu"]),
        (["--arch", "smarties_vit_huge"], ["smarties_vit_huge"]),
        (["--shard", "0/2"], ["--shard"]),
        (["--preview", "jpg"], ["jpg"]),
    ],
)
def test_bad_argument_never_touches_the_earlier_output(
    tmp_path: Path, scene: Path, earlier: Path, capsys, frozen, extra: list[str], names: list[str]
) -> None:
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", *extra), *names)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen) -> None:
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--device", "cuda"), "'cuda'", "CUDA is not available")


def test_preview_onto_the_input_is_refused(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen) -> None:
    png = tmp_path / "scene.png"
    png.write_bytes(b"an earlier picture")
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--preview", str(scene)), str(scene), "is an input")
        _fails(capsys, _embed_args(scene, tmp_path / "new.tif", "--preview", str(png)), png, "--overwrite")


def test_disk_full_names_the_path_and_keeps_the_earlier_output(
    tmp_path: Path, scene: Path, earlier: Path, capsys, frozen, monkeypatch
) -> None:
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if Path(dst) == earlier:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--stats", "S2-L2A"), earlier, "no space left")
        with RasterReader(scene) as reader, pytest.raises(OutputError, match=str(earlier)):
            embed_scene(reader, smarties_vit_tiny_patch16(bands=BANDS), earlier, tile_size=32, overlap=16,
                        progress=False, overwrite=True)  # fmt: skip


def test_disk_full_while_writing_rasters(tmp_path: Path, scene: Path, earlier: Path, frozen, monkeypatch) -> None:
    # GDAL runs out of space in the middle of the file: the earlier output stays, no partial file remains.
    from rasterio.io import DatasetWriter

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DatasetWriter, "write", full)
    with frozen(tmp_path), RasterReader(scene) as reader, pytest.raises(OutputError, match=str(earlier)):
        embed_scene(reader, smarties_vit_tiny_patch16(bands=BANDS), earlier, tile_size=32, overlap=16,
                    progress=False, overwrite=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- inputs
def test_unreadable_raster(tmp_path: Path, earlier: Path, capsys, frozen) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 this is not a GeoTIFF")
    with frozen(tmp_path):
        _fails(capsys, _embed_args(bad, earlier, "--overwrite"), bad, "not a readable raster")


def test_missing_raster(tmp_path: Path, earlier: Path, capsys, frozen) -> None:
    with frozen(tmp_path):
        _fails(capsys, _embed_args(tmp_path / "nope.tif", earlier, "--overwrite"), "nope.tif", "not found")


def test_band_files_that_do_not_overlap(tmp_path: Path, earlier: Path, capsys, frozen) -> None:
    rng = np.random.default_rng(1)
    files = [write_tif(tmp_path / f"{b}.tif", rng.uniform(0, 3000, (1, 32, 32)).astype(np.float32)) for b in BANDS[:3]]
    far = write_tif(tmp_path / "B08.tif", rng.uniform(0, 3000, (1, 16, 16)).astype(np.float32),
                    transform=from_origin(935730.0, 4179460.0, 20.0, 20.0))  # fmt: skip
    argv = _embed_args(files[0], earlier, "--overwrite")
    argv[1:2] = [*map(str, files), str(far)]
    with frozen(tmp_path):
        _fails(capsys, argv, far, "does not overlap")


@pytest.mark.parametrize("content", ["mean: [0.5]\nstd: [0.2]\np1: [0]\np99: [1]\n", "{not: [valid", "[1, 2, 3]\n"])
def test_bad_statistics_file(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen, content: str) -> None:
    stats = tmp_path / "stats.yaml"
    stats.write_text(content)
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--stats", str(stats)), stats)


def test_unknown_statistics_table(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen) -> None:
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--stats", "S9-X"), "S9-X")


@pytest.mark.parametrize("case", ["all nodata", "min-valid too high"])
def test_empty_result_is_an_error_and_keeps_the_earlier_output(
    tmp_path: Path, earlier: Path, capsys, frozen, case: str
) -> None:
    data = np.random.default_rng(2).uniform(0, 3000, (4, 48, 48)).astype(np.float32)
    if case == "all nodata":
        data[:] = -9999.0
        extra = []
    else:
        data[:, :, ::8] = np.nan  # every token misses 2 of 16 columns
        extra = ["--min-valid", "0.95"]
    empty = write_tif(tmp_path / "empty.tif", data, nodata=-9999.0)
    with frozen(tmp_path):
        _fails(capsys, _embed_args(empty, earlier, "--overwrite", *extra), "empty.tif", "--allow-empty", str(earlier))
    with frozen(tmp_path), RasterReader(empty) as reader, pytest.raises(EmptyOutputError, match="empty.tif"):
        embed_scene(reader, smarties_vit_tiny_patch16(bands=BANDS), earlier, tile_size=32, overlap=16,
                    min_valid=0.95, progress=False, overwrite=True)  # fmt: skip


def test_hostile_weights_for_embed(tmp_path: Path, scene: Path, earlier: Path, capsys, frozen) -> None:
    marker = tmp_path / "PWNED_WEIGHTS"
    evil = write_hostile_checkpoint(tmp_path / "evil.pth", marker)
    with frozen(tmp_path):
        _fails(capsys, _embed_args(scene, earlier, "--overwrite", "--weights", str(evil)), evil)
    assert not marker.exists()


def test_catalogue_list_naming_a_missing_file(tmp_path: Path, scene: Path, capsys, frozen) -> None:
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"{scene}\nmissing_scene.tif\n")
    argv = ["embed", "--scenes", f"@{listing}", "--out-dir", str(tmp_path / "out"), "--bands", ",".join(BANDS),
            "--arch", TINY, "--quiet"]  # fmt: skip
    with frozen(tmp_path):
        _fails(capsys, argv, "scenes.txt, line 2", "missing_scene.tif")


# ---------------------------------------------------------------------------------------------------- predict
def _seg_checkpoint(path: Path) -> Path:
    import torch
    from terratorch.tasks import SemanticSegmentationTask

    import smarties_terratorch.backbone  # noqa: F401 - registers the backbones

    model_args = {"backbone": TINY, "backbone_bands": BANDS, "necks": [{"name": "SelectIndices", "indices": [0, 1]},
                  {"name": "ReshapeTokensToImage"}], "decoder": "FCNDecoder", "num_classes": 3}  # fmt: skip
    task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce")
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": {
        "_class_path": "terratorch.tasks.SemanticSegmentationTask", **task.hparams}}, path)  # fmt: skip
    return path


def _predict_args(scene: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", str(scene), "--checkpoint", str(ckpt), "--out", str(out), "--tile-size", "48", "--overlap",
            "0", "--quiet", "--stats", "none", *extra]  # fmt: skip


def test_hostile_checkpoint_is_refused_and_never_runs(tmp_path: Path, scene: Path, hostile, capsys, frozen) -> None:
    ckpt, marker = hostile
    out = tmp_path / "classes.tif"
    out.write_bytes(b"an earlier class map")
    with frozen(tmp_path):
        err = _fails(capsys, _predict_args(scene, ckpt, out, "--overwrite"), ckpt)
        assert "code" in err or "object" in err
        assert "weights_only=False" not in err
        with pytest.raises(CheckpointError, match="evil.ckpt"):
            load_segmentation_task(ckpt)
    assert not marker.exists()


def test_trust_checkpoint_is_the_only_way_in(tmp_path: Path, scene: Path, hostile, capsys) -> None:
    ckpt, marker = hostile
    cli.main(_predict_args(scene, ckpt, tmp_path / "classes.tif", "--trust-checkpoint"))
    assert marker.exists()  # the flag really unpickles (and so runs) what the file holds


def test_checkpoint_naming_a_foreign_task_class(tmp_path: Path, scene: Path, capsys, frozen) -> None:
    import torch

    ckpt = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "subprocess.Popen", "model_args": {"a": 1}}},
               ckpt)  # fmt: skip
    with frozen(tmp_path):
        _fails(capsys, _predict_args(scene, ckpt, tmp_path / "o.tif"), ckpt, "subprocess.Popen", "--trust-checkpoint")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"\x80\x04garbage"])
def test_corrupt_checkpoint(tmp_path: Path, scene: Path, capsys, frozen, content: bytes) -> None:
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(content)
    with frozen(tmp_path):
        _fails(capsys, _predict_args(scene, ckpt, tmp_path / "o.tif"), ckpt)


def test_predict_outputs_that_collide(tmp_path: Path, scene: Path, capsys, frozen) -> None:
    ckpt = _seg_checkpoint(tmp_path / "seg.ckpt")
    out = tmp_path / "o.tif"
    with frozen(tmp_path):
        _fails(capsys, _predict_args(scene, ckpt, out, "--probabilities", str(out)), out, "is an input")
        _fails(capsys, _predict_args(scene, ckpt, ckpt), ckpt, "is an input")
        _fails(capsys, _predict_args(scene, tmp_path / "none.ckpt", out), "none.ckpt", "not found")


def test_predict_all_nodata_keeps_earlier_outputs(tmp_path: Path, capsys, frozen) -> None:
    ckpt = _seg_checkpoint(tmp_path / "seg.ckpt")
    empty = write_tif(tmp_path / "empty.tif", np.full((4, 48, 48), np.nan, dtype=np.float32))
    out, probs = tmp_path / "o.tif", tmp_path / "p.tif"
    out.write_bytes(b"earlier classes")
    probs.write_bytes(b"earlier probabilities")
    with frozen(tmp_path):
        _fails(capsys, _predict_args(empty, ckpt, out, "--overwrite", "--probabilities", str(probs)), "empty.tif",
               "no valid pixel", "--allow-empty")  # fmt: skip
        task = load_segmentation_task(ckpt)
        with RasterReader(empty) as reader, pytest.raises(EmptyOutputError):
            predict_scene(reader, task, out, probabilities=probs, tile_size=48, overlap=0, progress=False,
                          overwrite=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- export
@pytest.mark.parametrize(
    ("extra", "names"),
    [(["--img-size", "16"], ["--img-size 16", "32"]), (["--max-size", "24"], ["--max-size 24"]),
     (["--img-size", "512", "--max-size", "256"], ["--img-size 512", "--max-size"])],
)  # fmt: skip
def test_export_sizes_too_small(tmp_path: Path, capsys, frozen, extra: list[str], names: list[str]) -> None:
    out = tmp_path / "enc.pt2"
    out.write_bytes(b"an earlier export")
    argv = ["export", "--arch", TINY, "--bands", "B04,B03,B02", "--out", str(out), "--overwrite", *extra]
    with frozen(tmp_path):
        _fails(capsys, argv, *names)


def test_export_refuses_existing_output_and_its_own_weights(tmp_path: Path, capsys, frozen) -> None:
    from smarties_terratorch.pretrained import save_weights

    weights = save_weights(smarties_vit_tiny_patch16(), tmp_path / "w.safetensors")
    out = tmp_path / "enc.pt2"
    out.write_bytes(b"an earlier export")
    base = ["export", "--arch", TINY, "--bands", "B04,B03,B02", "--img-size", "32"]
    with frozen(tmp_path):
        _fails(capsys, [*base, "--out", str(out)], out, "--overwrite")
        _fails(capsys, [*base, "--weights", str(weights), "--out", str(weights), "--overwrite"], weights, "is an input")
        _fails(capsys, [*base, "--out", str(out), "--overwrite", "--device", "cuda:7"], "cuda:7")


def test_export_disk_full(tmp_path: Path, capsys, frozen, monkeypatch) -> None:
    import torch

    out = tmp_path / "enc.pt2"
    out.write_bytes(b"an earlier export")

    def full(program, path, *a, **k):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.export, "save", full)
    with frozen(tmp_path):
        _fails(capsys, ["export", "--arch", TINY, "--bands", "B04,B03,B02", "--img-size", "32", "--out", str(out),
                        "--overwrite"], out, "no space left")  # fmt: skip


# ---------------------------------------------------------------------------------------------------- real kills
def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_embed(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A ``smarties embed`` run of several seconds over a 1024 x 1024 scene, replacing an earlier output."""
    data = (np.random.default_rng(3).random((4, 1024, 1024)) * 3000).astype(np.uint16)
    scene = write_tif(tmp_path / "big.tif", data)
    out = tmp_path / "out" / "big_embed.tif"
    out.parent.mkdir()
    out.write_bytes(b"the earlier output, complete")
    cmd = [sys.executable, "-m", "smarties_terratorch.cli", "embed", str(scene), "--bands", ",".join(BANDS), "--arch",
           TINY, "--tile-size", "64", "--overlap", "48", "--batch-size", "2", "--out", str(out), "--overwrite"]  # fmt: skip
    # A child inherits an ignored SIGINT (as under `cmd &` or nohup), and Python then keeps ignoring Ctrl-C: give
    # the run the default disposition, as in an interactive shell.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while not list(out.parent.glob(".big_embed.tif.*.partial*")):  # the run has started writing
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the run did not start"
        time.sleep(0.05)
    time.sleep(1.0)  # well into the tiles
    assert proc.poll() is None, "the run finished before it could be killed: make the scene larger"
    return proc, scene, out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killed_run_never_replaces_the_earlier_output(tmp_path: Path, frozen, sig: signal.Signals) -> None:
    proc, scene, out = _start_embed(tmp_path)
    with frozen(scene, out):
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert out.read_bytes() == b"the earlier output, complete"
    leftovers = [p.name for p in out.parent.iterdir() if p != out]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert all(name.startswith(".big_embed.tif.") and ".partial" in name for name in leftovers)  # hidden only
    else:
        # SIGTERM / Ctrl-C: the handlers run, the temporary file is removed, the exit code says so.
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
        assert leftovers == [] and "Traceback" not in err
