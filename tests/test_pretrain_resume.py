"""Kill-and-resume of ``smarties pretrain fit`` in a real process: SIGKILL right after a checkpoint, resume from
``last``, and the logged per-step losses must equal those of an uninterrupted run, step by step.

The demo recipe (real demo data, ``configs/pretrain_demo.yaml``) runs with a tiny encoder at 32 px, batch 16, and
``limit_train_batches=12`` (the first 12 of the epoch's 33 batches) for 3 epochs = 36 steps, to keep it short. A
checkpoint is written every ``k`` steps under its own name (``epoch=E-step=S.ckpt``) and as ``last.ckpt``; the test
waits for both, kills the process with SIGKILL and resumes with ``--ckpt_path last``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH, EPOCHS = 12, 3

OVERRIDES = {
    "trainer": {
        "max_epochs": EPOCHS,
        "limit_train_batches": STEPS_PER_EPOCH,
        "log_every_n_steps": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            # flush every row: rows written before a SIGKILL are on disk
            "init_args": {"save_dir": "run", "flush_logs_every_n_steps": 1},
        },
        "default_root_dir": "run",
    },
    "model": {"img_size": 32, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2},
    "data": {"init_args": {"img_size": 32, "batch_size": 16}},
}


def _config(folder: Path, every: int) -> Path:
    cfg = {**OVERRIDES, "trainer": dict(OVERRIDES["trainer"])}
    cfg["trainer"]["callbacks"] = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "dirpath": "run/checkpoints",
                "save_last": True,
                "save_top_k": -1,
                "every_n_train_steps": every,
            },
        }
    ]
    path = folder / "override.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _command(folder: Path, every: int, *extra: str) -> list[str]:
    config = REPO / "configs" / "pretrain_demo.yaml"
    return [sys.executable, "-m", "smarties_terratorch.cli", "pretrain", "fit", "-c", str(config),
            "-c", str(_config(folder, every)), *extra]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # same kernels in every run; keeps CPU use low
    return env


def _rows(run: Path) -> list[dict[str, str]]:
    """The rows of a run's newest CSV log (a resumed run writes a new version)."""
    versions = sorted((run / "lightning_logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    with (versions[-1] / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def _losses(run: Path) -> dict[int, float]:
    """``{global step: train/loss_step}`` of a run's newest CSV log."""
    return {int(r["step"]): float(r["train/loss_step"]) for r in _rows(run) if r.get("train/loss_step")}


def _epoch_losses(run: Path) -> dict[int, float]:
    """``{epoch: train/loss_epoch}`` of a run's newest CSV log (what the best-encoder export is chosen by)."""
    return {int(r["epoch"]): float(r["train/loss_epoch"]) for r in _rows(run) if r.get("train/loss_epoch")}


def _run(folder: Path, every: int, *extra: str) -> None:
    proc = subprocess.run(_command(folder, every, *extra), cwd=folder, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _run_and_kill(folder: Path, every: int, wait_for: str) -> None:
    """Start a run and SIGKILL it as soon as ``run/checkpoints/<wait_for>`` and the matching ``last.ckpt`` exist."""
    target, last = folder / "run" / "checkpoints" / wait_for, folder / "run" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(_command(folder, every), cwd=folder, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        # ModelCheckpoint writes the named checkpoint, then last.ckpt (atomically): wait for both.
        while not (target.exists() and last.exists() and last.stat().st_mtime_ns >= target.stat().st_mtime_ns):
            if proc.poll() is not None:
                raise AssertionError(f"run ended before {wait_for} was written:\n{proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {wait_for} after 240 s")
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    folder = tmp_path_factory.mktemp("reference")
    _run(folder, 1000)
    losses = _losses(folder / "run")
    assert sorted(losses) == list(range(EPOCHS * STEPS_PER_EPOCH))
    epochs = _epoch_losses(folder / "run")
    assert sorted(epochs) == list(range(EPOCHS))
    for epoch, mean in epochs.items():  # the epoch loss is the mean of the epoch's step losses (equal batches)
        steps = [losses[s] for s in range(epoch * STEPS_PER_EPOCH, (epoch + 1) * STEPS_PER_EPOCH)]
        assert mean == pytest.approx(sum(steps) / len(steps), rel=1e-5)
    return {**losses, "epochs": epochs}


def _kill_and_resume(tmp_path: Path, every: int, kill_after: int, reference: dict) -> None:
    epoch = kill_after // STEPS_PER_EPOCH - (kill_after % STEPS_PER_EPOCH == 0)
    _run_and_kill(tmp_path, every, f"epoch={epoch}-step={kill_after}.ckpt")
    saved = torch.load(tmp_path / "run/checkpoints/last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert saved >= kill_after and saved % every == 0  # a later checkpoint may land before the kill
    _run(tmp_path, every, "--ckpt_path", "last")
    losses = _losses(tmp_path / "run")  # the resumed process's log only
    epochs = _epoch_losses(tmp_path / "run")
    resumed_epoch = saved // STEPS_PER_EPOCH
    # every epoch the resumed process finished, including the interrupted one, has the uninterrupted run's mean
    assert sorted(epochs) == list(range(resumed_epoch, EPOCHS))
    for epoch, mean in epochs.items():
        assert mean == pytest.approx(reference["epochs"][epoch], abs=1e-6), f"epoch {epoch}"
    reference = {k: v for k, v in reference.items() if k != "epochs"}
    resumed = [s for s in sorted(reference) if s >= saved]
    assert sorted(losses) == resumed
    diffs = [abs(losses[s] - reference[s]) for s in resumed]
    first_bad = next((s for s, d in zip(resumed, diffs) if d > 1e-6), None)
    print(f"resumed from step {saved}: {len(resumed)} steps, max |loss - reference| {max(diffs):.3g}")
    assert first_bad is None, f"steps {saved}..: max |diff| {max(diffs):.4g}, first differing step {first_bad}"


def test_resume_after_sigkill_mid_epoch(tmp_path: Path, reference: dict[int, float]) -> None:
    """Killed after the step-16 checkpoint: 4 batches into the second epoch."""
    _kill_and_resume(tmp_path, 8, 16, reference)


@pytest.mark.slow
def test_resume_after_sigkill_at_epoch_boundary(tmp_path: Path, reference: dict[int, float]) -> None:
    """Killed after the step-12 checkpoint, written after the last batch of the first epoch."""
    _kill_and_resume(tmp_path, 12, 12, reference)
