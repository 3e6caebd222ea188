"""SMARTIES as a TerraTorch backbone: registry, band sets, outputs, necks/decoders, tasks, checkpoints, import hook
and the real ``terratorch fit`` CLI run from a foreign working directory.

Fast by design: base/large are built (and run) on the meta device, real forwards use the 2-block tiny variant on
64x96 inputs, and the subprocess runs (import order, CLI) are started concurrently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from terratorch.datasets import HLSBands
from terratorch.models import EncoderDecoderFactory
from terratorch.registry import BACKBONE_REGISTRY, TERRATORCH_BACKBONE_REGISTRY

import smarties_terratorch
from smarties_terratorch.backbone import SmartiesBackbone
from smarties_terratorch.pretrained import save_weights

from http_server import HUB_COMMIT, Server, use_hub

TINY = "smarties_vit_tiny_patch16"
# name -> (embed_dim, depth)
NAMES = {
    TINY: (64, 2),
    "smarties_vit_base_patch16": (768, 12),
    "smarties_vit_large_patch16": (1024, 24),
}
HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
HLS_IDX = [1, 4, 6, 11, 13, 14]  # blue_1, green_2, red_2, near_infrared_3, short_wave_infrared_3/4
S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
S2_IDX = [0, 1, 4, 6, 7, 8, 10, 9, 11, 12, 13, 14]  # the S2-L2A preset
H, W = 64, 96  # non-square on purpose: 4 x 6 = 24 patch tokens
N_TOKENS = 1 + (H // 16) * (W // 16)

UPER_NECKS = [
    {"name": "SelectIndices", "indices": [0, 1, 1, 1]},
    {"name": "ReshapeTokensToImage"},
    {"name": "LearnedInterpolateToPyramidal"},
]


def build(name: str = TINY, **kwargs: Any) -> SmartiesBackbone:
    return BACKBONE_REGISTRY.build(name, **kwargs)


def build_model(task: str = "segmentation", **kwargs: Any) -> torch.nn.Module:
    args: dict[str, Any] = {"backbone": TINY, "backbone_bands": HLS}
    if task == "segmentation":
        args.update(necks=UPER_NECKS, decoder="UperNetDecoder", decoder_channels=16, num_classes=3)
    args.update(kwargs)
    return EncoderDecoderFactory().build_model(task=task, **args)


def block_tokens(model: SmartiesBackbone, x: torch.Tensor, **kw: Any) -> list[torch.Tensor]:
    """Reference: every block's raw tokens, straight from the encoder."""
    return model.forward_block_tokens(x, None, **kw)


# ------------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", NAMES)
def test_registered_in_terratorch(name: str) -> None:
    assert name in TERRATORCH_BACKBONE_REGISTRY
    assert name in BACKBONE_REGISTRY
    assert BACKBONE_REGISTRY.find_registry(name) is TERRATORCH_BACKBONE_REGISTRY
    fn = TERRATORCH_BACKBONE_REGISTRY[name]
    assert fn.__name__ == name and fn.__module__ == "smarties_terratorch.backbone"


@pytest.mark.parametrize("name", NAMES)
def test_build_every_name(name: str) -> None:
    dim, depth = NAMES[name]
    device = "cpu" if name == TINY else "meta"  # base/large: shapes only, no memory, no compute
    with torch.device(device):
        model = build(name, bands=HLS)
        out = model(torch.randn(2, 6, H, W))
    assert isinstance(model, SmartiesBackbone)
    assert model.patch_size == 16 and isinstance(model.patch_size, int)
    assert model.out_indices == list(range(depth))  # default: every block
    assert model.out_channels == [dim] * depth
    assert len(out) == depth
    assert all(t.shape == (2, N_TOKENS, dim) for t in out)
    assert {p.device.type for p in model.parameters()} == {device}


# ------------------------------------------------------------------------------------------------ band sets
BAND_SETS = {
    "S2 via sensor": ({"sensor": "S2"}, S2_IDX),
    "S2 codes": ({"bands": ["B02", "B03", "B04", "B08"]}, [1, 4, 6, 9]),
    "S1 via sensor": ({"sensor": "S1"}, [15, 16]),
    "S1 names": ({"bands": ["VV", "VH"]}, [15, 16]),
    "RGB via sensor": ({"sensor": "RGB"}, [5, 3, 2]),
    "S1+S2 one band list": ({"bands": [*S2, "VV", "VH"]}, [*S2_IDX, 15, 16]),
    "HLS names": ({"bands": HLS}, HLS_IDX),
    "HLSBands members": ({"bands": [getattr(HLSBands, b) for b in HLS]}, HLS_IDX),
    "model_bands alias (DOFA style)": ({"model_bands": HLS}, HLS_IDX),
    "wavelengths": ({"bands": [490, 560, "665nm", "0.865um", (1550, 1680), 2190]}, HLS_IDX),
    "wavelength averaged": ({"bands": [490, 1100]}, [1, None]),  # 1100 nm: between B09 and B11
}


