"""The variant table (``models.vit.default_cfgs``) is the one architecture catalogue: every consumer agrees with it."""

from __future__ import annotations

import logging

import pytest
import torch

from smarties_terratorch import backbone, cli
from smarties_terratorch.checkpoints import CheckpointError, WeightsUnavailableError
from smarties_terratorch.models import vit
from smarties_terratorch.models.vit import check_architecture, default_cfgs, default_weights_for, variant_of
from smarties_terratorch.pangaea.encoder import SmartiesEncoder
from smarties_terratorch.weights import WEIGHTS

EXPECTED = {  # the published architectures (depth, width, heads, default weights)
    "smarties_vit_tiny_patch16": (2, 64, 2, None),
    "smarties_vit_base_patch16": (12, 768, 12, "smarties-v1-vitb"),
    "smarties_vit_large_patch16": (24, 1024, 16, "smarties-v1-vitl"),
}


def test_table_rows() -> None:
    assert {n: (c.depth, c.embed_dim, c.num_heads, c.weights) for n, c in default_cfgs.items()} == EXPECTED
    assert vit.VARIANTS == {n: c.model_kwargs() for n, c in default_cfgs.items()}


@pytest.mark.parametrize("name", list(default_cfgs))
def test_factories_build_the_row(name: str) -> None:
    cfg = default_cfgs[name]
    with torch.device("meta"):
        model = getattr(vit, name)()
        tt = backbone.TERRATORCH_BACKBONE_REGISTRY.build(name)
    for m in (model, tt):
        assert (len(m.blocks), m.embed_dim, m.blocks[0].attn.num_heads) == (cfg.depth, cfg.embed_dim, cfg.num_heads)
    assert variant_of(cfg.embed_dim, cfg.depth) == name
    assert cfg.description in getattr(backbone, name).__doc__


def test_terratorch_registers_every_row() -> None:
    names = {n for n in default_cfgs if n in backbone.TERRATORCH_BACKBONE_REGISTRY}
    assert names == set(default_cfgs)
    assert all(callable(getattr(backbone, n)) and callable(getattr(vit, n)) for n in default_cfgs)


def test_cli_architectures_are_the_table() -> None:
    assert set(cli.ARCHS) == set(default_cfgs)


def test_weights_defaults_follow_the_table() -> None:
    for name, cfg in default_cfgs.items():
        if cfg.weights is None:
            with pytest.raises(WeightsUnavailableError, match=name):
                default_weights_for(name)
        else:
            assert default_weights_for(name).name == cfg.weights
            assert WEIGHTS[cfg.weights].arch == name
    assert {w.arch for w in WEIGHTS.values()} <= set(default_cfgs)
    for w in WEIGHTS.values():  # fine-tuned files sit on the encoder of their own variant
        assert w.base is None or WEIGHTS[w.base].arch == w.arch


def test_checkpoint_mismatch_names_both_variants() -> None:
    with torch.device("meta"):
        base_sd = vit.smarties_vit_base_patch16().state_dict()
        large = vit.smarties_vit_large_patch16()
    with pytest.raises(CheckpointError, match=r"ViT-B/16 \(smarties_vit_base_patch16\).*ViT-L/16"):
        check_architecture(base_sd, large, "base.safetensors")


@pytest.mark.parametrize("name", ["smarties_vit_base_patch16", "smarties_vit_large_patch16"])
def test_pangaea_missing_weights_message_names_the_table_weights(name: str, tmp_path) -> None:
    cfg = default_cfgs[name]
    with torch.device("meta"):
        enc = SmartiesEncoder(
            encoder_weights=str(tmp_path / "missing.safetensors"),
            input_bands={"optical": ["B2", "B3", "B4"]},
            input_size=32,
            embed_dim=cfg.embed_dim,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            output_layers=[cfg.depth - 1],
        )
    with pytest.raises(WeightsUnavailableError, match=WEIGHTS[cfg.weights].repo_id):
        enc.load_encoder_weights(logging.getLogger("test"))
