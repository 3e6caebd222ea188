"""SMARTIES MAE pre-training: model parity, band-slot tiling, mixup, training on real data, resume, export, CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import fsspec.implementations.local
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from smarties_terratorch.datamodules.paired import PairedPretrainDataModule
from smarties_terratorch.tasks.pretrain import SmartiesPretrainTask, cli_main, param_groups_weight_decay
from smarties_terratorch.models.mae import SmartiesMAE
from smarties_terratorch.spectrum import resolve_bands

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "variant": "smarties_vit_tiny_patch16",
    "img_size": 32,
    "decoder_embed_dim": 32,
    "decoder_depth": 1,
    "decoder_num_heads": 2,
}
S2 = {"bands": ["S2-L2A:B02", "S2-L2A:B03", "S2-L2A:B04", "S2-L2A:B08"], "statistics": "S2-L2A"}
S1 = {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"}


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("_paired_fixture", REPO / "tests/data/paired/data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make(tmp_path / "data")


@pytest.mark.parametrize(
    "variant, expected", [("smarties_vit_base_patch16", 116_511_232), ("smarties_vit_large_patch16", 335_066_880)]
)
def test_mae_size_matches_release(variant: str, expected: int) -> None:
    with torch.device("meta"):
        mae = SmartiesMAE(variant)
    assert sum(v.numel() for v in mae.state_dict().values()) == expected
    assert len(mae.decoder_preds) == 17 and len(mae.decoder_blocks) == 8
    assert not mae.encoder.pos_embed.requires_grad and not mae.decoder_pos_embed.requires_grad


def test_band_slot_tiling_changes_nothing() -> None:
    """The released pipeline tiles RGB x4 and S1 x6 into 12 slots; the embedding (a band mean) and the loss (means
    over slots, biased norm-pix variance) are the same without tiling."""
    mae = SmartiesMAE(**TINY)
    rgb, s1 = resolve_bands(["RGB:R", "RGB:G", "RGB:B"]), resolve_bands(["S1:VV", "S1:VH"])
    rgb12 = resolve_bands(["RGB:R", "RGB:G", "RGB:B"] * 4, allow_duplicates=True)
    s1_12 = resolve_bands(["S1:VV", "S1:VH"] * 6, allow_duplicates=True)
    xa, xb = torch.randn(2, 3, 32, 32), torch.randn(2, 2, 32, 32)
    xa12, xb12 = xa.repeat(1, 4, 1, 1), xb.repeat(1, 6, 1, 1)
    embed = mae.encoder.spectrum_projection
    torch.testing.assert_close(embed(xa12, rgb12), embed(xa, rgb), atol=1e-5, rtol=1e-5)
    plain = mae(xa, rgb, xb, s1, generator=torch.Generator().manual_seed(0))
    tiled = mae(xa12, rgb12, xb12, s1_12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tiled.view_losses, plain.view_losses, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["mirrored", "released"])
def test_mixup_modes(mode: str) -> None:
    mae = SmartiesMAE(**TINY, mixup=mode)
    out = mae(torch.randn(3, 4, 32, 32), S2["bands"], torch.randn(3, 2, 32, 32), S1["bands"])
    n = 4
    assert (out.from_a[0].sum(1) == n // 2).all()
    if mode == "mirrored":
        assert torch.equal(out.from_a[1], ~out.from_a[0])  # complementary views
    else:
        assert not out.from_a[1].any()  # view 2 is pure sensor b
    assert (out.mask.sum(1) == n - int(n * 0.25)).all()  # ratio 0.75, same mask for both views
    torch.testing.assert_close(out.loss, out.view_losses.mean())


@pytest.mark.parametrize("mode", ["none", "mirrored"])
def test_reconstruction_targets_follow_tokens(mode: str) -> None:
    """A token taken from image a is scored against a's bands, one from b against b's: with predictions 0,
    a = 0 and b = 1 the loss counts the masked tokens taken from b."""
    mae = SmartiesMAE(**TINY, mixup=mode, norm_pix_loss=False)
    with torch.no_grad():
        for head in mae.decoder_preds:
            head.weight.zero_()
            head.bias.zero_()
    out = mae(torch.zeros(2, 4, 32, 32), S2["bands"], torch.ones(2, 2, 32, 32), S1["bands"])
    from_b = (~out.from_a * out.mask.bool()).sum(dim=(1, 2)) / out.mask.sum()
    torch.testing.assert_close(out.view_losses.detach(), from_b.float())
    if mode == "none":
        assert out.view_losses.tolist() == pytest.approx([0.0, 1.0], abs=1e-5)
    else:  # complementary views: every masked position is b in exactly one of them
        assert float(out.view_losses.sum()) == pytest.approx(1.0, abs=1e-5)


def test_weight_decay_groups() -> None:
    mae = SmartiesMAE(**TINY)
    no_decay, decay = param_groups_weight_decay(mae, 0.05)  # timm's helper, as the task uses it
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.05, 0.0)
    # The groups the released code builds: decay on >= 2-D trainable parameters, none on 1-D ones.
    trainable = [p for p in mae.parameters() if p.requires_grad]
    assert {id(p) for p in decay["params"]} == {id(p) for p in trainable if p.ndim >= 2}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in trainable if p.ndim <= 1}
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert any(p is mae.mask_token for p in decay["params"])  # as released: >= 2-D tokens are decayed
    assert not any(p is mae.encoder.pos_embed for g in (decay, no_decay) for p in g["params"])  # frozen


class _Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _trainer(root: Path, max_steps: int, **kwargs) -> tuple[pl.Trainer, _Losses]:
    losses = _Losses()
    ckpt = ModelCheckpoint(dirpath=root / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[losses, ckpt],
        use_distributed_sampler=False,
        **kwargs,
    )
    return trainer, losses


def _task(**kwargs) -> SmartiesPretrainTask:
    return SmartiesPretrainTask(**{**TINY, "lr": 1e-3, "warmup_epochs": 0, **kwargs})


class _Kill(Callback):
    """Crash the run after ``step`` optimiser steps (before that step's checkpoint is written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


@pytest.mark.parametrize("kill_at, limit", [(5, "max_steps"), (4, "max_steps"), (4, "max_epochs")])
def test_resume_gives_the_same_loss_sequence(pairs: Path, tmp_path: Path, kill_at: int, limit: str) -> None:
    def dm() -> PairedPretrainDataModule:
        return PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1, "repeat": 3}], 32, 4)

    # 12 samples / 4 = 3 batches per epoch; 7 steps (or 3 epochs = 9 steps) cross two epoch boundaries. The crash
    # at step 5 leaves last.ckpt at step 4, mid-epoch; the crash at step 4 leaves it at the end of the first epoch.
    total = 7 if limit == "max_steps" else 9

    def make(root: Path) -> tuple[pl.Trainer, _Losses]:
        return _trainer(root, 7) if limit == "max_steps" else _trainer(root, -1, max_epochs=3)

    pl.seed_everything(0)
    trainer, full = make(tmp_path / "full")
    trainer.fit(_task(), dm())
    pl.seed_everything(0)
    trainer, first = make(tmp_path / "resumed")
    trainer.callbacks.insert(0, _Kill(kill_at))
    with pytest.raises(RuntimeError, match="killed"):
        trainer.fit(_task(), dm())
    assert torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=False)["global_step"] == kill_at - 1
    pl.seed_everything(123)  # a different global seed must not matter once resumed
    trainer, second = make(tmp_path / "resumed")
    trainer.fit(_task(), dm(), ckpt_path=str(tmp_path / "resumed/checkpoints/last.ckpt"))
    assert len(full.losses) == total and first.losses == full.losses[: kill_at - 1]
    assert second.losses == pytest.approx(full.losses[kill_at - 1 :], rel=1e-6, abs=1e-7)


