"""Checkpoints: declared weights, local/Hub resolution (offline), strict key checks, bad files, round trip."""

from __future__ import annotations

import fractions
import hashlib
import shutil
import subprocess
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from smarties_terratorch import hub as hub_module
from smarties_terratorch.checkpoints import CheckpointError, WeightsUnavailableError, load_state_dict, read_task_checkpoint
from smarties_terratorch.hub import fetch_hub_weights, resolve_revision
from smarties_terratorch.models import vit
from smarties_terratorch.models.vit import smarties_vit_base_patch16, smarties_vit_tiny_patch16
from smarties_terratorch.pretrained import load_pretrained, save_weights
from smarties_terratorch.weights import WEIGHTS, SmartiesWeights, get_weights

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
    with pytest.raises(CheckpointError, match=r"evil.pth contains pickled code/objects \(builtins.print\)") as err:
        load_state_dict(path)
    assert "weights_only" not in str(err.value)
    assert "unpickled!" not in capsys.readouterr().out


def test_missing_local_file_and_tiny_without_release(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="nope.safetensors.*not found"):
        smarties_vit_tiny_patch16(ckpt_path=tmp_path / "nope.safetensors")
    with pytest.raises(WeightsUnavailableError, match="No released weights"):
        smarties_vit_tiny_patch16(pretrained=True)
    with pytest.raises(WeightsUnavailableError, match="directory"):
        load_pretrained(smarties_vit_tiny_patch16(), tmp_path)


