"""Fault injection into every weights/checkpoint loader: Python API, factories, TerraTorch, PANGAEA, CLI.

The hostile pickle (whose unpickling would create a marker file) goes through every entry point that reads a
weights file; none may run it. Bad files (truncated, not a checkpoint, another architecture, other shapes, an
unsupported suffix, missing) are named in one message. Every input is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from smarties_terratorch import cli
from smarties_terratorch.checkpoints import (
    CheckpointError,
    WeightsUnavailableError,
    check_checkpoint,
    load_state_dict,
    read_task_checkpoint,
)
from smarties_terratorch.hub import fetch_hub_weights
from smarties_terratorch.models.vit import SmartiesViT, smarties_vit_tiny_patch16
from smarties_terratorch.pangaea import SmartiesEncoder
from smarties_terratorch.pretrained import load_pretrained, read_checkpoint, save_weights
from smarties_terratorch.weights import SmartiesWeights

from .conftest import write_hostile_checkpoint

BANDS = ["S2:B2", "S2:B3", "S2:B4", "S2:B8"]
NECKS = [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}]


def _assert_refused_pickle(message: str, path: Path, marker: Path) -> None:
    assert not marker.exists(), "code from the checkpoint ran"
    assert str(path) in message
    assert "contains pickled code/objects" in message
    assert "weights_only" not in message  # never torch's advice to switch the check off


# ------------------------------------------------------------------------------------------------ entry points
def _registry(path: Path) -> Any:
    import smarties_terratorch.backbone  # noqa: F401 - registers the backbones
    from terratorch.registry import BACKBONE_REGISTRY

    return BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=BANDS, ckpt_path=str(path))


def _encoder_decoder(path: Path) -> Any:
    # What a TerraTorch YAML's model_args (backbone_ckpt_path: ...) becomes.
    import smarties_terratorch.backbone  # noqa: F401
    from terratorch.models import EncoderDecoderFactory

    return EncoderDecoderFactory().build_model(
        task="segmentation", backbone="smarties_vit_tiny_patch16", backbone_bands=BANDS,
        backbone_ckpt_path=str(path), necks=NECKS, decoder="FCNDecoder", num_classes=3,
    )  # fmt: skip


def _pangaea(path: Path) -> None:
    enc = SmartiesEncoder(
        input_bands={"optical": ["B2", "B3", "B4"]}, input_size=32, embed_dim=64, depth=2, num_heads=2,
        output_layers=[0, 1], encoder_weights=str(path),
    )  # fmt: skip
    enc.load_encoder_weights(logging.getLogger("pangaea-test"))


def _backbone_factory(path: Path) -> Any:
    from smarties_terratorch.backbone import smarties_vit_tiny_patch16 as terratorch_tiny

    return terratorch_tiny(bands=BANDS, ckpt_path=path)


PYTHON_ENTRY_POINTS: dict[str, Callable[[Path], Any]] = {
    "load_state_dict": load_state_dict,
    "check_checkpoint": check_checkpoint,
    "read_checkpoint": lambda p: read_checkpoint(p, smarties_vit_tiny_patch16()),
    "load_pretrained": lambda p: load_pretrained(smarties_vit_tiny_patch16(), p),
    "vit_factory_ckpt_path": lambda p: smarties_vit_tiny_patch16(ckpt_path=p),
    "backbone_factory_ckpt_path": _backbone_factory,
    "terratorch_registry_build": _registry,
    "terratorch_backbone_ckpt_path": _encoder_decoder,
    "pangaea_encoder_weights": _pangaea,
    "read_task_checkpoint": read_task_checkpoint,
}


@pytest.mark.parametrize("suffix", [".pth", ".ckpt"])
@pytest.mark.parametrize("entry", list(PYTHON_ENTRY_POINTS))
def test_hostile_pickle_never_runs(tmp_path: Path, frozen, entry: str, suffix: str) -> None:
    marker = tmp_path / "PWNED"
    evil = write_hostile_checkpoint(tmp_path / f"evil{suffix}", marker, lightning=suffix == ".ckpt")
    with frozen(tmp_path), pytest.raises(CheckpointError) as err:
        PYTHON_ENTRY_POINTS[entry](evil)
    _assert_refused_pickle(str(err.value), evil, marker)
    assert "posix.system" in str(err.value)  # the offending object is named


def test_hostile_task_checkpoint_says_how_to_trust(hostile: tuple[Path, Path], frozen) -> None:
    ckpt, marker = hostile
    with frozen(ckpt.parent), pytest.raises(CheckpointError, match="--trust-checkpoint") as err:
        read_task_checkpoint(ckpt)
    _assert_refused_pickle(str(err.value), ckpt, marker)


def test_hostile_hparams_with_an_unsafe_hparams_yaml(tmp_path: Path, frozen) -> None:
    # A checkpoint whose hyperparameters hold an object, beside an hparams.yaml that is not plain YAML either.
    run = tmp_path / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "PWNED"
    (run / "hparams.yaml").write_text("model_args: !!python/object/apply:os.system ['touch " + str(marker) + "']\n")
    ckpt = run / "checkpoints" / "epoch=0.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"x": _Harmless()}}, ckpt)
    with frozen(tmp_path), pytest.raises(CheckpointError) as err:
        read_task_checkpoint(ckpt)
    assert str(ckpt) in str(err.value) and str(run / "hparams.yaml") in str(err.value)
    assert "--trust-checkpoint" in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()


class _Harmless:  # a class outside the allow-list: refused like any other object
    pass


def test_hostile_weights_for_bench_run(tmp_path: Path, frozen, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    marker = tmp_path / "PWNED"
    evil = write_hostile_checkpoint(inputs / "evil.pth", marker)
    out = tmp_path / "out"
    argv = ["bench", "run", "--rows", "eurosat_knn", "--backbone", "vitb", "--weights", str(evil), "--out", str(out)]
    with frozen(inputs):
        code = cli.main(argv)
    assert code == 1  # the row failed
    result = yaml.safe_load((out / "real" / "results" / "eurosat_knn__vitb.json").read_text())
    assert result["status"] == "failed" and result["reason"].startswith(f"weights: {evil} contains pickled code")
    _assert_refused_pickle(result["reason"], evil, marker)
    assert str(evil) in capsys.readouterr().out
    assert not (out / "real" / "configs").exists()  # the row never started


def test_hostile_weights_for_export(tmp_path: Path, frozen, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "PWNED"
    evil = write_hostile_checkpoint(tmp_path / "evil.pth", marker)
    argv = ["export", "--weights", str(evil), "--bands", ",".join(BANDS), "--arch", "smarties_vit_tiny_patch16",
            "--out", str(tmp_path / "enc.pt2")]  # fmt: skip
    with frozen(tmp_path):
        code = cli.main(argv)
    assert code == 2
    _assert_refused_pickle(capsys.readouterr().err, evil, marker)


# ------------------------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def tiny_safetensors(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    return save_weights(smarties_vit_tiny_patch16(), path).read_bytes()


def _torch_bytes(obj: Any, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def _wrong_architecture(tiny: bytes) -> tuple[str, bytes]:
    return "other.pth", _torch_bytes(SmartiesViT(img_size=32, embed_dim=96, depth=3, num_heads=2).state_dict())


def _wrong_shapes(tiny: bytes) -> tuple[str, bytes]:
    sd = safetensors_load(tiny)
    sd["blocks.0.mlp.fc1.weight"] = torch.zeros(128, 64)  # the tiny ViT's MLP is 4 x 64 = 256 wide
    sd["blocks.0.mlp.fc1.bias"] = torch.zeros(128)
    return "shapes.safetensors", safetensors_save(sd)


BAD_FILES: dict[str, tuple[Callable[[bytes], tuple[str, bytes]], type[Exception], str]] = {
    "truncated-safetensors": (
        lambda t: ("t.safetensors", t[: len(t) // 2]), CheckpointError, "not a readable safetensors file"),
    "empty-safetensors": (lambda t: ("e.safetensors", b""), CheckpointError, "not a readable safetensors file"),
    "pickle-named-safetensors": (
        lambda t: ("p.safetensors", _torch_bytes({"cls_token": torch.zeros(1)})), CheckpointError,
        "not a readable safetensors file"),
    "truncated-pth": (
        lambda t: ("t.pth", _torch_bytes({"w": torch.zeros(1000)})[:-300]), CheckpointError,
        r"not a readable PyTorch checkpoint \(truncated or corrupt\)"),
    "truncated-legacy-pth": (
        lambda t: ("l.pth", _torch_bytes({"w": torch.zeros(10)}, _use_new_zipfile_serialization=False)[:-30]),
        CheckpointError, r"not a readable PyTorch checkpoint \(truncated or corrupt\)"),
    "text-file-pth": (lambda t: ("notes.pth", b"not a checkpoint at all"), CheckpointError,
                      r"not a readable PyTorch checkpoint \(truncated or corrupt\)"),
    "not-a-state-dict": (
        lambda t: ("list.pth", _torch_bytes([1, 2, 3])), CheckpointError, "does not hold a state dict"),
    "wrong-architecture": (
        _wrong_architecture, CheckpointError, r"holds a ViT with D=96, 3 blocks.*build the matching"),
    "wrong-shapes": (
        _wrong_shapes, CheckpointError,
        r"other shapes than the model's: .*blocks.0.mlp.fc1.weight: file \(128, 64\) vs model \(256, 64\)"),
    "unsupported-suffix": (lambda t: ("weights.h5", t), CheckpointError, r"unsupported checkpoint type '.h5'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_weights_file_is_named(tiny_safetensors: bytes, tmp_path: Path, frozen, case: str) -> None:
    make, error, message = BAD_FILES[case]
    name, data = make(tiny_safetensors)
    path = tmp_path / name
    path.write_bytes(data)
    with frozen(tmp_path), pytest.raises(error, match=re.escape(str(path)) + ".*" + message) as err:
        smarties_vit_tiny_patch16(ckpt_path=path)
    assert "weights_only" not in str(err.value)


def test_protocol_4_pickle_is_not_called_code(tmp_path: Path, frozen) -> None:
    # Plain tensors saved with a newer pickle protocol: refused (the safe reader cannot read it), but not as code.
    path = tmp_path / "p4.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 64)}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with frozen(tmp_path), pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*re-save it") as err:
        load_state_dict(path)
    assert "code" not in str(err.value) and "weights_only" not in str(err.value)


@pytest.mark.parametrize(
    "entry",
    [
        lambda p: smarties_vit_tiny_patch16(ckpt_path=p),
        _registry,
        _pangaea,
        read_task_checkpoint,
    ],
    ids=["factory", "terratorch-registry", "pangaea", "read_task_checkpoint"],
)
def test_missing_weights_file_is_named(tmp_path: Path, frozen, entry: Callable[[Path], Any]) -> None:
    path = tmp_path / "nope.safetensors"
    with frozen(tmp_path), pytest.raises(WeightsUnavailableError, match=re.escape(str(path.name))):
        entry(path)


def test_folder_as_weights_file(tmp_path: Path, frozen) -> None:
    (tmp_path / "weights").mkdir()
    with frozen(tmp_path), pytest.raises(WeightsUnavailableError, match=r"weights is a directory"):
        load_pretrained(smarties_vit_tiny_patch16(), tmp_path / "weights")


def test_pangaea_wrong_architecture(tmp_path: Path, frozen) -> None:
    path = save_weights(SmartiesViT(img_size=32, embed_dim=96, depth=3, num_heads=2), tmp_path / "vit96.safetensors")
    with frozen(tmp_path), pytest.raises(CheckpointError, match=re.escape(str(path)) + r".*D=96, 3 blocks"):
        _pangaea(path)


def test_state_dict_only_task_checkpoint(tmp_path: Path, frozen) -> None:
    path = tmp_path / "epoch=0_weights.ckpt"
    torch.save({"model.encoder.cls_token": torch.zeros(1, 1, 64)}, path)
    with frozen(tmp_path), pytest.raises(CheckpointError, match=re.escape(str(path)) + r".*'<epoch>.ckpt'"):
        read_task_checkpoint(path)


def test_bench_truncated_weights(tiny_safetensors: bytes, tmp_path: Path, frozen) -> None:
    inputs = tmp_path / "weights"
    inputs.mkdir()
    vitb = inputs / "smarties-v1-vitb.safetensors"
    vitb.write_bytes(tiny_safetensors[:100])
    out = tmp_path / "out"
    with frozen(inputs):
        code = cli.main(["bench", "run", "--rows", "eurosat_knn", "--backbone", "vitb", "--weights", str(inputs),
                         "--out", str(out)])  # fmt: skip
    assert code == 1
    reason = yaml.safe_load((out / "real" / "results" / "eurosat_knn__vitb.json").read_text())["reason"]
    assert reason.startswith(f"weights: {vitb} is not a readable safetensors file")


def test_export_missing_weights(tmp_path: Path, frozen, capsys: pytest.CaptureFixture) -> None:
    argv = ["export", "--weights", str(tmp_path / "nope.pth"), "--bands", ",".join(BANDS),
            "--arch", "smarties_vit_tiny_patch16", "--out", str(tmp_path / "enc.pt2")]  # fmt: skip
    with frozen(tmp_path):
        assert cli.main(argv) == 2
    assert "nope.pth" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ Lightning ckpt_path
# Lightning reads an http(s) ckpt_path with torch.load(weights_only=False): served from the loopback server, the
# hostile checkpoint would run if any of these paths let Lightning fetch it.
@pytest.fixture
def evil_server(tmp_path: Path) -> Any:
    """``(server, url, marker)``: the loopback server serving a hostile Lightning checkpoint at ``url``."""
    from http_server import Server

    marker = tmp_path / "PWNED"
    evil = write_hostile_checkpoint(tmp_path / "served.ckpt", marker, lightning=True)
    srv = Server({"/run/last.ckpt": evil.read_bytes()})
    evil.unlink()
    yield srv, f"{srv.url}/run/last.ckpt", marker
    srv.close()


def _pretrain(tmp_path: Path, ckpt_path: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(tmp_path)  # the demo config's run folder is relative
    config = Path(__file__).resolve().parents[2] / "configs" / "pretrain_demo.yaml"
    return cli.main(["pretrain", "fit", "-c", str(config), "--trainer.max_steps", "1", "--ckpt_path", ckpt_path])


def test_pretrain_url_ckpt_path_is_refused(evil_server, tmp_path: Path, monkeypatch, capsys) -> None:
    srv, url, marker = evil_server
    assert _pretrain(tmp_path, url, monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"smarties pretrain: error: {url}: checkpoint files are not read from URLs" in err
    assert "weights_only" not in err and len(err.strip().splitlines()) == 1
    assert srv.requests == [] and not marker.exists()  # never fetched
    assert not (tmp_path / "smarties_pretrain_demo").exists()  # nothing ran


def test_pretrain_hostile_local_ckpt_path_is_refused(tmp_path: Path, frozen, monkeypatch, capsys) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    marker = tmp_path / "PWNED"
    evil = write_hostile_checkpoint(inputs / "last.ckpt", marker, lightning=True)
    with frozen(inputs):
        assert _pretrain(tmp_path, str(evil), monkeypatch) == 2
    err = capsys.readouterr().err
    _assert_refused_pickle(err, evil, marker)
    assert "Resume only from checkpoints your own runs wrote" in err and len(err.strip().splitlines()) == 1


def _boring_trainer(tmp_path: Path, callbacks: list[Any], plugins: list[Any] | None = None) -> tuple[Any, Any, Any]:
    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
    from torch.utils.data import DataLoader

    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path / "run", callbacks=callbacks,
                         plugins=plugins)  # fmt: skip
    return trainer, BoringModel(), DataLoader(RandomDataset(32, 4), batch_size=2)


@pytest.mark.parametrize("how", ["callback", "plugin"])
@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_trainer_made_safe_refuses_url_and_hostile_ckpt_path(evil_server, tmp_path: Path, stage: str, how: str) -> None:
    from smarties_terratorch.checkpoints import SafeCheckpointIO, SafeCheckpointLoading

    srv, url, marker = evil_server
    local = write_hostile_checkpoint(tmp_path / "evil.ckpt", marker, lightning=True)
    for ckpt_path, message in ((url, "not read from URLs"), (str(local), "contains pickled code/objects")):
        extra = {"callbacks": [SafeCheckpointLoading()]} if how == "callback" else {
            "callbacks": [], "plugins": [SafeCheckpointIO()]}  # fmt: skip
        trainer, model, loader = _boring_trainer(tmp_path, **extra)
        with pytest.raises(CheckpointError, match=re.escape(ckpt_path) + ".*" + message) as err:
            getattr(trainer, stage)(model, loader, ckpt_path=ckpt_path)
        assert "weights_only" not in str(err.value)
    assert srv.requests == [] and not marker.exists()


def test_trainer_with_the_callback_resumes_its_own_checkpoint(tmp_path: Path) -> None:
    from smarties_terratorch.checkpoints import SafeCheckpointIO, SafeCheckpointLoading

    trainer, model, loader = _boring_trainer(tmp_path, [SafeCheckpointLoading()])
    trainer.fit(model, loader)
    ckpt = tmp_path / "own.ckpt"
    trainer.save_checkpoint(ckpt)  # saving goes through the wrapped plugin
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    trainer, model, loader = _boring_trainer(tmp_path, [SafeCheckpointLoading()])
    trainer.validate(model, loader, ckpt_path=str(ckpt))
    assert torch.equal(model.layer.weight, torch.load(ckpt, weights_only=True)["state_dict"]["layer.weight"])


def test_terratorch_runs_get_the_callback_from_the_entry_point() -> None:
    import lightning.pytorch as pl
    import terratorch  # noqa: F401 - the callbacks_factory entry point adds callbacks in TerraTorch runs only

    from smarties_terratorch.checkpoints import SafeCheckpointLoading

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    assert sum(isinstance(cb, SafeCheckpointLoading) for cb in trainer.callbacks) == 1


@pytest.mark.parametrize("where", ["url", "local"])
def test_terratorch_validate_hostile_ckpt_path_runs_no_code(evil_server, tmp_path: Path, where: str) -> None:
    from cli_utils import run_config

    from smarties_terratorch.testing import make_fixture

    srv, url, marker = evil_server
    local = write_hostile_checkpoint(tmp_path / "evil.ckpt", marker, lightning=True)
    root = make_fixture("eurosat", tmp_path / "eurosat")
    splits = tmp_path / "eurosat" / "eval_splits"
    overrides = {
        "ckpt_path": url if where == "url" else str(local),
        "data.init_args.batch_size": 2, "data.init_args.num_workers": 0, "data.init_args.root": str(root),
        "data.init_args.train_split": str(splits / "eurosat-train.txt"),
        "data.init_args.val_split": str(splits / "eurosat-val.txt"),
        "data.init_args.test_split": str(splits / "eurosat-val.txt"),
    }  # fmt: skip
    if where == "url":  # Lightning would fetch it and unpickle it with weights_only=False: our callback refuses
        with pytest.raises(CheckpointError, match=re.escape(url) + ".*not read from URLs"):
            run_config("eurosat_linprobe.yaml", tmp_path, overrides, subcommand="validate")
    else:  # TerraTorch's CLI reads the file's hyperparameters first, with torch.load(weights_only=True): refused
        with pytest.raises(pickle.UnpicklingError):
            run_config("eurosat_linprobe.yaml", tmp_path, overrides, subcommand="validate")
    assert srv.requests == [] and not marker.exists()


@pytest.mark.parametrize(
    "entry", ["smarties_vit_factory", "terratorch_backbone_ckpt_path", "predict_checkpoint", "pangaea"]
)
def test_url_as_weights_or_checkpoint_is_refused(evil_server, tmp_path: Path, entry: str) -> None:
    from smarties_terratorch.scene import load_segmentation_task

    srv, url, marker = evil_server
    call = {"smarties_vit_factory": lambda: smarties_vit_tiny_patch16(ckpt_path=url),
            "terratorch_backbone_ckpt_path": lambda: _encoder_decoder(url),
            "predict_checkpoint": lambda: load_segmentation_task(url),
            "pangaea": lambda: _pangaea(url)}[entry]  # fmt: skip
    with pytest.raises(CheckpointError, match=re.escape(url) + ".*not read from URLs"):
        call()
    assert srv.requests == [] and not marker.exists()


def test_predict_cli_url_checkpoint_is_refused(evil_server, tmp_path: Path, capsys) -> None:
    srv, url, marker = evil_server
    code = cli.main(["predict", str(tmp_path / "scene.tif"), "--checkpoint", url, "--out", str(tmp_path / "o.tif")])
    assert code == 2
    assert f"{url}: checkpoint files are not read from URLs" in capsys.readouterr().err
    assert srv.requests == [] and not marker.exists()


# ------------------------------------------------------------------------------------------------ Hub weights
def _tampering_hub(models: dict[tuple[str, str], bytes], genuine: bytes | None) -> Any:
    """The loopback Hub serving ``models`` while announcing ``genuine``'s sha256 as the LFS ETag: a download
    altered on the way (or a mirror serving other bytes than the Hub lists)."""
    from http_server import Server

    class TamperingHub(Server):
        def lookup(self, path: str) -> tuple[bytes | None, dict[str, str]]:
            body, headers = super().lookup(path)
            if body is not None and "ETag" in headers and genuine is not None:
                headers = {**headers, "ETag": f'"{hashlib.sha256(genuine).hexdigest()}"'}
            return body, headers

    return TamperingHub({}, models=models)


_SPEC = SmartiesWeights("tiny-test", "smarties_vit_tiny_patch16", "org/tiny", "tiny.safetensors")


def test_hub_weights_altered_in_transit_are_refused(tiny_safetensors: bytes, tmp_path: Path, monkeypatch) -> None:
    from http_server import use_hub

    tampered = save_weights(smarties_vit_tiny_patch16(), tmp_path / "other.safetensors").read_bytes()
    assert tampered != tiny_safetensors
    srv = _tampering_hub({("org/tiny", "tiny.safetensors"): tampered}, genuine=tiny_safetensors)
    use_hub(monkeypatch, srv.hub_url, cache=str(tmp_path / "hub"))
    try:
        with pytest.raises(CheckpointError) as err:
            load_pretrained(smarties_vit_tiny_patch16(), _SPEC)
    finally:
        srv.close()
    blob = next((tmp_path / "hub").rglob("blobs/*"))
    expected = hashlib.sha256(tiny_safetensors).hexdigest()
    message = str(err.value)
    assert f"expected {expected} (listed by the Hub)" in message and f"Delete {blob} and run again" in message
    assert len(message.splitlines()) == 1


def test_corrupt_hub_cache_is_refused_on_reuse_until_deleted(tiny_safetensors: bytes, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants as hf_constants
    from http_server import use_hub

    srv = _tampering_hub({("org/tiny", "tiny.safetensors"): tiny_safetensors}, genuine=None)
    use_hub(monkeypatch, srv.hub_url, cache=str(tmp_path / "hub"))
    try:
        first = fetch_hub_weights(_SPEC)
        assert first.sha256 == hashlib.sha256(tiny_safetensors).hexdigest()
        blob = first.path.resolve()
        blob.write_bytes(tiny_safetensors[:-8] + b"\0" * 8)  # bit rot, or someone replaced the cached file
        for offline in (False, True):  # online: the Hub's ETag; offline: the ETag the cache recorded
            monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", offline)
            with pytest.raises(CheckpointError, match=f"Delete {re.escape(str(blob))} and run again"):
                load_pretrained(smarties_vit_tiny_patch16(), _SPEC)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        blob.unlink()  # what the message says to do
        again = fetch_hub_weights(_SPEC)
    finally:
        srv.close()
    assert again.sha256 == first.sha256 and again.path.resolve().read_bytes() == tiny_safetensors


# ------------------------------------------------------------------------------------------------ DFC2020 file
@pytest.mark.parametrize(
    "case, expected",
    [
        ("html", r"is not a readable PyTorch file: it holds an HTML page"),
        ("text", r"is not a readable PyTorch file: it holds no PyTorch data \(it starts with b'version"),
        ("truncated", r"is not a readable PyTorch file \(truncated or corrupt"),
        ("numpy objects", r"holds pickled Python objects \(numpy\..*trust_pickle: true"),
    ],
)
def test_dfc2020_says_what_the_file_is(tmp_path: Path, frozen, case: str, expected: str) -> None:
    import numpy as np

    from smarties_terratorch.datasets.dfc2020 import load_dfc2020

    path = tmp_path / "DFC_preprocessed.pt"
    if case == "html":  # what a mirror's error page saved with status 200 looks like
        path.write_bytes(b"\n<!DOCTYPE html><html><body>Rate limit exceeded</body></html>\n")
    elif case == "text":  # a Git LFS pointer instead of the file
        path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n")
    elif case == "truncated":
        path.write_bytes(_torch_bytes({"train_images": torch.zeros(2, 14, 8, 8)})[:-200])
    else:
        path.write_bytes(_torch_bytes({"train_images": np.zeros((2, 14, 8, 8), "float32")}))
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(path)) + " " + expected) as err:
        load_dfc2020(path)
    message = str(err.value)
    assert "weights_only" not in message and len(message.splitlines()) == 1
    if case != "numpy objects":  # a file that is not what was asked for is fetched again, never trusted
        assert "trust_pickle" not in message and "smarties data download dfc2020" in message