@pytest.mark.parametrize("case", BAND_SETS)
def test_band_sets_shapes(case: str) -> None:
    kwargs, expected_idx = BAND_SETS[case]
    model = build(**kwargs)
    assert model.default_bands.projection_indices == expected_idx
    x = torch.randn(2, len(expected_idx), H, W)
    out = model(x)
    assert model.out_channels == [64, 64]
    assert [t.shape for t in out] == [torch.Size([2, N_TOKENS, 64])] * 2
    assert all(torch.isfinite(t).all() for t in out)


def test_band_names_change_the_tokens() -> None:
    """Same pixels, same weights, different spectra -> different tokens (the band list really reaches the model)."""
    rgb = build(sensor="RGB")
    hls = build(bands=["RED", "GREEN", "BLUE"])
    hls.load_state_dict(rgb.state_dict())
    x = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(rgb(x)[-1], hls(x)[-1])


def test_forward_ignores_extra_batch_keys() -> None:
    """TerraTorch tasks call the model with every extra batch key (filename, georeference, ...)."""
    model = build(sensor="S1")
    x = torch.randn(1, 2, 32, 32)
    ref = model(x)
    out = model(x, filename=["a.tif"], crs=None, image_size=(32, 32))
    assert all(torch.equal(a, b) for a, b in zip(ref, out))


# ------------------------------------------------------------------------------------------------ multi-modal
MODALITIES = {"S2L2A": S2, "S1GRD": ["VV", "VH"]}


def _mm_input() -> dict[str, torch.Tensor]:
    return {"S2L2A": torch.randn(2, 12, H, W), "S1GRD": torch.randn(2, 2, H, W)}


def test_early_fusion_dict_equals_one_band_list() -> None:
    early = build(modality_bands=MODALITIES, fusion="early")
    stacked = build(bands=[*S2, "VV", "VH"])
    stacked.load_state_dict(early.state_dict())
    x = _mm_input()
    out = early(x)
    ref = stacked(torch.cat([x["S2L2A"], x["S1GRD"]], dim=1))
    assert early.out_channels == [64, 64]
    assert [t.shape for t in out] == [torch.Size([2, N_TOKENS, 64])] * 2
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b)


def test_late_fusion_concatenates_modalities() -> None:
    late = build(modality_bands=MODALITIES, fusion="late")
    x = _mm_input()
    out = late(x)
    assert late.out_channels == [128, 128]  # 2 modalities x D
    assert [t.shape for t in out] == [torch.Size([2, N_TOKENS, 128])] * 2
    s2 = block_tokens(late, x["S2L2A"], bands=S2)
    s1 = block_tokens(late, x["S1GRD"], bands=["VV", "VH"])
    for level, a, b in zip(out, s2, s1):
        torch.testing.assert_close(level, torch.cat([a, b], dim=-1))


def test_dict_input_with_unconfigured_modality() -> None:
    model = build(modality_bands={"S2L2A": S2}, fusion="early")
    with pytest.raises(ValueError, match="S1GRD.*modality_bands"):
        model(_mm_input())


def test_late_fusion_missing_modality_is_a_clear_error() -> None:
    late = build(modality_bands=MODALITIES, fusion="late")
    with pytest.raises(ValueError, match="S1GRD"):
        late({"S2L2A": torch.randn(1, 12, 32, 32)})


def test_bad_fusion_value() -> None:
    with pytest.raises(ValueError, match="fusion"):
        build(modality_bands=MODALITIES, fusion="middle")


# ------------------------------------------------------------------------------------------------ out_indices
@pytest.mark.parametrize(
    ("out_indices", "blocks"),
    [(None, [0, 1]), ([1], [1]), ([0, 1], [0, 1]), ([-1], [1]), ([-2, -1], [0, 1]), ([0, -1], [0, 1])],
)
def test_out_indices(out_indices: list[int] | None, blocks: list[int]) -> None:
    model = build(sensor="S1", out_indices=out_indices)
    x = torch.randn(2, 2, H, W)
    out = model(x)
    ref = block_tokens(model, x)
    assert model.out_indices == blocks
    assert model.out_channels == [64] * len(blocks)
    assert len(out) == len(blocks)
    for t, b in zip(out, blocks):
        assert torch.equal(t, ref[b])


@pytest.mark.parametrize("out_indices", [[1, 0], [1, 1]])
def test_outputs_follow_out_indices_order(out_indices: list[int]) -> None:
    model = build(sensor="S1", out_indices=out_indices)
    x = torch.randn(1, 2, 32, 32)
    out = model(x)
    ref = block_tokens(model, x)
    assert len(out) == len(model.out_channels) == len(out_indices)
    for t, b in zip(out, out_indices):
        assert torch.equal(t, ref[b])


