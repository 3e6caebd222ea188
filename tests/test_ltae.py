"""L-TAE: parity with PANGAEA's LTAE2d (generated fixture) and the TemporalLTAE neck inside a TerraTorch model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from smarties_terratorch.models.ltae import LTAE, convert_pangaea_state_dict

FIXTURE = Path(__file__).parent / "data" / "ltae" / "ltae_pangaea.safetensors"
CONFIGS = Path(__file__).parents[1] / "smarties_terratorch" / "configs"


@pytest.fixture(scope="module")
def pangaea() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE)


def _loaded(pangaea: dict[str, torch.Tensor]) -> LTAE:
    model = LTAE(pangaea["input"].shape[1]).double()
    model.load_state_dict(convert_pangaea_state_dict(pangaea, prefix="state."))
    return model


def test_parity_with_pangaea_eval(pangaea: dict[str, torch.Tensor]) -> None:
    """PANGAEA's LTAE2d state dict loaded into LTAE gives PANGAEA's outputs and attention (float64)."""
    model = _loaded(pangaea).eval()
    with torch.no_grad():
        out, attn = model.forward_map(pangaea["input"], return_attention=True)
    diff = (out - pangaea["output_eval"]).abs().max().item()
    print(f"L-TAE parity, eval mode: max |diff| = {diff:.2e}")
    assert out.shape == pangaea["output_eval"].shape
    assert diff < 1e-10
    assert (attn - pangaea["attention_eval"]).abs().max().item() < 1e-12


def test_parity_with_pangaea_train_mode(pangaea: dict[str, torch.Tensor]) -> None:
    """Training mode (BatchNorm batch statistics), dropouts off: same outputs as PANGAEA's."""
    model = _loaded(pangaea).train()
    model.dropout.p = model.attn_drop.p = 0.0
    with torch.no_grad():
        out = model.forward_map(pangaea["input"])
    diff = (out - pangaea["output_train"]).abs().max().item()
    print(f"L-TAE parity, train mode: max |diff| = {diff:.2e}")
    assert diff < 1e-10


def test_convert_refuses_unknown_keys() -> None:
    with pytest.raises(KeyError, match="positional"):
        convert_pangaea_state_dict({"tmap.positional_encoder.denom": torch.zeros(2)}, prefix="tmap.")
    assert convert_pangaea_state_dict({"decoder.x": torch.zeros(1)}, prefix="tmap.") == {}


def test_width_must_divide_heads() -> None:
    with pytest.raises(ValueError, match="n_head=16"):
        LTAE(40)


def _temporal_model(neck_args: dict | None = None) -> torch.nn.Module:
    from terratorch.models import EncoderDecoderFactory

    import smarties_terratorch.backbone  # noqa: F401  (registers the backbone and the neck)

    necks = [
        {"name": "SelectIndices", "indices": [0, 1, 0, 1]},
        {"name": "ReshapeTokensToImage", "temporal_inputs": True},
        {"name": "TemporalLTAE", **(neck_args or {})},
        {"name": "LearnedInterpolateToPyramidal"},
    ]
    return EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="smarties_vit_tiny_patch16",
        backbone_bands=["BLUE", "GREEN", "RED", "NIR_NARROW"],
        backbone_depth=2,
        backbone_use_temporal=True,
        backbone_temporal_pooling="keep",
        necks=necks,
        decoder="UperNetDecoder",
        decoder_channels=16,
        num_classes=3,
    )


def test_neck_in_a_terratorch_model() -> None:
    """The registered TemporalLTAE neck fuses T dates in a TerraTorch encoder-decoder and trains."""
    torch.manual_seed(0)
    model = _temporal_model()
    x = torch.randn(2, 4, 3, 32, 32)  # [B, C, T, H, W]
    out = model(x).output
    assert out.shape == (2, 3, 32, 32)
    out.sum().backward()
    ltae = model.neck[2].ltae
    assert len(ltae) == 1  # one L-TAE shared by the maps, as PANGAEA
    assert ltae[0].query.grad is not None and ltae[0].query.grad.abs().sum() > 0


def test_neck_rejects_pooled_features() -> None:
    from smarties_terratorch.necks import TemporalLTAE

    with pytest.raises(ValueError, match="temporal_pooling: keep"):
        TemporalLTAE([32])([torch.randn(1, 32, 2, 2)])
    with pytest.raises(ValueError, match="shared: false"):
        TemporalLTAE([32, 64])
    assert len(TemporalLTAE([32, 64], shared=False).ltae) == 2


def test_dynamicearthnet_config_uses_ltae() -> None:
    args = yaml.safe_load((CONFIGS / "dynamicearthnet.yaml").read_text())["model"]["init_args"]["model_args"]
    assert args["backbone_temporal_pooling"] == "keep"
    assert [n["name"] for n in args["necks"]][1:3] == ["ReshapeTokensToImage", "TemporalLTAE"]
