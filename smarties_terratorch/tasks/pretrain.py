"""SMARTIES MAE pre-training as a LightningModule and a LightningCLI (``smarties pretrain``).

Usage::

    smarties pretrain fit -c configs/pretrain_demo.yaml                      # tiny model, real demo data, CPU
    smarties pretrain fit -c configs/pretrain_vitb.yaml --trainer.devices 8  # the paper recipe
    smarties pretrain fit -c configs/pretrain_demo.yaml --print_config
    smarties pretrain fit -c configs/pretrain_demo.yaml --ckpt_path last     # resume from <run>/checkpoints/last.ckpt

Recipe (the paper's pre-training setup): AdamW (0.9, 0.95), weight decay 0.05 except on 1-D parameters (biases, norms),
``lr = blr * effective_batch / 256`` with ``effective_batch = batch_size * devices * num_nodes *
accumulate_grad_batches``, linear warmup then cosine decay, stepped per optimiser step. At the end of ``fit`` the
encoder is written in the official layout to ``<trainer.default_root_dir>/<export_name>`` (safetensors), ready
for ``smarties_vit_*_patch16(ckpt_path=...)`` or TerraTorch's ``backbone_ckpt_path``; when a ``ModelCheckpoint``
monitors a metric (e.g. ``monitor: train/loss_epoch``), the encoder of its best checkpoint is also written, as
``<export stem>_best.safetensors``.

Reproducibility: masking and mixup positions come from a generator seeded by ``(seed, epoch, batch index,
rank)``, and :class:`~smarties_terratorch.datamodules.paired.PairedPretrainDataModule` stores its position in
checkpoints, so a run killed after a mid-epoch or end-of-epoch checkpoint and resumed with ``--ckpt_path last``
logs the same per-step losses as an uninterrupted run (tested with SIGKILL in a separate process).
Lightning writes checkpoints atomically (a temporary file renamed into place), so a write interrupted mid-way
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from timm.optim import param_groups_weight_decay
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from ..checkpoints import SafeCheckpointLoading, check_ckpt_path, read_lightning_checkpoint
from ..models.mae import MixupMode, SmartiesMAE
from ..pretrained import save_weights
from .schedules import cosine_warmup_factor

__all__ = ["PretrainCLI", "SmartiesPretrainTask", "cli_main"]

log = logging.getLogger(__name__)


class SmartiesPretrainTask(pl.LightningModule):
    """MAE pre-training of a SMARTIES encoder with cross-sensor token mixup.

    Args:
        variant: encoder architecture (``smarties_vit_{tiny,base,large}_patch16``).
        img_size: training image side; must equal the data module's ``img_size``.
        decoder_embed_dim, decoder_depth, decoder_num_heads: decoder (512 / 8 / 16 in the paper).
        mask_ratio: share of masked tokens (0.75).
        mixup_ratio: share of view-1 tokens from the first sensor (0.5).
        mixup: ``"mirrored"`` (paper, default), ``"released"`` (one-sided, the released code) or ``"none"``.
        norm_pix_loss: per-patch normalised targets.
        blr: base learning rate per 256 samples (1.5e-4).
        lr: absolute learning rate; overrides ``blr`` scaling when set.
        weight_decay: AdamW weight decay on >= 2-D parameters (0.05).
        betas: AdamW betas ((0.9, 0.95)).
        warmup_epochs: linear warmup length in epochs (20 of 300 in the paper); may be fractional.
        seed: seed of masking and mixup positions.
        export_name: file name of the exported encoder in ``trainer.default_root_dir``.
        encoder_ckpt_path: start the encoder from these weights (official layout), e.g. continued pre-training.
    """

    def __init__(
        self,
        variant: str = "smarties_vit_base_patch16",
        img_size: int = 224,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mask_ratio: float = 0.75,
        mixup_ratio: float = 0.5,
        mixup: MixupMode = "mirrored",
        norm_pix_loss: bool = True,
        blr: float = 1.5e-4,
        lr: float | None = None,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_epochs: float = 20.0,
        seed: int = 0,
        export_name: str = "smarties_encoder.safetensors",
        encoder_ckpt_path: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # The epoch-mean loss is kept here, not in Lightning's logger state, so that checkpoints can carry it: a run
        # resumed mid-epoch then averages over the whole epoch, as an uninterrupted run does (see on_save_checkpoint).
        self.epoch_loss = MeanMetric()
        self._pending_epoch_loss: dict[str, Any] | None = None
        self.model = SmartiesMAE(
            variant,
            img_size=img_size,
            decoder_embed_dim=decoder_embed_dim,
            decoder_depth=decoder_depth,
            decoder_num_heads=decoder_num_heads,
            mask_ratio=mask_ratio,
            mixup_ratio=mixup_ratio,
            mixup=mixup,
            norm_pix_loss=norm_pix_loss,
            encoder_ckpt_path=encoder_ckpt_path,
        )

    @property
    def encoder(self) -> torch.nn.Module:
        return self.model.encoder

    def _generator(self, batch_idx: int) -> torch.Generator:
        # A function of the batch's position in the epoch's batch list only: a resumed run draws the same masks as
        # an uninterrupted one, and rank r's batch k (the sampler's global batch k * world_size + r) draws the
        # masks a single process draws for that batch, so N ranks train as one process accumulating N batches.
        position = batch_idx * self.trainer.world_size + self.global_rank
        key = ((self.hparams.seed * 1_000_003 + self.current_epoch) * 1_000_003 + position) * 1024
        return torch.Generator(device=self.device).manual_seed(key % (2**63 - 1))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self.model(
            batch["image_a"], batch["bands_a"], batch["image_b"], batch["bands_b"], generator=self._generator(batch_idx)
        )
        bs = batch["image_a"].shape[0]
        # Averaged over ranks: the logged loss and a ModelCheckpoint monitoring train/loss_epoch see the global value.
        self.log("train/loss_step", out.loss, prog_bar=True, on_step=True, batch_size=bs, sync_dist=True)
        self.epoch_loss.update(out.loss.detach(), weight=bs)
        self.log_dict(
            {"train/loss_view1": out.view_losses[0], "train/loss_view2": out.view_losses[1]},
            on_step=True,
            batch_size=bs,
        )
        return out.loss

    # ------------------------------------------------------------------ epoch metrics across a resume
    def on_train_epoch_start(self) -> None:
        self.epoch_loss.reset()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        pending, self._pending_epoch_loss = self._pending_epoch_loss, None
        # Restored only where the saved run stopped: the same epoch, at the batch after the last one it averaged.
        if pending and pending["epoch"] == self.current_epoch and pending["batches"] == batch_idx:
            # The saved state sums every rank's steps: restored on rank 0 only, so the ranks' sum counts them once.
            if self.global_rank == 0:
                for name, value in pending["state"].items():
                    setattr(self.epoch_loss, name, value.to(self.device))
            self.epoch_loss._update_count = batch_idx  # noqa: SLF001 - compute() warns when it thinks nothing was added

    def on_train_epoch_end(self) -> None:
        # Logged from this hook: Lightning runs monitoring callbacks (ModelCheckpoint on train/loss_epoch) after it.
        if self.epoch_loss.update_count:
            self.log("train/loss_epoch", self.epoch_loss.compute(), prog_bar=True)
        self.epoch_loss.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the running epoch-mean loss, so that a run resumed mid-epoch averages the whole epoch.

        Lightning builds the checkpoint on every rank, so the states are summed over ranks here (a collective).
        """
        dist = torch.distributed
        with self.epoch_loss.sync_context(should_sync=dist.is_available() and dist.is_initialized()):
            state = {k: v.detach().cpu().clone() for k, v in self.epoch_loss.metric_state.items()}
        checkpoint["smarties_epoch_loss"] = {
            "epoch": self.current_epoch,
            "batches": self.epoch_loss.update_count,
            "state": state,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._pending_epoch_loss = checkpoint.get("smarties_epoch_loss")

    # ------------------------------------------------------------------ optimisation
    def effective_batch_size(self) -> int:
        """Samples per optimiser step over all devices: batch * world size * gradient accumulation."""
        trainer = self.trainer
        batch = getattr(trainer.datamodule, "batch_size", None) if trainer.datamodule is not None else None
        if batch is None:
            raise ValueError("Cannot scale the learning rate: the data module has no batch_size; set model.lr instead")
        return int(batch) * trainer.world_size * trainer.accumulate_grad_batches

    def stepping_batches(self) -> int:
        """Optimiser steps of the whole run, as ``trainer.estimated_stepping_batches``, without setting up the
        trainer's train loader.

        ``estimated_stepping_batches`` sets the fit loop's train loader up when called from
        ``configure_optimizers``; on a resumed run that happens before Lightning restores the loop state, and the
        loop then keeps that loader and never hands it the checkpoint's position (Lightning issue #20550), so a
        run resumed mid-epoch would restart the epoch. The length is taken from a throw-away loader of the data
        module instead (building one reads no data); the data module's own loader must shard batches over ranks
        itself (``use_distributed_sampler=False``), as :class:`PairedPretrainDataModule` does.
        """
        trainer = self.trainer
        if trainer.max_epochs is None or trainer.max_epochs < 0 or trainer.datamodule is None:
            return int(trainer.estimated_stepping_batches)  # step-limited runs: Lightning needs no loader here
        batches = len(trainer.datamodule.train_dataloader())
        limit = trainer.limit_train_batches  # Lightning's rule: an int caps the count, a float scales it
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
        total = math.ceil(batches / trainer.accumulate_grad_batches) * max(trainer.max_epochs, 1)
        return min(total, trainer.max_steps) if trainer.max_steps != -1 else total

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        lr = hp.lr if hp.lr is not None else hp.blr * self.effective_batch_size() / 256
        # As released: decay on every >= 2-D parameter (CLS and mask tokens too), none on 1-D ones; frozen ones are left out.
        groups = param_groups_weight_decay(self.model, hp.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=hp.betas)
        total = self.stepping_batches()
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else None
        steps_per_epoch = total / epochs if epochs else max(total, 1)
        warmup = round(hp.warmup_epochs * steps_per_epoch) if epochs else 0
        log.info("MAE pre-training: lr %.3g, %d optimiser steps, %d warmup steps", lr, total, warmup)
        scheduler = LambdaLR(optimizer, lambda step: cosine_warmup_factor(step, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ export
    def export_path(self) -> Path:
        return Path(self.trainer.default_root_dir) / self.hparams.export_name

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint of the first ``ModelCheckpoint`` with a ``monitor``, or ``None`` (no monitor, or
        nothing saved yet)."""
        for callback in self.trainer.checkpoint_callbacks:
            if getattr(callback, "monitor", None) and getattr(callback, "best_model_path", ""):
                return Path(callback.best_model_path)
        return None

    def _best_encoder(self, ckpt: Path) -> torch.nn.Module:
        # A copy of the encoder holding the checkpoint's weights: the live model keeps training state untouched.
        state = read_lightning_checkpoint(ckpt)["state_dict"]
        prefix = "model.encoder."
        encoder = copy.deepcopy(self.encoder).cpu()
        encoder.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        return encoder

    def on_fit_end(self) -> None:
        """Export the last encoder to ``export_path()`` and, when a ``ModelCheckpoint`` monitors a metric, the
        best one to ``<stem>_best.safetensors`` (the authors keep both)."""
        if not self.trainer.is_global_zero:
            return
        meta = {"variant": self.hparams.variant, "global_step": str(self.global_step)}
        path = save_weights(self.encoder, self.export_path(), metadata=meta)
        print(f"Exported the pre-trained encoder to {path.resolve()}")
        best = self.best_checkpoint()
        if best is not None:
            step = read_lightning_checkpoint(best).get("global_step", "")
            meta = {"variant": self.hparams.variant, "global_step": str(step), "checkpoint": best.name}
            out = self.export_path().with_name(self.export_path().stem + "_best.safetensors")
            save_weights(self._best_encoder(best), out, metadata=meta)
            print(f"Exported the best encoder ({best.name}) to {out.resolve()}")


class PretrainCLI(LightningCLI):
    """The LightningCLI of ``smarties pretrain``: ``--ckpt_path`` is checked before anything reads it (a URL or a
    file holding code is refused in one line) and the Trainer loads checkpoints without running code
    (:class:`~smarties_terratorch.checkpoints.SafeCheckpointLoading`)."""

    def parse_arguments(self, parser: Any, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand:  # LightningCLI reads the checkpoint's hyperparameters right after parsing
            check_ckpt_path(self.config[subcommand].get("ckpt_path"))


def shipped_config_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with each ``-c/--config configs/NAME.yaml`` that does not exist here replaced by the package's copy.

    The documented commands name ``configs/pretrain_demo.yaml`` as in a checkout; a pip install has no such
    folder, but ships the same files as package data (``smarties config NAME`` prints them). A file that exists
    where it is named always wins.
    """
    root = Path(__file__).resolve().parents[1] / "configs"
    out = list(argv)
    for i, item in enumerate(out[:-1]):
        if item not in ("-c", "--config"):
            continue
        path = Path(out[i + 1])
        shipped = root / Path(*path.parts[1:]) if path.parts[:1] == ("configs",) and len(path.parts) > 1 else None
        if not path.exists() and shipped is not None and shipped.is_file():
            log.info("%s: not found here, using the config shipped with the package (%s)", path, shipped)
            out[i + 1] = str(shipped)
    return out


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``smarties pretrain ...``: a LightningCLI over :class:`SmartiesPretrainTask` and any LightningDataModule
    (``PairedPretrainDataModule`` by default). Returns 0 on success."""
    import sys

    from ..datamodules.paired import PairedPretrainDataModule

    argv = shipped_config_argv(sys.argv[1:] if argv is None else argv)

    with warnings.catch_warnings():
        # `smarties pretrain` hands its own argv over; LightningCLI would warn that sys.argv differs.
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        PretrainCLI(
            SmartiesPretrainTask,
            PairedPretrainDataModule,
            subclass_mode_data=True,
            args=argv,
            parser_kwargs={"prog": "smarties pretrain"},  # its messages then name the command to run
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            trainer_defaults={"callbacks": [SafeCheckpointLoading()]},
        )
    return 0