@pytest.mark.parametrize("out_indices", [[2], [-3]])
def test_out_indices_out_of_range(out_indices: list[int]) -> None:
    with pytest.raises(ValueError, match="out_indices"):
        build(sensor="S1", out_indices=out_indices)


# ------------------------------------------------------------------------------------------------ kwargs
def test_terratorch_extras_accepted() -> None:
    model = build(sensor="S1", padding="reflect", patch_size=16)
    assert model.patch_size == 16
    assert len(model(torch.randn(1, 2, 32, 32))) == 2


@pytest.mark.parametrize("patch_size", [8, 14, 32])
def test_bad_patch_size(patch_size: int) -> None:
    with pytest.raises(ValueError, match="16"):
        build(sensor="S1", patch_size=patch_size)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("band", "bands"),
        ("sensr", "sensor"),
        ("fusoin", "fusion"),
        ("modality_band", "modality_bands"),
        ("drop_path_rat", "drop_path_rate"),
        ("in_channel", "in_channels"),
        ("wieghting", "weighting"),
    ],
)
def test_typo_kwargs_raise_with_suggestion(typo: str, meant: str) -> None:
    with pytest.raises(TypeError, match=f"'{typo}'.*did you mean '{meant}'"):
        build(sensor="S1", **{typo: 1})


def test_typo_kwargs_raise_through_the_factory() -> None:
    """TerraTorch never checks backbone_* keys; our TypeError must reach the user, not be swallowed."""
    with pytest.raises(TypeError, match="did you mean 'sensor'"):
        build_model(backbone_sensr="S2")


@pytest.mark.parametrize(
    ("typo", "meant"), [("ckpt_pth", "ckpt_path"), ("pretrainde", "pretrained"), ("out_indice", "out_indices")]
)
def test_typo_of_factory_parameter_suggests(typo: str, meant: str) -> None:
    with pytest.raises(TypeError, match=f"did you mean '{meant}'"):
        build(sensor="S1", **{typo: 1})


def test_bands_and_model_bands_together() -> None:
    with pytest.raises(ValueError, match="model_bands"):
        build(bands=HLS, model_bands=HLS)


# ------------------------------------------------------------------------------------------------ TerraTorch's keys
def test_model_bands_is_an_alias_of_bands() -> None:
    assert build(model_bands=HLS).default_bands.projection_indices == HLS_IDX
    model = build_model(backbone_bands=None, backbone_model_bands=HLS)
    assert model.encoder.default_bands.projection_indices == HLS_IDX


def test_drop_path_is_an_alias_of_drop_path_rate() -> None:
    model = build_model(backbone_drop_path=0.2)
    assert model.encoder.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    with pytest.raises(ValueError, match="either drop_path_rate or drop_path"):
        build(sensor="S1", drop_path=0.1, drop_path_rate=0.1)


@pytest.mark.parametrize("key", ["in_channels", "in_chans"])
def test_in_channels_is_checked_against_the_bands(key: str) -> None:
    assert build_model(**{f"backbone_{key}": 6}).encoder.default_bands.names == HLS
    with pytest.raises(ValueError, match=f"backbone_{key}=4 but backbone_bands has 6 band"):
        build_model(**{f"backbone_{key}": 4})
    with pytest.raises(ValueError, match=f"backbone_{key}=3 alone .* set backbone_bands"):
        build(**{key: 3})


def test_num_frames_points_to_the_temporal_wrapper() -> None:
    assert build(sensor="S1", num_frames=1).default_bands.names == ["VV", "VH"]
    with pytest.raises(ValueError, match="backbone_num_frames=4 .*backbone_use_temporal: true"):
        build_model(backbone_num_frames=4)


def test_unknown_weights_tag_is_not_swallowed_by_the_registry() -> None:
    """TerraTorch's registry turns a KeyError into "could not be instantiated from any source"."""
    with pytest.raises(ValueError, match="backbone_pretrained: Unknown SMARTIES weights 'nope'"):
        build_model(backbone_pretrained="nope")


def test_size_error_of_the_backbone_says_what_to_do() -> None:
    model = build(sensor="S1")
    with pytest.raises(ValueError, match="does not pad.*EncoderDecoderFactory") as info:
        model(torch.randn(1, 2, 50, 70))
    assert "pads automatically" not in str(info.value)


# ------------------------------------------------------------------------------------------------ bad input
def test_band_count_differs_from_channels() -> None:
    model = build(bands=HLS)
    with pytest.raises(ValueError, match=r"4 channels but 6 bands .*BLUE.*one band name per channel"):
        model(torch.randn(1, 4, 32, 32))


def test_band_count_differs_from_channels_in_full_model() -> None:
    """The error comes from our backbone, with our message, not from deep inside TerraTorch."""
    model = build_model()
    with pytest.raises(ValueError, match="5 channels but 6 bands"):
        model(torch.randn(1, 5, 32, 32))


@pytest.mark.parametrize("bad", ["FOO", "NIR_NARROWW", "B13"])
def test_unknown_band_names(bad: str) -> None:
    with pytest.raises(ValueError, match=f"Unknown band '{bad}'.*Accepted"):
        build(bands=["BLUE", bad])


