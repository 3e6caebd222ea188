"""SMARTIES as a PANGAEA encoder, exercised the way PANGAEA's ``run.py`` does, without PANGAEA installed.

Configs are composed with Hydra from ``tests/data/pangaea`` (a stand-in ``train.yaml`` and dataset configs in
PANGAEA's format) plus the package's own configs through ``hydra.searchpath=[pkg://...]``; the encoder is built
with ``hydra.utils.instantiate``, gets ``load_encoder_weights(logger)`` and a dict of modalities. Real forwards use
a 2-block, 64-wide encoder on 32x32 inputs; the shipped ViT-B/L configs are built on the meta device.
"""

from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from smarties_terratorch.checkpoints import CheckpointError, WeightsUnavailableError
from smarties_terratorch.models.vit import SmartiesViT
from smarties_terratorch.pangaea import CONFIG_SEARCH_PATH, SmartiesEncoder, plan_bands
from smarties_terratorch.pangaea import encoder as encoder_module
from smarties_terratorch.pretrained import save_weights

CONF = Path(__file__).parent / "data" / "pangaea"
DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
# Tiny architecture and input for real forwards.
TINY = [
    "encoder.embed_dim=64",
    "encoder.depth=2",
    "encoder.num_heads=2",
    "encoder.output_layers=[0,1]",
    "encoder.output_dim=64",
    "encoder.input_size=32",
]
S2_12 = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]