def test_interrupted_checkpoint_write_keeps_previous(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    trainer, _ = _trainer(tmp_path, 1)
    task = _task()
    trainer.fit(task, PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1}], 32, 2))
    path = tmp_path / "checkpoints" / "last.ckpt"
    before = path.read_bytes()

    def broken_write(self, data):
        self.f.write(data[: len(data) // 2])  # half the bytes reach the disk, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(fsspec.implementations.local.LocalFileOpener, "write", broken_write)
    with torch.no_grad():
        task.model.mask_token.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]  # no half-written leftovers
    torch.load(path, weights_only=False)


def test_export_loads_into_terratorch_backbone(pairs: Path, tmp_path: Path) -> None:
    from terratorch.registry import BACKBONE_REGISTRY

    from smarties_terratorch.pretrained import load_pretrained

    trainer, _ = _trainer(tmp_path, 2)
    task = _task()
    trainer.fit(task, PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1}], 32, 2))
    path = tmp_path / "smarties_encoder.safetensors"
    assert path.is_file()
    backbone = BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=S2["bands"], img_size=32)
    report = load_pretrained(backbone, path)
    assert report.missing_keys == [] and report.unexpected_keys == [] and report.ignored_keys == []
    for key, value in task.encoder.state_dict().items():
        torch.testing.assert_close(backbone.state_dict()[key], value)
    # also through the factory argument TerraTorch configs use
    BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=S2["bands"], ckpt_path=str(path))