@pytest.mark.parametrize("bad", ["CIRRUS", "B10"])
def test_bands_without_projection_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="no learned SMARTIES projection"):
        build(bands=["BLUE", bad])


def test_unknown_band_names_through_the_factory() -> None:
    with pytest.raises(ValueError, match="Unknown band 'FOO'"):
        build_model(backbone_bands=["BLUE", "FOO"])


def test_wavelength_interval_centred_on_a_learned_centre() -> None:
    model = build(bands=[(1580, 1640)])
    assert model.default_bands.projection_indices == [13]


def test_input_not_divisible_by_patch_size() -> None:
    model = build(sensor="S1")
    with pytest.raises(ValueError, match="not divisible by the patch size 16"):
        model(torch.randn(1, 2, 50, 70))


def test_no_bands_is_a_clear_error_at_forward() -> None:
    model = build()
    with pytest.raises(ValueError, match="No bands given"):
        model(torch.randn(1, 2, 32, 32))


def test_pretrained_tiny_has_no_weights() -> None:
    from smarties_terratorch.checkpoints import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="ckpt_path"):
        build(sensor="S1", pretrained=True)


# ------------------------------------------------------------------------------------------------ factory
@pytest.mark.parametrize("size", [(H, W), (50, 70), (32, 32)])
def test_upernet_segmentation_chain(size: tuple[int, int]) -> None:
    """SelectIndices -> ReshapeTokensToImage -> LearnedInterpolateToPyramidal -> UperNetDecoder; the model pads
    inputs that are not a multiple of 32 and crops back."""
    model = build_model().eval()
    assert isinstance(model.encoder, SmartiesBackbone)
    assert model.patch_size == 16
    with torch.no_grad():
        out = model(torch.randn(2, 6, *size)).output
    assert out.shape == (2, 3, *size)


@pytest.mark.parametrize(
    "necks",
    [[{"name": "ReshapeTokensToImage"}], [{"name": "AggregateTokens", "pooling": "cls"}]],
    ids=["ReshapeTokensToImage", "AggregateTokens-cls"],
)
@pytest.mark.parametrize("size", [(H, W), (50, 70)])
def test_classification_chain(necks: list[dict[str, Any]], size: tuple[int, int]) -> None:
    model = build_model("classification", necks=necks, decoder="IdentityDecoder", num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 6, *size)).output
    assert out.shape == (2, 5)


def test_aggregate_tokens_cls_is_the_cls_token() -> None:
    model = build_model(
        "classification", necks=[{"name": "AggregateTokens", "pooling": "cls"}], decoder="IdentityDecoder",
        num_classes=5,
    ).eval()
    x = torch.randn(2, 6, H, W)
    feats = model.neck(model.encoder(x), image_size=(H, W))
    assert feats[-1].shape == (2, 64)
    torch.testing.assert_close(feats[-1], model.encoder(x)[-1][:, 0])


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_multimodal_upernet(fusion: str) -> None:
    model = build_model(backbone_bands=None, backbone_modality_bands=MODALITIES, backbone_fusion=fusion).eval()
    x = {"S2L2A": torch.randn(2, 12, 48, 80), "S1GRD": torch.randn(2, 2, 48, 80)}
    with torch.no_grad():
        assert model(x).output.shape == (2, 3, 48, 80)