@pytest.fixture
def hub(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local server answering like the Hub, serving the tiny file as ``org/tiny``'s ``tiny.safetensors``."""
    from http_server import Server, use_hub

    srv = Server({}, models={("org/tiny", "tiny.safetensors"): tiny_file[1].read_bytes()})
    use_hub(monkeypatch, srv.hub_url, cache=str(tmp_path / "hub-cache"))
    yield srv
    srv.close()


def test_unpinned_weights_resolve_the_current_commit(
    hub, tiny_file: tuple[torch.nn.Module, Path], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from http_server import HUB_COMMIT

    model, path = tiny_file
    spec = SmartiesWeights("t", "smarties_vit_tiny_patch16", "org/tiny", "tiny.safetensors")
    assert resolve_revision(spec, "abc") == "abc"  # the caller's revision wins, nothing asked
    assert hub.requests == []
    with caplog.at_level("WARNING", logger="smarties_terratorch.hub"):
        fetched = fetch_hub_weights(spec)
    assert f"org/tiny at commit {HUB_COMMIT} (not pinned by this package)" in caplog.text
    assert ("GET", "/hub/api/models/org/tiny", None) in hub.requests
    assert any(p == f"/hub/org/tiny/resolve/{HUB_COMMIT}/tiny.safetensors" for _, p, _ in hub.requests)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert fetched.record() == {"repo_id": "org/tiny", "revision": HUB_COMMIT, "pinned": False, "sha256": digest,
                                "path": str(fetched.path)}
    # pretrained=True in the Python factory goes through the same resolution
    monkeypatch.setattr(vit, "default_weights_for", lambda arch: spec)
    loaded = smarties_vit_tiny_patch16(pretrained=True, sensor="S2").eval()
    assert _same_outputs(model, loaded)
    # offline (or the Hub gone): the newest cached commit, said so
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    caplog.clear()
    with caplog.at_level("WARNING", logger="smarties_terratorch.hub"):
        assert resolve_revision(spec) == HUB_COMMIT
    assert f"at cached commit {HUB_COMMIT}" in caplog.text


def test_declared_revision_and_sha256_are_honoured(hub, tiny_file: tuple[torch.nn.Module, Path]) -> None:
    from http_server import HUB_COMMIT

    digest = hashlib.sha256(tiny_file[1].read_bytes()).hexdigest()
    spec = SmartiesWeights("t", "x", "org/tiny", "tiny.safetensors", revision=HUB_COMMIT, sha256=digest)
    fetched = fetch_hub_weights(spec)
    assert fetched.pinned and fetched.revision == HUB_COMMIT and fetched.sha256 == digest
    assert not any("/api/models/" in p for _, p, _ in hub.requests)  # a pin is never re-resolved
    bad = SmartiesWeights("t", "x", "org/tiny", "tiny.safetensors", revision=HUB_COMMIT, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="expected 0{64}"):
        fetch_hub_weights(bad)


def test_unresolvable_commit_names_repo_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with torch.device("meta"):
        model = smarties_vit_base_patch16()
    with pytest.raises(WeightsUnavailableError, match=r"gsumbul/SMARTIES-v1-ViT-B.*HF_HUB_OFFLINE.*hf download"):
        load_pretrained(model, "smarties-v1-vitb", cache_dir=tmp_path)


def test_hub_download_uses_repo_file_revision(tiny_file: tuple[torch.nn.Module, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    model, path = tiny_file
    calls = []

    def fake_download(repo_id: str, filename: str, revision: str, cache_dir: object) -> str:
        calls.append((repo_id, filename, revision))
        return str(path)

    monkeypatch.setattr(hub_module, "hf_hub_download", fake_download)
    monkeypatch.setattr(hub_module, "_hub_sha256", lambda w, revision: None)  # the Hub is not asked in this test
    spec = SmartiesWeights("t", "smarties_vit_tiny_patch16", "org/repo", "tiny.safetensors", revision=REV)
    loaded = smarties_vit_tiny_patch16().eval()
    load_pretrained(loaded, spec)
    assert calls == [("org/repo", "tiny.safetensors", REV)]
    assert _same_outputs(model, loaded)
    bad = SmartiesWeights("t", "x", "org/repo", "tiny.safetensors", revision=REV, sha256="0" * 64)
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
    spec = SmartiesWeights("t", "x", "org/tiny", "tiny.safetensors", revision=REV, sha256=digest)
    loaded = smarties_vit_tiny_patch16().eval()
    report = load_pretrained(loaded, spec, cache_dir=tmp_path / "hub")
    assert report.path.parent == snapshot
    assert _same_outputs(model, loaded)


# ------------------------------------------------------------------------------------------------ task checkpoints
class Touch:  # unpickling it would create a file: proof that code from the checkpoint ran
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (subprocess.call, (["touch", str(self.marker)],))


@pytest.fixture(scope="module")
def task_ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What ``terratorch fit`` writes: ``<version>/checkpoints/epoch=0.ckpt`` beside ``<version>/hparams.yaml``."""
    from terratorch.tasks import SemanticSegmentationTask

    import smarties_terratorch.backbone  # noqa: F401 - registers the backbones

    model_args = {"backbone": "smarties_vit_tiny_patch16", "backbone_bands": ["S2:B2", "S2:B3", "S2:B4"],
                  "necks": [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}],
                  "decoder": "FCNDecoder", "num_classes": 3}  # fmt: skip
    task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce")
    hparams = {"_class_path": "terratorch.tasks.SemanticSegmentationTask", **task.hparams}
    ckpt = {"epoch": 0, "global_step": 1, "pytorch-lightning_version": "2.6.0", "state_dict": task.state_dict(),
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
            "loops": {}, "callbacks": {}, "hparams_name": "kwargs", "hyper_parameters": hparams}  # fmt: skip
    root = tmp_path_factory.mktemp("task")
    return {"ckpt": ckpt, "hparams": dict(hparams), "root": root}


def _write_run(root: Path, ckpt: dict, yaml_hparams: dict | None) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    if yaml_hparams is not None:
        (root / "hparams.yaml").write_text(yaml.safe_dump(yaml_hparams))
    torch.save(ckpt, root / "checkpoints" / "epoch=0.ckpt")
    return root / "checkpoints" / "epoch=0.ckpt"


def test_task_checkpoint_round_trip(task_ckpt: dict, tmp_path: Path) -> None:
    path = _write_run(tmp_path / "v0", task_ckpt["ckpt"], None)
    sd, hparams = read_task_checkpoint(path)
    assert hparams == task_ckpt["hparams"]
    assert sd.keys() == task_ckpt["ckpt"]["state_dict"].keys()
    assert all(torch.equal(sd[k], v) for k, v in task_ckpt["ckpt"]["state_dict"].items())


def test_task_checkpoint_objects_in_hparams_read_from_yaml(task_ckpt: dict, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    ckpt = {**task_ckpt["ckpt"], "hyper_parameters": {**task_ckpt["hparams"], "extra": Touch(marker)}}
    path = _write_run(tmp_path / "v0", ckpt, {**task_ckpt["hparams"], "lr": 0.5})
    sd, hparams = read_task_checkpoint(path)
    assert not marker.exists()
    assert hparams["lr"] == 0.5 and hparams["model_args"] == task_ckpt["hparams"]["model_args"]  # from the YAML
    assert torch.equal(sd["model.head.head.2.weight"], task_ckpt["ckpt"]["state_dict"]["model.head.head.2.weight"])
    # without the YAML beside it: refused, naming the file and the object; nothing ran
    (tmp_path / "v0" / "hparams.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"epoch=0.ckpt contains pickled code/objects \(subprocess.call\)") as err:
        read_task_checkpoint(path)
    assert "--trust-checkpoint" in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()


def test_task_checkpoint_objects_in_state_dict_refused_even_with_yaml(task_ckpt: dict, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    ckpt = {**task_ckpt["ckpt"], "state_dict": {**task_ckpt["ckpt"]["state_dict"], "x": Touch(marker)}}
    path = _write_run(tmp_path / "v0", ckpt, task_ckpt["hparams"])
    with pytest.raises(CheckpointError, match="contains pickled code/objects"):
        read_task_checkpoint(path)
    assert not marker.exists()


def test_task_checkpoint_trust(task_ckpt: dict, tmp_path: Path) -> None:
    ckpt = {**task_ckpt["ckpt"], "hyper_parameters": {**task_ckpt["hparams"], "ratio": fractions.Fraction(1, 3)}}
    path = _write_run(tmp_path / "v0", ckpt, None)
    with pytest.raises(CheckpointError, match=r"fractions.Fraction"):
        read_task_checkpoint(path)
    _, hparams = read_task_checkpoint(path, trust=True)
    assert hparams["ratio"] == fractions.Fraction(1, 3)


def test_task_checkpoint_plain_types_allowed(task_ckpt: dict, tmp_path: Path) -> None:
    import argparse

    extra = {"root": Path("/data/x"), "ns": argparse.Namespace(a=1)}
    ckpt = {**task_ckpt["ckpt"], "hyper_parameters": {**task_ckpt["hparams"], **extra}}
    _, hparams = read_task_checkpoint(_write_run(tmp_path / "v0", ckpt, None))
    assert hparams["root"] == Path("/data/x") and hparams["ns"].a == 1


def test_task_checkpoint_state_dict_only(tmp_path: Path, tiny_file: tuple[torch.nn.Module, Path]) -> None:
    torch.save({"epoch": 0, "state_dict": {"w": torch.zeros(2)}}, tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match=r"x.ckpt is not a Lightning task checkpoint.*'<epoch>.ckpt'"):
        read_task_checkpoint(tmp_path / "x.ckpt")
    shutil.copy(tiny_file[1], tmp_path / "y.ckpt")  # safetensors bytes under a .ckpt name
    with pytest.raises(CheckpointError, match="y.ckpt is not a readable PyTorch checkpoint"):
        read_task_checkpoint(tmp_path / "y.ckpt")
    with pytest.raises(WeightsUnavailableError, match="nope.ckpt not found"):
        read_task_checkpoint(tmp_path / "nope.ckpt")


class Gone:  # removed before loading: even a trusted load cannot rebuild it
    pass


def test_task_checkpoint_trusted_but_unloadable(
    task_ckpt: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    ckpt = {**task_ckpt["ckpt"], "hyper_parameters": {**task_ckpt["hparams"], "x": Gone()}}
    path = _write_run(tmp_path / "v0", ckpt, None)
    monkeypatch.delattr(sys.modules[__name__], "Gone")
    with pytest.raises(CheckpointError, match=r"epoch=0.ckpt could not be loaded \(trusted, full unpickling\): Attr"):
        read_task_checkpoint(path, trust=True)


def test_checkpoint_written_by_lightning_reads_without_trust(tmp_path: Path) -> None:
    """A real ``Trainer.fit`` checkpoint (optimiser, scheduler, loops, callback states; TerraTorch's checkpoint
    callback) holds only allowed types: it reads without ``trust`` and without the YAML fallback."""
    import lightning.pytorch as pl
    from terratorch.cli_tools import StateDictAwareModelCheckpoint
    from terratorch.tasks import SemanticSegmentationTask
    from torch.utils.data import DataLoader

    import smarties_terratorch.backbone  # noqa: F401 - registers the backbones

    batch = [{"image": torch.randn(4, 32, 32), "mask": torch.randint(0, 3, (32, 32))} for _ in range(2)]
    model_args = {"backbone": "smarties_vit_tiny_patch16", "backbone_bands": ["S2:B2", "S2:B3", "S2:B4", "S2:B8"],
                  "necks": [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}],
                  "decoder": "FCNDecoder", "num_classes": 3}  # fmt: skip
    task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce",
                                    ignore_index=-1, optimizer="AdamW", scheduler="CosineAnnealingLR",
                                    scheduler_hparams={"T_max": 1})  # fmt: skip
    trainer = pl.Trainer(
        max_steps=1, accelerator="cpu", logger=pl.loggers.CSVLogger(tmp_path, name="run"), limit_val_batches=1,
        num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[StateDictAwareModelCheckpoint(filename="{epoch}", monitor="val/loss")],
    )  # fmt: skip
    trainer.fit(task, DataLoader(batch, batch_size=2), DataLoader(batch, batch_size=2))
    (path,) = (tmp_path / "run" / "version_0" / "checkpoints").glob("*.ckpt")
    (tmp_path / "run" / "version_0" / "hparams.yaml").unlink()  # no fallback: the checkpoint alone must do
    sd, hparams = read_task_checkpoint(path)
    assert hparams["model_args"] == model_args and hparams["scheduler_hparams"] == {"T_max": 1}
    assert sd.keys() == task.state_dict().keys()
    assert all(torch.equal(sd[k], v) for k, v in task.state_dict().items())


def test_check_checkpoint_reads_headers_only(tiny_file: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    from smarties_terratorch.checkpoints import check_checkpoint

    _, path = tiny_file
    assert check_checkpoint(path) == path
    sd = load_file(path)
    torch.save({"state_dict": sd}, tmp_path / "zip.ckpt")
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)  # no mmap for the old format
    for name in ("zip.ckpt", "legacy.pth"):
        assert check_checkpoint(tmp_path / name) == tmp_path / name
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="cut.safetensors is not a readable safetensors file"):
        check_checkpoint(tmp_path / "cut.safetensors")
    with pytest.raises(WeightsUnavailableError, match="nope.pth not found"):
        check_checkpoint(tmp_path / "nope.pth")
