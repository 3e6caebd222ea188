"""Export of the encoder for a fixed band list: torch.export and ONNX (onnxruntime) parity with eager."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from smarties_terratorch import cli
from smarties_terratorch.export import FixedBandEncoder, export_encoder
from smarties_terratorch.models.vit import smarties_vit_tiny_patch16

BANDS = ["B02", "B03", "B04", "B08", "B11"]


@pytest.fixture
def model() -> torch.nn.Module:
    return smarties_vit_tiny_patch16(bands=BANDS, sensor="S2-L2A").eval()


def eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.forward_features(x)


@pytest.mark.parametrize("output", ["tokens", "features", "dense"])
def test_wrapper_equals_eager(model: torch.nn.Module, output: str) -> None:
    x = torch.randn(2, 5, 48, 80)
    with torch.inference_mode():
        y = FixedBandEncoder(model, output=output)(x)
        tokens = model.forward_features(x)
    expected = {
        "tokens": tokens,
        "features": model.forward_head(tokens, pre_logits=True),
        "dense": tokens[:, 1:].reshape(2, 3, 5, -1).permute(0, 3, 1, 2),
    }[output]
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_torch_export_parity_dynamic_shapes(model: torch.nn.Module, tmp_path: Path) -> None:
    path = export_encoder(model, tmp_path / "enc.pt2", fmt="torch.export", example_size=64)
    program = torch.export.load(path).module()
    for shape in [(3, 5, 96, 128), (1, 5, 224, 224), (2, 5, 32, 48)]:  # batch, H, W all differ from the example
        x = torch.randn(shape)
        assert (program(x) - eager(model, x)).abs().max() <= 1e-4


def test_onnx_parity_dynamic_shapes(model: torch.nn.Module, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = export_encoder(model, tmp_path / "enc.onnx", fmt="onnx", example_size=64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    for shape in [(3, 5, 96, 128), (1, 5, 224, 224)]:
        x = torch.randn(shape)
        y = session.run(None, {"x": x.numpy()})[0]
        assert y.shape == (shape[0], 1 + shape[2] * shape[3] // 256, 64)
        assert np.abs(y - eager(model, x).numpy()).max() <= 1e-4


def test_export_size_below_two_patches_is_rejected(model: torch.nn.Module, tmp_path: Path) -> None:
    program = torch.export.load(export_encoder(model, tmp_path / "enc.pt2", example_size=64)).module()
    with pytest.raises(AssertionError):  # documented limit: H, W >= 32 (two patches)
        program(torch.randn(1, 5, 16, 64))


def test_export_cli(tmp_path: Path) -> None:
    out = tmp_path / "enc.pt2"
    code = cli.main(["export", "--arch", "smarties_vit_tiny_patch16", "--bands", "B04,B03,B02", "--sensor", "S2-L2A",
                     "--format", "torch.export", "--output", "features", "--img-size", "32", "--out", str(out)])  # fmt: skip
    assert code == 0
    y = torch.export.load(out).module()(torch.randn(2, 3, 64, 48))
    assert y.shape == (2, 64)


def test_export_rejects_bad_format(model: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        export_encoder(model, tmp_path / "x", fmt="tflite")  # type: ignore[arg-type]


def test_export_cli_device_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    out = tmp_path / "enc.pt2"
    base = ["export", "--arch", "smarties_vit_tiny_patch16", "--bands", "B04,B03,B02", "--img-size", "32",
            "--output", "features", "--out", str(out)]  # fmt: skip
    assert cli.main([*base, "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"
    first = out.read_bytes()
    assert cli.main([*base, "--output", "dense"]) == 2  # exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == first
    assert cli.main([*base, "--output", "dense", "--overwrite"]) == 0
    assert torch.export.load(out).module()(torch.randn(1, 3, 32, 48)).shape == (1, 64, 2, 3)
    assert not [p for p in tmp_path.iterdir() if p != out]  # no temporary file left behind


def test_export_keeps_the_models_normalisation(tmp_path: Path) -> None:
    """``--stats`` (or a model built with ``stats=``): the exported program takes raw values, like the model."""
    model = smarties_vit_tiny_patch16(bands=["BLUE", "GREEN", "RED"], stats="S2-L2A").eval()
    x = torch.rand(2, 3, 64, 48) * 3000
    with torch.inference_mode():
        torch.testing.assert_close(FixedBandEncoder(model)(x), model.forward_features(x), atol=1e-5, rtol=1e-5)
    program = torch.export.load(export_encoder(model, tmp_path / "enc.pt2", example_size=64)).module()
    assert (program(x) - eager(model, x)).abs().max() <= 1e-4
    out = tmp_path / "cli.pt2"
    code = cli.main(["export", "--arch", "smarties_vit_tiny_patch16", "--bands", "BLUE,GREEN,RED", "--stats", "S2-L2A",
                     "--output", "features", "--img-size", "32", "--out", str(out)])  # fmt: skip
    assert code == 0 and torch.isfinite(torch.export.load(out).module()(x)).all()
    with pytest.raises(ValueError, match="normalises its input"):
        FixedBandEncoder(model, bands=["B02", "B03", "B08"])