@pytest.mark.parametrize(
    ("name", "indices"), [("smarties_vit_base_patch16", [3, 5, 7, 11]), ("smarties_vit_large_patch16", [5, 11, 17, 23])]
)
def test_upernet_base_large_on_meta(name: str, indices: list[int]) -> None:
    """The paper-sized models in the standard chain, shapes only (meta device: no memory, no FLOPs)."""
    necks = [{"name": "SelectIndices", "indices": indices}, *UPER_NECKS[1:]]
    with torch.device("meta"):
        model = build_model(backbone=name, backbone_bands=HLS, necks=necks, decoder_channels=256, num_classes=2)
        out = model.eval()(torch.empty(2, 6, 224, 224)).output
    assert out.shape == (2, 2, 224, 224)
    assert model.encoder.out_channels == [NAMES[name][0]] * NAMES[name][1]


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_backbone_in_segmentation_task(freeze: bool) -> None:
    from terratorch.tasks import SemanticSegmentationTask

    model_args = {
        "backbone": TINY, "backbone_bands": HLS, "necks": UPER_NECKS, "decoder": "UperNetDecoder",
        "decoder_channels": 16, "num_classes": 2,
    }  # fmt: skip
    task = SemanticSegmentationTask(
        model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce", ignore_index=-1,
        freeze_backbone=freeze,
    )  # fmt: skip
    encoder = task.model.encoder
    assert isinstance(encoder, SmartiesBackbone)
    assert all(p.requires_grad is not freeze for p in encoder.parameters())
    assert all(p.requires_grad for p in task.model.decoder.parameters())

    # One backward pass: a frozen encoder gets no gradient, the decoder does.
    y = torch.randint(0, 2, (2, 32, 32))
    loss = task.criterion(task.model(torch.randn(2, 6, 32, 32)).output, y)
    loss.backward()
    if freeze:
        assert all(p.grad is None for p in encoder.parameters())
    else:  # unused parts (final norm, projections of absent ranges) legitimately get none
        assert all(p.grad is not None for p in encoder.blocks.parameters())
    assert all(p.grad is not None for p in task.model.decoder.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------------ checkpoints
def test_official_layout_checkpoint_roundtrip(tmp_path: Path) -> None:
    src = build(bands=HLS)
    with torch.no_grad():  # move well away from the init so a non-load cannot pass by accident
        for p in src.parameters():
            p.add_(torch.randn_like(p))
    path = save_weights(src, tmp_path / "tiny.safetensors")
    x = torch.randn(2, 6, H, W)
    ref = src(x)

    loaded = build(bands=HLS, ckpt_path=str(path))
    for a, b in zip(loaded(x), ref):
        assert torch.equal(a, b)
    fresh = build(bands=HLS)
    assert not torch.allclose(fresh(x)[-1], ref[-1])

    model = build_model(backbone_ckpt_path=str(path))  # TerraTorch's backbone_ckpt_path key
    for a, b in zip(model.encoder(x), ref):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------ subprocesses
def _clean_env(**extra: str) -> dict[str, str]:
    """The user's environment minus anything that could make our package importable by accident."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TERRATORCH_CUSTOM_MODULE_PATH")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **extra)
    return env


def _run_all(commands: dict[str, tuple[list[str], dict[str, str]]], cwd: Path, timeout: float = 240) -> dict:
    """Start every command at once (they are mostly import time), then collect ``(returncode, output)``."""
    procs = {
        key: subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for key, (cmd, env) in commands.items()
    }
    results = {}
    for key, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results[key] = (proc.returncode, out)
    return results


IMPORT_ORDER = {
    "smarties first": """
        import sys
        import smarties_terratorch
        assert "terratorch" not in sys.modules, "importing smarties_terratorch must not import terratorch"
        from terratorch.registry import BACKBONE_REGISTRY, TERRATORCH_BACKBONE_REGISTRY
    """,
    "terratorch first": """
        import sys
        import terratorch
        from terratorch.registry import BACKBONE_REGISTRY, TERRATORCH_BACKBONE_REGISTRY
        assert "smarties_vit_tiny_patch16" not in TERRATORCH_BACKBONE_REGISTRY
        import smarties_terratorch
    """,
}


IMPORT_CHECK = f"""
    names = {list(NAMES)}
    assert all(n in TERRATORCH_BACKBONE_REGISTRY for n in names), list(TERRATORCH_BACKBONE_REGISTRY)
    model = BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", sensor="S1")
    assert type(model).__name__ == "SmartiesBackbone"
    print("REGISTERED-OK")
"""


def _write_fixture(root: Path) -> None:
    """Tiny burn-scars-like data: 6-band float32 64x64 ``*_merged.tif`` + int16 ``*.mask.tif`` per split."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    rng = np.random.default_rng(0)
    profile = {"driver": "GTiff", "width": 64, "height": 64, "crs": "EPSG:32610",
               "transform": Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)}  # fmt: skip
    for split in ("train", "val"):
        folder = root / split
        folder.mkdir(parents=True)
        for i in range(2):
            img = rng.random((6, 64, 64), dtype=np.float32)
            mask = (img[3] > 0.5).astype(np.int16)[None]
            with rasterio.open(folder / f"tile{i}_merged.tif", "w", count=6, dtype="float32", **profile) as f:
                f.write(img)
            with rasterio.open(folder / f"tile{i}.mask.tif", "w", count=1, dtype="int16", **profile) as f:
                f.write(mask)


# A user's config: it names the backbone and nothing else of this package.
FIT_YAML = """\
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  fast_dev_run: true
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
data:
  class_path: terratorch.datamodules.GenericNonGeoSegmentationDataModule
  init_args:
    batch_size: 2
    num_workers: 0
    num_classes: 2
    train_data_root: data/train
    val_data_root: data/val
    test_data_root: data/val
    img_grep: "*_merged.tif"
    label_grep: "*.mask.tif"
    dataset_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]
    output_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]
    means: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    stds: [0.29, 0.29, 0.29, 0.29, 0.29, 0.29]
model:
  class_path: terratorch.tasks.SemanticSegmentationTask
  init_args:
    model_factory: EncoderDecoderFactory
    model_args:
      backbone: smarties_vit_tiny_patch16
      backbone_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]
      necks:
        - name: SelectIndices
          indices: [0, 1, 1, 1]
        - name: ReshapeTokensToImage
        - name: LearnedInterpolateToPyramidal
      decoder: UperNetDecoder
      decoder_channels: 16
      num_classes: 2
    loss: ce
    ignore_index: -1
    freeze_backbone: true
optimizer:
  class_path: torch.optim.AdamW
  init_args:
    lr: 0.001
"""
FIT_OK = "`Trainer.fit` stopped"


