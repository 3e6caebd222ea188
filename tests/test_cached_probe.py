"""Cached-feature probes: same metric as the uncached run (same seed), features stored once and reused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from smarties_terratorch.bench.config import build_row_config
from smarties_terratorch.bench.run import execute
from smarties_terratorch.bench.table import Job, load_table
from smarties_terratorch.testing import make_fixture

TABLE = load_table()
ROWS = {r.id: r for r in TABLE.rows}


def _config(row_id: str, tmp_path: Path, epochs: int) -> Path:
    """The row's smoke config, trained for ``epochs`` full epochs with an evaluation after each."""
    root = tmp_path / "eurosat"
    if not root.exists():
        make_fixture("eurosat", root)
    job = Job(ROWS[row_id], "tiny", "smoke")
    prepared = build_row_config(job, TABLE, tmp_path / "run", fixtures=lambda name: root)
    cfg = copy.deepcopy(prepared.config)
    trainer = cfg["trainer"]
    trainer.pop("fast_dev_run")
    trainer.update(max_epochs=epochs, check_val_every_n_epoch=1, num_sanity_val_steps=0)
    cfg["data"]["init_args"]["batch_size"] = 4
    path = tmp_path / f"{row_id}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _run(row_id: str, config: Path, cache_dir: Path | None) -> dict[str, Any]:
    options = {"cache": cache_dir is not None, "cache_dir": str(cache_dir), "weights_sha256": None}
    return execute(Job(ROWS[row_id], "tiny", "smoke", options), config)


@pytest.mark.parametrize("row_id", ["eurosat_linprobe", "eurosat_knn"])
def test_cached_run_equals_uncached_run(row_id: str, tmp_path: Path) -> None:
    config = _config(row_id, tmp_path, epochs=2)
    plain = _run(row_id, config, None)
    cached = _run(row_id, config, tmp_path / "cache")
    assert not plain["feature_cache"]["used"] and cached["feature_cache"]["used"]
    assert cached["raw_value"] == pytest.approx(plain["raw_value"], abs=1e-3)
    assert cached["raw_value_max"] == pytest.approx(plain["raw_value_max"], abs=1e-3)
    if row_id == "eurosat_linprobe":  # two periodic evaluations, each equal; the losses agree too
        assert len(plain["evaluations"]) == len(cached["evaluations"]) == 2
        for (e1, v1), (e2, v2) in zip(plain["evaluations"], cached["evaluations"], strict=True):
            assert e1 == e2 and v1 == pytest.approx(v2, abs=1e-3)
        assert cached["metrics"]["val/loss"] == pytest.approx(plain["metrics"]["val/loss"], abs=1e-4)
    splits = cached["feature_cache"]["splits"]
    assert {s["reused"] for s in splits.values()} == {False}
    assert splits["train"]["samples"] == 10 and splits["val"]["samples"] == 10
    again = _run(row_id, config, tmp_path / "cache")  # second run: the stored features are read back
    assert {s["reused"] for s in again["feature_cache"]["splits"].values()} == {True}
    assert again["raw_value"] == pytest.approx(cached["raw_value"], abs=1e-6)


def test_cache_key_follows_weights_bands_and_preprocessing(tmp_path: Path) -> None:
    from smarties_terratorch.tasks.cached import cache_key

    base = cache_key("a" * 64, ["B02"], {"size": 224}, "train")
    assert base == cache_key("a" * 64, ["B02"], {"size": 224}, "train")
    assert base != cache_key("b" * 64, ["B02"], {"size": 224}, "train")
    assert base != cache_key("a" * 64, ["B03"], {"size": 224}, "train")
    assert base != cache_key("a" * 64, ["B02"], {"size": 120}, "train")
    assert base != cache_key("a" * 64, ["B02"], {"size": 224}, "val")


def test_not_cacheable_with_augmentation_or_trainable_encoder(tmp_path: Path) -> None:
    from terratorch.cli_tools import build_lightning_cli

    from smarties_terratorch.tasks.cached import cacheable

    config = _config("eurosat_linprobe", tmp_path, epochs=1)
    cli = build_lightning_cli(["-c", str(config)], run=False)
    assert cacheable(cli.model, cli.datamodule) is None
    cli.datamodule.augment = True
    assert "augment" in cacheable(cli.model, cli.datamodule)
    cli.datamodule.augment = False
    next(cli.model.model.encoder.parameters()).requires_grad_(True)
    assert "trainable" in cacheable(cli.model, cli.datamodule)


def test_features_as_input_keeps_the_state_dict(tmp_path: Path) -> None:
    from terratorch.cli_tools import build_lightning_cli

    from smarties_terratorch.tasks.cached import features_as_input

    cli = build_lightning_cli(["-c", str(_config("eurosat_linprobe", tmp_path, epochs=1))], run=False)
    keys = set(cli.model.state_dict())
    with features_as_input(cli.model):
        assert set(cli.model.state_dict()) == keys  # checkpoints of cached runs hold every weight
        out = cli.model(torch.randn(3, cli.model.model.encoder.embed_dim)).output
        assert out.shape == (3, 10)
    assert "forward" not in vars(cli.model.model.encoder)