@pytest.mark.parametrize(
    "kwargs", [{"max_epochs": 2}, {"max_epochs": 3, "limit_train_batches": 2}, {"max_epochs": 2,
               "limit_train_batches": 0.5, "accumulate_grad_batches": 2}, {"max_epochs": 5, "max_steps": 4}]
)  # fmt: skip
def test_schedule_length_matches_lightning(pairs: Path, tmp_path: Path, kwargs: dict) -> None:
    """The schedule length the task computes without building the trainer's loader equals Lightning's estimate."""
    trainer = pl.Trainer(
        accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, use_distributed_sampler=False, **kwargs,
    )  # fmt: skip
    task = _task()
    trainer.fit(task, PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1, "repeat": 4}], 32, 2))
    assert task.stepping_batches() == trainer.estimated_stepping_batches


def test_exports_last_and_best_encoder(pairs: Path, tmp_path: Path) -> None:
    """With a monitored ModelCheckpoint the best checkpoint's encoder is exported too; ``mode="max"`` makes the
    first epoch's weights the "best", so they differ from the last ones."""
    from safetensors.torch import load_file
    from terratorch.registry import BACKBONE_REGISTRY

    from smarties_terratorch.pretrained import load_pretrained

    best_ckpt = ModelCheckpoint(dirpath=tmp_path / "best", monitor="train/loss_epoch", mode="max", save_top_k=1)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=3, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[best_ckpt], use_distributed_sampler=False,
    )  # fmt: skip
    task = _task()
    trainer.fit(task, PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1}], 32, 2))
    last, best = tmp_path / "smarties_encoder.safetensors", tmp_path / "smarties_encoder_best.safetensors"
    for path in (last, best):
        backbone = BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=S2["bands"], img_size=32)
        report = load_pretrained(backbone, path)
        assert report.missing_keys == [] and report.unexpected_keys == [] and report.ignored_keys == []
    saved = torch.load(best_ckpt.best_model_path, weights_only=False)
    assert saved["global_step"] < trainer.global_step  # the "best" (max loss) checkpoint is not the last state
    expected = {k.removeprefix("model.encoder."): v for k, v in saved["state_dict"].items() if "model.encoder." in k}
    exported = load_file(best)
    assert exported.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(exported[key], value, rtol=0, atol=0)
    assert any(not torch.equal(exported[k], v) for k, v in load_file(last).items())
    assert not (tmp_path / "smarties_encoder_best.safetensors.tmp").exists()


def test_no_best_export_without_monitor(pairs: Path, tmp_path: Path) -> None:
    trainer, _ = _trainer(tmp_path, 1)
    trainer.fit(_task(), PairedPretrainDataModule([{"list": str(pairs), "first": S2, "second": S1}], 32, 2))
    assert (tmp_path / "smarties_encoder.safetensors").is_file()
    assert not (tmp_path / "smarties_encoder_best.safetensors").exists()


@pytest.mark.slow  # builds the real demo data and trains 40 steps: one to two minutes on 2 cores
def test_loss_decreases_on_real_demo_data(tmp_path: Path) -> None:
    """Reduced demo: tiny model at 64 px, 40 steps of 8 samples, on the real S2-L1C / Landsat-8 / BigEarthNet demo
    data (measured: mean loss of the first 8 steps 1.221, of the last 8 steps 0.943)."""
    pl.seed_everything(0)
    losses = _Losses()
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=40, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[losses], use_distributed_sampler=False,
    )  # fmt: skip
    task = SmartiesPretrainTask(
        "smarties_vit_tiny_patch16", img_size=64, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=2,
        lr=1e-3, warmup_epochs=0,
    )  # fmt: skip
    trainer.fit(task, PairedPretrainDataModule("demo", img_size=64, batch_size=8))
    first, last = sum(losses.losses[:8]) / 8, sum(losses.losses[-8:]) / 8
    assert last < 0.85 * first, (first, last)


def test_cli_demo_config_runs_and_exports(tmp_path: Path, capsys, monkeypatch) -> None:
    config = str(REPO / "configs" / "pretrain_demo.yaml")
    monkeypatch.chdir(tmp_path)  # the config's run folder is relative to the working directory
    run = tmp_path / "smarties_pretrain_demo"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "-c", config, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "smarties_vit_tiny_patch16" in printed and "PairedPretrainDataModule" in printed
    assert cli_main(["fit", "-c", config, "--trainer.max_steps", "2", "--data.init_args.img_size", "64",
                     "--model.img_size", "64"]) == 0  # fmt: skip
    assert (run / "smarties_encoder.safetensors").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    "name, variant", [("vitb", "smarties_vit_base_patch16"), ("vitl", "smarties_vit_large_patch16")]
)
def test_paper_recipe_configs_parse(name: str, variant: str, capsys) -> None:
    config = str(REPO / "configs" / f"pretrain_{name}.yaml")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "-c", config, "--trainer.num_nodes", "4", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert f"variant: {variant}" in printed and "num_nodes: 4" in printed and "warmup_epochs: 20" in printed