def _cli_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory that is not the repository, with tiny GeoTIFFs, the user's YAML and a bad variant."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    assert not (cwd / "custom_modules").exists()
    _write_fixture(cwd / "data")
    assert "smarties" not in FIT_YAML.replace("smarties_vit_tiny_patch16", "")
    (cwd / "user.yaml").write_text(FIT_YAML)
    (cwd / "bad_key.yaml").write_text(FIT_YAML.replace("backbone_bands:", "backbone_num_frames: 4\n      backbone_bands:"))
    return cwd


TERRATORCH_CLI = str(Path(sys.executable).parent / "terratorch")


@pytest.fixture(scope="module")
def subprocess_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Fresh interpreters, started together (they are mostly import time): both import orders, and the real
    ``terratorch fit`` of the user's YAML from a foreign working directory with TerraTorch's
    ``custom_modules_path`` and with nothing, all with the startup hook switched off; and a config with a bad
    backbone key."""
    cwd = _cli_cwd(tmp_path_factory)
    # The explicit import, without the startup hook (test_registration.py covers the hook).
    explicit = _clean_env(SMARTIES_TERRATORCH_AUTOLOAD="0")
    commands = {
        order: ([sys.executable, "-c", textwrap.dedent(code) + textwrap.dedent(IMPORT_CHECK)], explicit)
        for order, code in IMPORT_ORDER.items()
    }
    package_dir = str(Path(smarties_terratorch.__file__).parent)
    commands["custom_modules_path"] = ([TERRATORCH_CLI, "fit", "-c", "user.yaml", "--custom_modules_path", package_dir],
                                       explicit)  # fmt: skip
    commands["bad key"] = ([TERRATORCH_CLI, "fit", "-c", "bad_key.yaml"], _clean_env())
    commands["none"] = ([TERRATORCH_CLI, "fit", "-c", "user.yaml"], explicit)
    return _run_all(commands, cwd=cwd)


@pytest.fixture(scope="module")
def fallback_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """TerraTorch's other fallback with the startup hook off: the ``TERRATORCH_CUSTOM_MODULE_PATH`` variable."""
    cwd = _cli_cwd(tmp_path_factory)
    package_dir = str(Path(smarties_terratorch.__file__).parent)
    env = _clean_env(TERRATORCH_CUSTOM_MODULE_PATH=package_dir, SMARTIES_TERRATORCH_AUTOLOAD="0")
    return _run_all({"env var": ([TERRATORCH_CLI, "fit", "-c", "user.yaml"], env)}, cwd=cwd)


@pytest.mark.parametrize("order", IMPORT_ORDER)
def test_import_order(subprocess_runs: dict[str, tuple[int, str]], order: str) -> None:
    rc, out = subprocess_runs[order]
    assert rc == 0 and "REGISTERED-OK" in out, out[-3000:]


def test_cli_fit_from_another_cwd_with_custom_modules_path(subprocess_runs: dict[str, tuple[int, str]]) -> None:
    """The documented fallback with the startup hook off (no line in the YAML)."""
    rc, out = subprocess_runs["custom_modules_path"]
    assert rc == 0 and FIT_OK in out, out[-4000:]
    assert "Non-trainable params" in out  # freeze_backbone: the encoder's weights are frozen


def test_cli_fit_with_autoload_off_and_no_fallback_fails(subprocess_runs: dict[str, tuple[int, str]]) -> None:
    """With the startup hook switched off (SMARTIES_TERRATORCH_AUTOLOAD=0) TerraTorch never imports us: it has no
    plugin entry points. The zero-line case (hook on) runs in a fresh venv in test_registration.py."""
    rc, out = subprocess_runs["none"]
    assert rc != 0
    assert "The model smarties_vit_tiny_patch16 could not be instantiated from any source" in out, out[-4000:]


def test_cli_backbone_error_is_one_line_near_the_top(subprocess_runs: dict[str, tuple[int, str]]) -> None:
    """jsonargparse buries a factory's exception under ~100 lines of union-type diagnostics: our message must be
    one of the first lines the user sees."""
    rc, out = subprocess_runs["bad key"]
    assert rc != 0
    first = out.splitlines()[:10]
    assert any("backbone_num_frames=4" in line and "backbone_use_temporal: true" in line for line in first), out[:3000]


@pytest.mark.slow
def test_cli_fit_custom_module_env_var_fallback(fallback_runs: dict[str, tuple[int, str]]) -> None:
    rc, out = fallback_runs["env var"]
    assert rc == 0 and FIT_OK in out, out[-4000:]


