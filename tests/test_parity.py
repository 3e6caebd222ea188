"""Released-forward parity: our encoder reproduces the authors' released code on a tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from smarties_terratorch.models.vit import build_sincos_pos_embed, smarties_vit_tiny_patch16
from smarties_terratorch.pretrained import load_pretrained

TOL = 1e-5
CASES = json.loads((Path(__file__).parent / "data" / "parity" / "cases.json").read_text())


@pytest.fixture(scope="module")
def model(parity_dir: Path) -> torch.nn.Module:
    cfg = CASES["model"]
    m = smarties_vit_tiny_patch16(img_size=cfg["img_size"], ckpt_path=parity_dir / "tiny_encoder.safetensors")
    assert (m.embed_dim, len(m.blocks), m.blocks[0].attn.num_heads) == (cfg["embed_dim"], cfg["depth"], cfg["num_heads"])
    return m.eval()


@pytest.fixture(scope="module")
def cases(parity_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(parity_dir / "cases.safetensors")


def test_loader_reports_exact_layout(parity_dir: Path) -> None:
    report = load_pretrained(smarties_vit_tiny_patch16(img_size=64), parity_dir / "tiny_encoder.safetensors")
    assert report.missing_keys == [] and report.unexpected_keys == [] and report.ignored_keys == []


@pytest.mark.parametrize("case", sorted(CASES["cases"]))
def test_released_forward(model: torch.nn.Module, cases: dict[str, torch.Tensor], case: str) -> None:
    spec = CASES["cases"][case]
    x = cases[f"{case}.input"]
    assert model.resolve(spec["bands"]).projection_indices == spec["projection_indices"]
    with torch.inference_mode():
        dense = model.forward_dense(x, bands=spec["bands"])
        cls = model(x, bands=spec["bands"])
    assert dense.shape == cases[f"{case}.last_block_patch_tokens"].shape
    assert (dense - cases[f"{case}.last_block_patch_tokens"]).abs().max() <= TOL
    assert (cls - cases[f"{case}.cls_after_norm"]).abs().max() <= TOL


def test_sincos_table_matches_release(parity_dir: Path) -> None:
    released = load_file(parity_dir / "tiny_encoder.safetensors")["pos_embed"]
    assert torch.allclose(build_sincos_pos_embed(64, (4, 4)), released, atol=1e-7)