def compose_cfg(dataset: str, encoder: str = "smarties_vitb", overrides: list[str] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(
            "train",
            overrides=[
                f"dataset={dataset}",
                f"encoder={encoder}",
                f"hydra.searchpath=[{CONFIG_SEARCH_PATH}]",
                *overrides,
            ],
        )


def build(dataset: str = "hlsburnscars", overrides: list[str] = (), weights: Path | None = None) -> SmartiesEncoder:
    extra = [f"encoder.encoder_weights={weights if weights else 'null'}"]
    return instantiate(compose_cfg(dataset, overrides=[*TINY, *extra, *overrides]).encoder)


def plan(dataset: str, **overrides: Any) -> Any:
    """The band plan of the shipped ViT-B config for ``dataset`` (no model is built)."""
    enc = OmegaConf.to_container(compose_cfg(dataset).encoder, resolve=True)
    kwargs = {k: enc[k] for k in ("input_bands", "band_map", "dataset_band_maps", "dataset_name", "dataset_bands")}
    return plan_bands(**{**kwargs, "allow_duplicates": enc["allow_duplicate_bands"], **overrides})


def pangaea_pad(x: torch.Tensor, dataset_bands: list[str], input_bands: list[str]) -> torch.Tensor:
    """What PANGAEA's BandFilter + BandPadding do: encoder-order channels, zeros for bands the dataset lacks."""
    padded = torch.cat([torch.zeros_like(x[:, :1]), x], dim=1)
    index = [dataset_bands.index(b) + 1 if b in dataset_bands else 0 for b in input_bands]
    return padded[:, index]


@pytest.fixture
def tiny_weights(tmp_path: Path) -> tuple[Path, SmartiesViT]:
    vit = SmartiesViT(img_size=32, embed_dim=64, depth=2, num_heads=2)
    return save_weights(vit, tmp_path / "tiny.safetensors"), vit


# ------------------------------------------------------------------------------------------------ contract
def test_pangaea_run_loop_single_temporal(tiny_weights: tuple[Path, SmartiesViT], caplog: Any) -> None:
    path, ref = tiny_weights
    enc = build("hlsburnscars", weights=path)
    assert isinstance(enc, encoder_module.PangaeaEncoderBase)
    # Attributes PANGAEA's decoders, collate and preprocessors read.
    assert enc.input_bands == {"optical": ["B2", "B3", "B4", "B8A", "B11", "B12"]}
    assert type(enc.input_bands) is dict and type(enc.input_bands["optical"]) is list
    assert (enc.input_size, enc.embed_dim, enc.output_layers, enc.output_dim) == (32, 64, [0, 1], [64, 64])
    assert (enc.multi_temporal, enc.multi_temporal_output, enc.pyramid_output) == (False, False, False)
    assert enc.model_name == "smarties_vitb" and enc.encoder_weights == str(path)

    logger = logging.getLogger("pangaea-test")
    with caplog.at_level(logging.INFO, logger="pangaea-test"):
        enc.load_encoder_weights(logger)
    for name, p in ref.named_parameters():
        torch.testing.assert_close(enc.vit.get_parameter(name), p, rtol=0, atol=0)
    assert "Missing parameters" not in caplog.text and "Incompatible" not in caplog.text
    assert "B8A                   near_infrared_3" in caplog.text  # the band plan goes to PANGAEA's log
    n = len(list(ref.parameters()))
    assert f"Loaded SMARTIES weights from {path} ({n}/{n} parameters)" in caplog.text

    modalities = list(enc.input_bands)  # run.py: collate modalities
    x = {m: torch.randn(2, 6, 32, 32) for m in modalities}
    with torch.no_grad():
        feats = enc(x)
        same_t1 = enc({m: v.unsqueeze(2) for m, v in x.items()})  # (B, C, T=1, H, W) as the dataset yields it
        expected = ref.forward_intermediates(
            x["optical"],
            indices=[0, 1],
            bands=["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
            intermediates_only=True,
        )
    assert isinstance(feats, list) and len(feats) == len(enc.output_layers)
    for f, g, e in zip(feats, same_t1, expected):
        assert f.shape == (2, 64, 2, 2) and f.dtype == torch.float32
        torch.testing.assert_close(f, e)
        torch.testing.assert_close(g, f)


def test_single_temporal_rejects_time_series() -> None:
    enc = build("dynamicen")
    with pytest.raises(ValueError, match="seg_upernet_mt_ltae"):
        enc({"optical": torch.randn(1, 4, 3, 32, 32)})


def test_pangaea_run_loop_multi_temporal() -> None:
    enc = build("dynamicen", ["encoder.multi_temporal=true"])
    assert (enc.multi_temporal, enc.multi_temporal_output) == (True, True)
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        feats = enc({"optical": x})
        per_frame = [enc({"optical": x[:, :, t]}) for t in range(3)]  # 4-D input counts as T = 1
    assert len(feats) == 2
    for level, f in enumerate(feats):
        assert f.shape == (2, 64, 3, 2, 2)
        for t in range(3):
            assert per_frame[t][level].shape == (2, 64, 1, 2, 2)
            torch.testing.assert_close(f[:, :, t], per_frame[t][level][:, :, 0])


def test_early_fusion_of_optical_and_sar() -> None:
    enc = build("sen1floods11")
    opt, sar = torch.randn(1, 13, 32, 32), torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        feats = enc({"optical": opt, "sar": sar})
        # B10 (position 10) is left out; the rest is one band list, one pass.
        kept = torch.cat([opt[:, [i for i in range(13) if i != 10]], sar], dim=1)
        expected = enc.vit.forward_intermediates(
            kept, indices=[0, 1], bands=[f"S2-L2A:{b}" for b in S2_12] + ["VV", "VH"], intermediates_only=True
        )
    for f, e in zip(feats, expected):
        torch.testing.assert_close(f, e)
    with pytest.raises(ValueError, match=r"lacks modalities \['sar'\]"):
        enc({"optical": opt})
    with pytest.raises(ValueError, match=r"expected \(B, 2, H, W\)"):
        enc({"optical": opt, "sar": torch.randn(1, 3, 32, 32)})


def test_padded_bands_are_left_out_of_the_band_average() -> None:
    """A fixed 12-band encoder list on 6-band burn scars: PANGAEA zero-pads 6 channels; they must not count."""
    bands = "[" + ",".join(S2_12) + "]"
    enc = build("hlsburnscars", [f"encoder.input_bands={{optical:{bands}}}"])
    assert enc.input_bands["optical"] == S2_12
    padded = [b for m, b, why in enc.band_plan.dropped if "BandPadding" in why]
    assert padded == ["B1", "B5", "B6", "B7", "B8", "B9"]
    assert enc.band_plan.keep["optical"] == (1, 2, 3, 8, 10, 11)

    data = torch.rand(1, 6, 32, 32)
    x = pangaea_pad(data, ["B2", "B3", "B4", "B8A", "B11", "B12"], S2_12)
    assert x.shape[1] == 12 and x[:, [0, 4, 5, 6, 7, 9]].abs().sum() == 0
    with torch.no_grad():
        feats = enc({"optical": x})
        only_real = enc.vit.forward_intermediates(
            data, indices=[0, 1], bands=["B02", "B03", "B04", "B8A", "B11", "B12"], intermediates_only=True
        )
        with_zeros = enc.vit.forward_intermediates(x, indices=[0, 1], bands=S2_12, intermediates_only=True)
    for f, real, zeros in zip(feats, only_real, with_zeros):
        torch.testing.assert_close(f, real)
        assert (f - zeros).abs().max() > 1e-3  # counting the zeros would have changed the features


# ------------------------------------------------------------------------------------------------ weights
def test_missing_weights_file_names_it_and_where_to_put_it(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with torch.device("meta"):
        enc = instantiate(compose_cfg("hlsburnscars").encoder)
    with pytest.raises(WeightsUnavailableError) as err:
        enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    msg = str(err.value)
    for part in (
        "./pretrained_models/smarties-v1-vitb.safetensors",
        str(tmp_path / "pretrained_models" / "smarties-v1-vitb.safetensors"),
        "hf download gsumbul/SMARTIES-v1-ViT-B smarties-v1-vitb.safetensors",
        "encoder.encoder_weights=",
    ):
        assert part in msg


def test_partial_and_mismatched_checkpoints_are_reported(
    tiny_weights: tuple[Path, SmartiesViT], tmp_path: Path, caplog: Any
) -> None:
    from safetensors.torch import load_file, save_file

    path, ref = tiny_weights
    state = load_file(path)
    del state["norm.bias"]
    state["norm.weight"] = torch.ones(3)
    state["decoder_pred.weight"] = torch.ones(2)  # MAE-only tensor: filtered by the package's weights code
    state["head.weight"] = torch.ones(5, 64)  # fine-tuned head: not part of the encoder
    save_file(state, tmp_path / "partial.safetensors")
    enc = build("hlsburnscars", weights=tmp_path / "partial.safetensors")
    before = enc.vit.norm.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="pangaea-test"):
        enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    assert "Missing parameters:\nnorm.bias: torch.Size([64])" in caplog.text
    assert "norm.weight: expected torch.Size([64]) but found torch.Size([3])" in caplog.text
    assert "ignored checkpoint tensors not in the encoder: ['head.weight']" in caplog.text
    torch.testing.assert_close(enc.vit.norm.weight, before)  # mismatched tensor left alone
    torch.testing.assert_close(enc.vit.blocks[1].mlp.fc2.weight, ref.blocks[1].mlp.fc2.weight)


def test_pos_embed_of_a_224_checkpoint_follows_input_size(tmp_path: Path, caplog: Any) -> None:
    """The released files hold a 14x14 grid; PANGAEA may run another input_size (here 32 -> 2x2)."""
    from timm.layers import resample_abs_pos_embed

    vit = SmartiesViT(img_size=224, embed_dim=64, depth=2, num_heads=2)
    path = save_weights(vit, tmp_path / "grid14.safetensors")
    enc = build("hlsburnscars", weights=path)
    with caplog.at_level(logging.WARNING, logger="pangaea-test"):
        enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    assert caplog.text == ""
    expected = resample_abs_pos_embed(vit.pos_embed, [2, 2], [14, 14], num_prefix_tokens=1, antialias=False)
    torch.testing.assert_close(enc.vit.pos_embed, expected)


def test_pangaea_encoder_and_timm_factory_load_a_file_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both go through the one loader (pretrained.load_pretrained with vit's filter) and end with the same tensors,
    for a file that needs the filter: wrapped keys (``encoder.``) and a 14x14 grid for a 2x2 input."""
    from safetensors.torch import save_file

    from smarties_terratorch import pretrained
    from smarties_terratorch.models.vit import smarties_vit_tiny_patch16

    src = SmartiesViT(img_size=224, embed_dim=64, depth=2, num_heads=2)
    path = tmp_path / "wrapped.safetensors"
    save_file({f"encoder.{k}": v.contiguous() for k, v in src.state_dict().items()}, str(path))
    reads = []
    read_checkpoint = pretrained.read_checkpoint

    def spy(source: Any, model: Any, **kwargs: Any) -> Any:
        reads.append((Path(source), type(model).__name__, kwargs["filter_fn"].__name__, kwargs["check_fn"].__name__))
        return read_checkpoint(source, model, **kwargs)

    monkeypatch.setattr(pretrained, "read_checkpoint", spy)
    enc = build("hlsburnscars", weights=path)
    enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    model = smarties_vit_tiny_patch16(img_size=32, ckpt_path=path)
    assert reads == [(path, "SmartiesViT", "checkpoint_filter_fn", "check_architecture")] * 2
    ours, theirs = enc.vit.state_dict(), model.state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key


def test_wrong_architecture_and_null_weights(tiny_weights: tuple[Path, SmartiesViT], caplog: Any) -> None:
    path, _ = tiny_weights
    enc = build("hlsburnscars", ["encoder.depth=3", "encoder.output_layers=[0,2]"], weights=path)
    with pytest.raises(CheckpointError, match="2 blocks"):
        enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    enc = build("hlsburnscars")
    with caplog.at_level(logging.INFO, logger="pangaea-test"):
        enc.load_encoder_weights(logging.getLogger("pangaea-test"))
    assert "random initialisation" in caplog.text


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    ("name", "dim", "depth", "heads", "layers"),
    [("smarties_vitb", 768, 12, 12, [3, 5, 7, 11]), ("smarties_vitl", 1024, 24, 16, [7, 11, 15, 23])],
)
def test_shipped_encoder_configs(name: str, dim: int, depth: int, heads: int, layers: list[int]) -> None:
    cfg = compose_cfg("dynamicen", name)
    enc_cfg = cfg.encoder
    # PANGAEA's preprocessors read these keys from the encoder YAML itself.
    assert enc_cfg.input_size == 224 and enc_cfg.input_bands == cfg.dataset.bands
    assert enc_cfg._target_ == "smarties_terratorch.pangaea.SmartiesEncoder"
    assert enc_cfg.encoder_weights == f"./pretrained_models/smarties-v1-{name[-4:]}.safetensors"
    assert (enc_cfg.output_layers, enc_cfg.output_dim) == (layers, dim)
    with torch.device("meta"):
        enc = instantiate(enc_cfg)
    assert (enc.embed_dim, len(enc.vit.blocks), enc.vit.blocks[0].attn.num_heads) == (dim, depth, heads)
    assert enc.output_dim == [dim] * 4 and enc.output_layers == layers and enc.model_name == name
    assert sum(p.numel() for p in enc.parameters()) > (85e6 if dim == 768 else 300e6)


def test_configs_ship_in_the_package() -> None:
    from importlib import resources

    root = resources.files("smarties_terratorch.pangaea.configs")
    names = {"encoder/smarties_vitb.yaml", "encoder/smarties_vitl.yaml", "smarties/band_maps.yaml"}
    assert all(root.joinpath(n).is_file() for n in names)


# ------------------------------------------------------------------------------------------------ band maps
EXPECTED = {  # projection indices of the kept channels and dropped channels
    "hlsburnscars": ([1, 4, 6, 11, 13, 14], []),
    "dynamicen": ([1, 4, 6, 9], []),  # Planet "B5" is NIR (P9), not S2 red edge (P7)
    "spacenet7": ([5, 3, 2], []),  # 8-bit Planet RGB: VHR ranges red_1/green_1/blue_3, not S2's
    "spacenet7cd": ([5, 3, 2], []),
    "xview2": ([5, 3, 2], []),
    "fivebillionpixels": ([9, 5, 3, 2], []),
    "sen1floods11": ([0, 1, 4, 6, 7, 8, 10, 9, 11, 12, 13, 14, 15, 16], ["optical:B10"]),
    "mados": ([0, 1, 4, 6, 7, 8, 10, 9, 11, 13, 14], []),
    "pastis": ([1, 4, 6, 7, 8, 10, 9, 11, 13, 14, 15, 16], ["sar:VV-VH"]),
    "croptypemapping": ([1, 4, 6, 7, 8, 10, 9, 11, 13, 14, 15, 16], []),
    "ai4smallfarms": ([1, 4, 6, 9], []),
    "biomassters": ([1, 4, 6, 7, 8, 10, 9, 11, 13, 14, 15, 16, 15, 16], ["optical:CLP"]),
}


def test_every_dataset_has_an_expectation() -> None:
    assert sorted(EXPECTED) == DATASETS


@pytest.mark.parametrize("dataset", DATASETS)
def test_band_map(dataset: str) -> None:
    indices, dropped = EXPECTED[dataset]
    if dataset == "biomassters":  # ascending + descending SAR resolve to the same ranges: an explicit opt-in
        with pytest.raises(ValueError, match="encoder.allow_duplicate_bands=true"):
            plan(dataset)
        result = plan(dataset, allow_duplicates=True)
    else:
        result = plan(dataset)
    assert result.bands.projection_indices == indices
    assert [f"{m}:{b}" for m, b, _ in result.dropped] == dropped
    assert all("mapped to null in band_map" in why for *_, why in result.dropped)


def test_misleading_names_differ_from_the_sentinel2_reading() -> None:
    s2 = plan("hlsburnscars").bands  # HLS is Sentinel-2-like: the S2 reading is the right one
    assert s2.range_keys == [
        "blue_1",
        "green_2",
        "red_2",
        "near_infrared_3",
        "short_wave_infrared_3",
        "short_wave_infrared_4",
    ]
    den = plan("dynamicen").bands
    assert den[3].name == "B5" and den[3].range_key == "near_infrared_1" and "PLANETSCOPE" in den[3].rule
    assert plan("ai4smallfarms").bands[3].range_key == "near_infrared_1"  # S2 B8
    assert plan("mados").bands[4].range_key == "red_edge_1"  # a real S2 B5 stays red edge
    assert plan("spacenet7").bands.range_keys == ["red_1", "green_1", "blue_3"]


def test_unknown_band_says_how_to_map_it() -> None:
    cfg = OmegaConf.to_container(compose_cfg("hlsburnscars").encoder, resolve=True)
    with pytest.raises(ValueError, match=r"\+\+encoder\.dataset_band_maps\.HLSBurnScars\.optical\.<BAND>"):
        plan_bands({"optical": ["B2", "FOO"]}, cfg["band_map"], cfg["dataset_band_maps"], "HLSBurnScars")
    with pytest.raises(ValueError, match="No band"):
        plan_bands({"optical": ["B10"]}, cfg["band_map"])


def test_command_line_band_map_for_a_new_dataset() -> None:
    overrides = ["dataset.dataset_name=MyAerial", "++encoder.dataset_band_maps.MyAerial.optical.B4=red_2"]
    enc = OmegaConf.to_container(compose_cfg("xview2", overrides=overrides).encoder, resolve=True)
    keys = ("input_bands", "band_map", "dataset_band_maps", "dataset_name", "dataset_bands")
    # B4 from the new entry; B3/B2 fall back to band_map (Sentinel-2 reading).
    assert plan_bands(**{k: enc[k] for k in keys}).bands.projection_indices == [6, 4, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output_layers": [1, 0]}, "strictly increasing"),
        ({"output_layers": [0, 2]}, "strictly increasing"),
        ({"output_dim": 32}, "must be embed_dim"),
        ({"input_size": 40}, "multiple of patch_size"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    args = {"input_bands": {"optical": ["B2"]}, "embed_dim": 64, "depth": 2, "num_heads": 2, "output_layers": [0, 1]}
    with pytest.raises(ValueError, match=match):
        SmartiesEncoder(**{**args, **kwargs})


# ------------------------------------------------------------------------------------------------ PANGAEA base
FAKE_BASE = '''
import torch.nn as nn


class Encoder(nn.Module):
    """Minimal copy of the contract of pangaea.encoders.base.Encoder (constructor, attributes, helpers)."""

    def __init__(self, model_name, input_bands, input_size, embed_dim, output_layers, output_dim,
                 multi_temporal, multi_temporal_output, pyramid_output, encoder_weights, download_url):
        super().__init__()
        self.model_name = model_name
        self.input_bands = input_bands
        self.input_size = input_size
        self.embed_dim = embed_dim
        self.output_layers = output_layers
        self.output_dim = [output_dim for _ in output_layers] if isinstance(output_dim, int) else list(output_dim)
        self.encoder_weights = encoder_weights
        self.multi_temporal = multi_temporal
        self.multi_temporal_output = multi_temporal_output
        self.pyramid_output = pyramid_output
        self.download_url = download_url
        self.fake_base_initialised = True

    def load_encoder_weights(self, logger):
        raise NotImplementedError

    def enforce_single_temporal(self):
        return

    def parameters_warning(self, missing, incompatible_shape, logger):
        if missing:
            logger.warning("FAKE-PANGAEA missing: %s", sorted(missing))

    def freeze(self):
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x):
        raise NotImplementedError
'''


@pytest.fixture
def fresh_import(tmp_path: Path, monkeypatch: Any) -> Iterator[Any]:
    """Import ``smarties_terratorch.pangaea.encoder`` anew with ``tmp_path`` first on ``sys.path``; restore after."""
    saved = {k: v for k, v in sys.modules.items() if k == "pangaea" or k.startswith("pangaea.")}
    original = sys.modules["smarties_terratorch.pangaea.encoder"]
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(base_source: str) -> Any:
        pkg = tmp_path / "pangaea" / "encoders"
        pkg.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pangaea" / "__init__.py").write_text("")
        (pkg / "__init__.py").write_text("")
        (pkg / "base.py").write_text(textwrap.dedent(base_source))
        for name in [k for k in sys.modules if k == "pangaea" or k.startswith("pangaea.")]:
            del sys.modules[name]
        del sys.modules["smarties_terratorch.pangaea.encoder"]
        importlib.invalidate_caches()
        return importlib.import_module("smarties_terratorch.pangaea.encoder")

    yield load
    for name in [k for k in sys.modules if k == "pangaea" or k.startswith("pangaea.")]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.modules["smarties_terratorch.pangaea.encoder"] = original
    sys.modules["smarties_terratorch.pangaea"].encoder = original


def test_without_pangaea_uses_the_stand_in() -> None:
    assert encoder_module.PANGAEA_AVAILABLE is False
    assert SmartiesEncoder.__mro__[1] is encoder_module._StandInEncoder


def test_subclasses_pangaea_encoder_when_importable(fresh_import: Any, caplog: Any) -> None:
    module = fresh_import(FAKE_BASE)
    from pangaea.encoders.base import Encoder

    assert module.PANGAEA_AVAILABLE is True and issubclass(module.SmartiesEncoder, Encoder)
    enc = module.SmartiesEncoder(
        input_bands={"optical": ["B2", "B3", "B4"]},
        input_size=32,
        embed_dim=64,
        depth=2,
        num_heads=2,
        output_layers=[0, 1],
        output_dim=64,
        dataset_bands={"optical": ["B2", "B3"]},
    )
    assert isinstance(enc, Encoder) and enc.fake_base_initialised
    assert enc.output_dim == [64, 64] and enc.pyramid_output is False
    with caplog.at_level(logging.WARNING, logger="pangaea-test"):
        enc.parameters_warning({"norm.bias": torch.Size([64])}, {}, logging.getLogger("pangaea-test"))
    assert "FAKE-PANGAEA missing" in caplog.text  # PANGAEA's own helper, not the stand-in's
    with torch.no_grad():
        out = enc({"optical": torch.randn(1, 3, 32, 32)})
    assert [o.shape for o in out] == [(1, 64, 2, 2)] * 2


def test_broken_pangaea_install_is_not_hidden(fresh_import: Any) -> None:
    with pytest.raises(ModuleNotFoundError, match="gdown_not_installed"):
        fresh_import("import gdown_not_installed\n" + FAKE_BASE)


# ------------------------------------------------------------------------------------------------ shipped forward
@pytest.mark.slow
@pytest.mark.parametrize(("name", "dataset"), [("smarties_vitb", "hlsburnscars"), ("smarties_vitl", "sen1floods11")])
def test_shipped_config_forward(name: str, dataset: str) -> None:
    """Full-size ViT-B/L (random weights) from the shipped configs, one 64x64 forward."""
    cfg = compose_cfg(dataset, name, ["encoder.encoder_weights=null", "encoder.input_size=64"])
    enc = instantiate(cfg.encoder).eval()
    x = {m: torch.randn(1, len(b), 64, 64) for m, b in enc.input_bands.items()}
    with torch.no_grad():
        feats = enc(x)
    assert [tuple(f.shape) for f in feats] == [(1, enc.embed_dim, 4, 4)] * 4
    assert all(torch.isfinite(f).all() for f in feats)


def test_encoder_stats_normalise_raw_input_through_the_band_plan() -> None:
    """``stats``: the encoder takes raw values; rows follow the band plan (PlanetScope ``B5`` is NIR, not B05)."""
    from smarties_terratorch.normalization import SmartiesNormalize

    args = {"input_bands": {"optical": ["B2", "B3", "B4", "B5"]}, "band_map": {"optical": {"B5": "near_infrared_1"}},
            "embed_dim": 64, "depth": 2, "num_heads": 2, "output_layers": [0, 1], "input_size": 32}  # fmt: skip
    plain, normed = SmartiesEncoder(**args), SmartiesEncoder(**args, stats="S2-L2A")
    normed.load_state_dict(plain.state_dict(), strict=True)
    assert normed.vit.input_norm.bands == ("B02", "B03", "B04", "B08")
    x = torch.rand(2, 4, 32, 32) * 3000
    reference = plain({"optical": SmartiesNormalize.from_spec("S2-L2A", ["B02", "B03", "B04", "B08"])(x)})
    assert all(torch.equal(a, b) for a, b in zip(normed({"optical": x}), reference))