# ------------------------------------------------------------------------------------------------ pretrained: true
def test_pretrained_true_downloads_the_current_hub_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No pinned revision: the repo's current commit is resolved through the Hub API, logged, and downloaded."""
    from smarties_terratorch.models import vit
    from smarties_terratorch.weights import SmartiesWeights

    src = build(bands=HLS)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p))
    path = save_weights(src, tmp_path / "tiny.safetensors")
    declared = SmartiesWeights(
        name="smarties-test-tiny", arch=TINY, repo_id="example-org/SMARTIES-tiny", filename="tiny.safetensors"
    )
    sha = HUB_COMMIT
    hub = Server({}, models={(declared.repo_id, declared.filename): path.read_bytes()})
    try:
        use_hub(monkeypatch, hub.hub_url, cache=str(tmp_path / "hub-cache"))
        monkeypatch.setattr(vit, "default_weights_for", lambda arch: declared)
        with caplog.at_level("WARNING", logger="smarties_terratorch"):
            model = build_model(backbone_pretrained=True)
        assert f"example-org/SMARTIES-tiny at commit {sha} (not pinned by this package)" in caplog.text
        assert hub.gets("/hub/api/models/example-org/SMARTIES-tiny")  # the current commit was asked for
        assert any(p.endswith(f"/resolve/{sha}/tiny.safetensors") for _, p, _ in hub.requests), hub.requests
    finally:
        hub.close()
    x = torch.randn(1, 6, H, W)
    for a, b in zip(model.encoder(x), src(x)):
        assert torch.equal(a, b)

    # The Hub gone (server closed) or HF_HUB_OFFLINE: the newest cached commit is used, and said so.
    import huggingface_hub.constants as hf_constants

    for offline in (False, True):
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", offline)
        caplog.clear()
        with caplog.at_level("WARNING", logger="smarties_terratorch.backbone"):
            again = build(bands=HLS, pretrained=True)
        assert f"at cached commit {sha}" in caplog.text
        for a, b in zip(again(x), src(x)):
            assert torch.equal(a, b)


def test_pretrained_true_when_the_hub_cannot_be_reached_names_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smarties_terratorch.models import vit
    from smarties_terratorch.weights import SmartiesWeights

    declared = SmartiesWeights(
        name="smarties-test-tiny", arch=TINY, repo_id="example-org/SMARTIES-tiny", filename="tiny.safetensors"
    )
    hub = Server({}, models={("other/repo", "x"): b""})  # answers 404 for our repo
    try:
        use_hub(monkeypatch, hub.hub_url, cache=str(tmp_path / "empty-cache"))
        monkeypatch.setattr(vit, "default_weights_for", lambda arch: declared)
        with pytest.raises(ValueError, match="backbone_pretrained: could not resolve .*not in the Hub cache.*backbone_revision.*backbone_ckpt_path"):
            build(bands=HLS, pretrained=True)
    finally:
        hub.close()


# ---------------------------------------------------------------------------------------------- normalisation in the model
HLS_NAMES = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def _dn(size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(2, 6, size, size, generator=g) * 3000 + 100).round()


def test_backbone_stats_normalise_inside_the_model(tmp_path: Path) -> None:
    import json
    import warnings

    from smarties_terratorch.normalization import SmartiesNormalize, UnitsWarning

    plain = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=HLS_NAMES)
    normed = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=HLS_NAMES, stats="S2-L2A")
    assert list(normed.state_dict()) == list(plain.state_dict())  # released layout: no statistics in the weights
    normed.load_state_dict(plain.state_dict(), strict=True)
    x = _dn()
    reference = plain(SmartiesNormalize.from_spec("S2-L2A", ["B02", "B03", "B04", "B8A", "B11", "B12"])(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)  # raw digital numbers are what the statistics expect
        out = normed(x)
    assert all(torch.equal(a, b) for a, b in zip(out, reference))
    # the same statistics inline, or from a file, give the same model
    s2 = SmartiesNormalize.from_spec("S2-L2A", HLS_NAMES)
    inline = {"bands": HLS_NAMES, **{k: getattr(s2, k).tolist() for k in ("mean", "std", "p1", "p99")}}
    (tmp_path / "stats.json").write_text(json.dumps(inline))
    for spec in (inline, str(tmp_path / "stats.json")):
        other = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=HLS_NAMES, stats=spec)
        other.load_state_dict(plain.state_dict())
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(other(x), reference))


def test_backbone_stats_refuse_data_normalised_twice() -> None:
    from smarties_terratorch.normalization import NormalizedTwiceError, SmartiesNormalize

    normed = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=HLS_NAMES, stats="S2-L2A")
    twice = SmartiesNormalize.from_spec("S2-L2A", HLS_NAMES)(_dn())
    for _ in range(2):  # refused every time, not only on the first batch
        with pytest.raises(NormalizedTwiceError, match="already normalised.*backbone_stats"):
            normed(twice)
    normed(_dn())  # raw digital numbers, as the statistics expect: accepted


