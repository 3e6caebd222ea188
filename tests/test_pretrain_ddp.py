"""Distributed pre-training on CPU (gloo): ``smarties pretrain fit`` with ``strategy=ddp, devices=2`` in real processes.

What sharding implies: :class:`~smarties_terratorch.datamodules.paired.SourceBatchSampler` builds one epoch's list of
one-source batches of ``batch_size`` and gives rank ``r`` the batches ``r, r + N, r + 2N, ...``; augmentation seeds
and masks are functions of a batch's position in that list. So with ``N`` ranks of batch ``b``, step ``k`` trains
on batches ``kN .. kN + N - 1`` of a single process with batch ``b`` (same samples, augmentations and masks), and
DDP averages their gradients: the run equals ONE process with batch ``b`` and ``accumulate_grad_batches=N``. It is
NOT the same as one process with batch ``N * b``: batches hold one source each and are cut per source, so batches
of ``2b`` group different samples. Both give the same effective batch, so the same learning rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
STEPS = 4


class BatchLossWriter(Callback):
    """Appends ``{"rank", "batch_idx", "step", "loss"}`` per training batch to ``<path>.rank<R>.jsonl``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        row = {"rank": trainer.global_rank, "batch_idx": batch_idx, "step": trainer.global_step,
               "loss": float(outputs["loss"])}  # fmt: skip
        with open(f"{self.path}.rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


def _run(
    folder: Path, config: str, overrides: dict[str, Any], *extra: str, timeout: float = 600, torchrun: bool = False
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    override = folder / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    launcher = [sys.executable]
    if torchrun:  # torchrun, standalone: one node, a free rendezvous port
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd = [*launcher, "-m", "smarties_terratorch.cli", "pretrain", "fit", "-c", str(REPO / "configs" / config),
           "-c", str(override), *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]


def _run_here(folder: Path, config: str, overrides: dict[str, Any]) -> None:
    """The single-process reference in this process (saves a start-up), with one intra-op thread like the ranks."""
    from smarties_terratorch.tasks.pretrain import cli_main

    folder.mkdir(parents=True, exist_ok=True)
    override = folder / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli_main(["fit", "-c", str(REPO / "configs" / config), "-c", str(override)]) == 0
    finally:
        torch.set_num_threads(threads)


def _demo_overrides(folder: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "trainer": {
            "max_steps": STEPS, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "default_root_dir": str(folder),
            "callbacks": [{"class_path": "test_pretrain_ddp.BatchLossWriter",
                           "init_args": {"path": str(folder / "losses")}}],
            **trainer,
        },
        "model": {"img_size": 32, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2},
        "data": {"init_args": {"img_size": 32, "batch_size": 4}},
    }  # fmt: skip


def _rows(folder: Path, rank: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / f"losses.rank{rank}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("launcher", ["lightning", pytest.param("torchrun", marks=pytest.mark.slow)])
def test_two_ddp_ranks_equal_one_process_accumulating_two_batches(tmp_path: Path, launcher: str) -> None:
    """``--trainer.devices 2`` (Lightning starts the second process) or ``torchrun --nproc-per-node 2``."""
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    strategy = {"strategy": "ddp_find_unused_parameters_true", "devices": 2, "accelerator": "cpu"}
    _run(ddp, "pretrain_demo.yaml", _demo_overrides(ddp, **strategy), torchrun=launcher == "torchrun")
    _run_here(single, "pretrain_demo.yaml", _demo_overrides(single, accumulate_grad_batches=2))
    one = [2 * r["loss"] for r in _rows(single, 0)]  # Lightning hands callbacks the loss / accumulate_grad_batches
    assert len(one) == 2 * STEPS
    ranks = [_rows(ddp, r) for r in (0, 1)]
    assert [len(r) for r in ranks] == [STEPS, STEPS]
    diffs = []
    for rank, rows in enumerate(ranks):
        for row in rows:  # rank r's batch k is the single process's batch 2k + r; both step k
            diffs.append(abs(row["loss"] - one[2 * row["batch_idx"] + rank]))
    print(f"{launcher}: 2 ranks x batch 4 vs 1 process x batch 4 x accumulate 2: max |loss diff| {max(diffs):.3g} over "
          f"{len(diffs)} batches; losses {[round(x, 6) for x in one]}")  # fmt: skip
    assert diffs[0] == 0 and diffs[STEPS] == 0  # first step: same weights, samples, masks
    assert max(diffs) <= 1e-6  # measured: 0 (bitwise equal) on 4 steps


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vitb", "vitl"])
def test_paper_recipe_runs_a_step_on_two_ranks(tmp_path: Path, name: str) -> None:
    """The ViT-B/L recipes as written (model, decoder, optimiser, DDP strategy) at 32 px on the demo data, batch
    2 per rank, 2 CPU ranks, one optimiser step (ViT-L: about 10 GB of memory for the two processes)."""
    overrides = {
        "trainer": {
            "accelerator": "cpu", "devices": 2, "precision": 32, "max_steps": 1, "logger": False,
            "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
            "default_root_dir": str(tmp_path),
            "callbacks": [{"class_path": "test_pretrain_ddp.BatchLossWriter",
                           "init_args": {"path": str(tmp_path / "losses")}}],
        },
        "model": {"img_size": 32},
        "data": {"init_args": {"sources": "demo", "img_size": 32, "batch_size": 2, "num_workers": 0}},
    }  # fmt: skip
    _run(tmp_path, f"pretrain_{name}.yaml", overrides, timeout=1200)
    for rank in (0, 1):
        (row,) = _rows(tmp_path, rank)
        assert row["step"] == 1 and 0 < row["loss"] < 10
    assert (tmp_path / "smarties_encoder.safetensors").stat().st_size > (80e6 if name == "vitb" else 300e6)
