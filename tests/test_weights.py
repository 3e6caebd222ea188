"""Checkpoints: declared weights, local/Hub resolution (offline), strict key checks, bad files, round trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
from safetensors.torch import load_file, save_file

import smarties_terratorch.weights as weights
from smarties_terratorch.models.vit import smarties_vit_base_patch16, smarties_vit_tiny_patch16
from smarties_terratorch.weights import (
    WEIGHTS,
    CheckpointError,
    WeightsUnavailableError,
    get_weights,
    load_pretrained,
    load_state_dict,
    save_weights,
)

REV = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def tiny_file(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = smarties_vit_tiny_patch16(sensor="S2").eval()
    return model, save_weights(model, tmp_path / "tiny.safetensors")


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(2, 12, 32, 32)
    with torch.inference_mode():
        return torch.equal(a(x, sensor="S2"), b(x, sensor="S2"))


def test_declared_weights() -> None:
    assert {"smarties-v1-vitb", "smarties-v1-vitl"} <= set(WEIGHTS)
    assert len(WEIGHTS) == 14
    vitb = get_weights("smarties-v1-vitb")
    assert (vitb.repo_id, vitb.filename, vitb.arch) == (
        "gsumbul/SMARTIES-v1-ViT-B",
        "smarties-v1-vitb.safetensors",
        "smarties_vit_base_patch16",
    )
    mm = get_weights("smarties-v1-vitb-bigearthnetmm-linprobe")
    assert mm.model_kwargs() == {"num_classes": 19, "head_type": "linprobe", "num_modalities": 2}
    assert mm.repo_id == "gsumbul/SMARTIES-v1-finetuned-models" and mm.base == "smarties-v1-vitb"
    with pytest.raises(KeyError, match="smarties-v1-vitl"):
        get_weights("smarties-v2")


def test_round_trip(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    model, path = tiny_file
    assert set(load_file(path)) == set(model.state_dict())
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file
    loaded = smarties_vit_tiny_patch16(ckpt_path=path, sensor="S2").eval()
    assert _same_outputs(model, loaded)


def test_head_is_saved_only_when_asked(tmp_path: Path) -> None:
    model = smarties_vit_tiny_patch16(num_classes=10)
    assert not any(k.startswith("head.") for k in load_file(save_weights(model, tmp_path / "enc.safetensors")))
    with_head = save_weights(model, tmp_path / "ft.safetensors", include_head=True)
    assert {"head.weight", "head.bias"} <= set(load_file(with_head))


def test_encoder_file_into_model_with_head_and_back(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, path = tiny_file
    clf = smarties_vit_tiny_patch16(num_classes=19, head_type="linprobe")
    report = load_pretrained(clf, path)
    # (BatchNorm fills a missing num_batches_tracked itself, so it is not reported.)
    assert set(report.missing_keys) == {"head.0.running_mean", "head.0.running_var", "head.1.weight", "head.1.bias"}
    ft = save_weights(clf, tmp_path / "lp.safetensors", include_head=True)
    # An encoder-only model takes a fine-tuned file's encoder and says it ignored the head.
    report = load_pretrained(smarties_vit_tiny_patch16(), ft)
    assert "head.1.weight" in report.ignored_keys
    with pytest.raises(CheckpointError, match="head.1.weight"):
        load_pretrained(smarties_vit_tiny_patch16(num_classes=10, head_type="linprobe"), ft)


def test_wrapped_torch_checkpoint_with_prefixes_and_mae_keys(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    model, _ = tiny_file
    sd = {f"model.encoder.{k}": v for k, v in model.state_dict().items()}
    sd |= {"model.mask_token": torch.zeros(1, 1, 512), "model.decoder_embed.weight": torch.zeros(512, 64)}
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    loaded = smarties_vit_tiny_patch16(ckpt_path=path).eval()
    assert _same_outputs(model, loaded)


def test_pos_embed_resampled_to_model_grid(tiny_file: tuple[torch.nn.Module, Path]) -> None:
    _, path = tiny_file  # saved at 224 (14x14 grid)
    model = smarties_vit_tiny_patch16(img_size=64, ckpt_path=path)
    assert model.pos_embed.shape == (1, 17, 64)


def test_other_architecture_is_named(tmp_path: Path) -> None:
    # Only the tensors the check reads: a ViT-L-shaped file without 1.2 GB of weights.
    path = tmp_path / "vitl.safetensors"
    save_file({"cls_token": torch.zeros(1, 1, 1024), "blocks.23.norm1.weight": torch.ones(1024)}, path)
    with torch.device("meta"):
        vitb = smarties_vit_base_patch16()
    with pytest.raises(CheckpointError, match=r"ViT-L/16 .*but the model is ViT-B/16"):
        load_pretrained(vitb, path)


def test_strict_key_check(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    model, _ = tiny_file
    sd = model.state_dict()
    sd.pop("blocks.1.mlp.fc2.bias")
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.safetensors"
    save_file(sd, path)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \['blocks.1.mlp.fc2.bias'\], 1 unexpected"):
        load_pretrained(smarties_vit_tiny_patch16(), path)
    report = load_pretrained(smarties_vit_tiny_patch16(), path, strict=False)
    assert report.missing_keys == ["blocks.1.mlp.fc2.bias"] and report.unexpected_keys == ["extra.weight"]


def test_bad_files(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, path = tiny_file
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state_dict(truncated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state_dict(garbage)
    with pytest.raises(CheckpointError, match="unsupported checkpoint type"):
        load_state_dict(path.with_suffix(".h5"))


class Payload:  # an arbitrary object: unpickling it would run our code, weights_only must refuse
    def __reduce__(self) -> tuple:
        return (print, ("unpickled!",))


def test_arbitrary_pickles_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 64), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="never unpickle"):
        load_state_dict(path)
    assert "unpickled!" not in capsys.readouterr().out


def test_missing_local_file_and_tiny_without_release(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="nope.safetensors.*not found"):
        smarties_vit_tiny_patch16(ckpt_path=tmp_path / "nope.safetensors")
    with pytest.raises(WeightsUnavailableError, match="No released weights"):
        smarties_vit_tiny_patch16(pretrained=True)
    with pytest.raises(WeightsUnavailableError, match="directory"):
        load_pretrained(smarties_vit_tiny_patch16(), tmp_path)


def test_hub_needs_a_pinned_revision() -> None:
    with torch.device("meta"):
        model = smarties_vit_base_patch16()
    with pytest.raises(WeightsUnavailableError, match=r"No pinned Hub revision.*revision=.*huggingface-cli download"):
        load_pretrained(model, "smarties-v1-vitb")


def test_hub_download_uses_repo_file_revision(tiny_file: tuple[torch.nn.Module, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    model, path = tiny_file
    calls = []

    def fake_download(repo_id: str, filename: str, revision: str, cache_dir: object) -> str:
        calls.append((repo_id, filename, revision))
        return str(path)

    monkeypatch.setattr(weights, "hf_hub_download", fake_download)
    spec = weights.SmartiesWeights("t", "smarties_vit_tiny_patch16", "org/repo", "tiny.safetensors", revision=REV)
    loaded = smarties_vit_tiny_patch16().eval()
    load_pretrained(loaded, spec)
    assert calls == [("org/repo", "tiny.safetensors", REV)]
    assert _same_outputs(model, loaded)
    bad = weights.SmartiesWeights("t", "x", "org/repo", "tiny.safetensors", revision=REV, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="sha256"):
        load_pretrained(smarties_vit_tiny_patch16(), bad)


def test_offline_without_cache_names_file_repo_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with torch.device("meta"):
        model = smarties_vit_base_patch16()
    with pytest.raises(WeightsUnavailableError) as err:
        load_pretrained(model, "smarties-v1-vitb", revision=REV, cache_dir=tmp_path)
    message = str(err.value)
    for part in ("smarties-v1-vitb.safetensors", "gsumbul/SMARTIES-v1-ViT-B", REV, "HF_HUB_OFFLINE", "ckpt_path"):
        assert part in message


def test_offline_with_populated_hub_cache(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Hub cache layout huggingface_hub reads offline: models--org--name/snapshots/<commit>/<file>.
    model, path = tiny_file
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / REV
    snapshot.mkdir(parents=True)
    (snapshot / "tiny.safetensors").write_bytes(path.read_bytes())
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = weights.SmartiesWeights("t", "x", "org/tiny", "tiny.safetensors", revision=REV, sha256=digest)
    loaded = smarties_vit_tiny_patch16().eval()
    report = load_pretrained(loaded, spec, cache_dir=tmp_path / "hub")
    assert report.path.parent == snapshot
    assert _same_outputs(model, loaded)