def test_backbone_stats_errors() -> None:
    with pytest.raises(ValueError, match="stats needs the model's bands"):
        TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", stats="S2-L2A")
    with pytest.raises(ValueError, match="'VV' is not in the S2-L2A statistics"):
        TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=["B02", "VV"], stats="S2-L2A")
    normed = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=HLS_NAMES, stats="S2-L2A")
    with pytest.raises(ValueError, match="normalises its input with statistics table 'S2-L2A'"):
        normed.forward_features(_dn()[:, :4], bands=["B02", "B03", "B04", "B08"])


def test_backbone_stats_travel_in_the_task_hyperparameters() -> None:
    from terratorch.tasks import SemanticSegmentationTask

    model_args = {"backbone": "smarties_vit_tiny_patch16", "backbone_bands": HLS_NAMES, "backbone_stats": "S2-L2A",
                  "necks": [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}],
                  "decoder": "FCNDecoder", "num_classes": 2}  # fmt: skip
    task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce")
    assert task.hparams["model_args"]["backbone_stats"] == "S2-L2A"
    assert task.model.encoder.input_norm.bands == ("B02", "B03", "B04", "B8A", "B11", "B12")
    assert task.model(_dn()).output.shape == (2, 2, 32, 32)


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_backbone_stats_per_modality(fusion: str) -> None:
    from smarties_terratorch.normalization import SmartiesNormalize

    bands = {"S2": ["B02", "B03", "B04", "B08"], "S1": ["VV", "VH"]}
    kw = {"modality_bands": bands, "fusion": fusion}
    plain = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", **kw)
    normed = TERRATORCH_BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", **kw, stats={"S2": "S2-L2A", "S1": "S1"})
    normed.load_state_dict(plain.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    raw = {"S2": torch.rand(2, 4, 32, 32, generator=g) * 3000, "S1": -torch.rand(2, 2, 32, 32, generator=g) * 25 - 3}
    ref = plain({m: SmartiesNormalize.from_spec(t, bands[m])(raw[m]) for m, t in (("S2", "S2-L2A"), ("S1", "S1"))})
    assert all(torch.equal(a, b) for a, b in zip(normed(raw), ref))


# ------------------------------------------------------------------------------- data and backbone bands agree
@pytest.mark.parametrize(
    ("attribute", "bands"),
    [("output_bands", ["B02", "B03", "B04"]), ("bands", ["BLUE", "S2:B03", "red_2"]),
     ("dataset_bands", [HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED])],
)  # fmt: skip
def test_band_check_accepts_any_name_of_the_same_bands(attribute: str, bands: list[Any]) -> None:
    from types import SimpleNamespace

    from smarties_terratorch.backbone import CheckBands

    model = build_model("classification", backbone_bands=["BLUE", "GREEN", "RED"], decoder="IdentityDecoder",
                        num_classes=2)  # fmt: skip
    CheckBands().setup(SimpleNamespace(datamodule=SimpleNamespace(**{attribute: bands})), model, "fit")


@pytest.mark.parametrize("data", [{}, {"output_bands": None, "dataset_bands": [0, 1, 2]}, {"bands": ["NDVI"] * 3}])
def test_band_check_is_silent_when_the_data_names_no_bands(data: dict[str, Any]) -> None:
    from types import SimpleNamespace

    from smarties_terratorch.backbone import CheckBands

    model = build_model("classification", backbone_bands=["BLUE", "GREEN", "RED"], decoder="IdentityDecoder",
                        num_classes=2)  # fmt: skip
    CheckBands().setup(SimpleNamespace(datamodule=SimpleNamespace(**data)), model, "fit")


def test_band_mismatch_stops_a_terratorch_run_at_setup() -> None:
    """The entry point adds the check to every TerraTorch Trainer: a mismatch fails before the first step, naming
    both lists and ``backbone_bands``."""
    import lightning.pytorch as pl
    from terratorch.tasks import ClassificationTask
    from torch.utils.data import DataLoader

    from smarties_terratorch.backbone import BackboneConfigError

    class Data(pl.LightningDataModule):
        output_bands = ["BLUE", "GREEN", "NIR_NARROW"]

        def train_dataloader(self) -> DataLoader:
            return DataLoader([{"image": torch.randn(3, 32, 32), "label": torch.tensor(0)}] * 2, batch_size=2)

    task = ClassificationTask(model_factory="EncoderDecoderFactory", model_args={
        "backbone": TINY, "backbone_bands": ["B02", "B03", "B04"], "decoder": "IdentityDecoder", "num_classes": 2})
    trainer = pl.Trainer(accelerator="cpu", fast_dev_run=True, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    with pytest.raises(BackboneConfigError) as err:
        trainer.fit(task, datamodule=Data())
    message = str(err.value)
    assert "['BLUE', 'GREEN', 'NIR_NARROW']" in message and "['B02', 'B03', 'B04']" in message
    assert "backbone_bands" in message
