"""Run a shipped TerraTorch/LightningCLI config in-process on tiny settings (torchgeo-style trainer tests)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from smarties_terratorch.testing import set_path, tiny_model_args

__all__ = ["CONFIGS", "REPO", "run_config", "set_path", "tiny_model_args"]

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def run_config(
    config: str | Path, tmp_path: Path, overrides: dict[str, Any] | None = None, subcommand: str = "fit"
) -> Any:
    """Load ``config`` (a path, or a name under ``configs/``), shrink it, apply ``overrides`` (dotted keys) and run
    ``terratorch <subcommand>`` in-process with ``fast_dev_run``. Returns the LightningCLI object."""
    from terratorch.cli_tools import build_lightning_cli

    path = Path(config) if Path(config).exists() else CONFIGS / config
    cfg = copy.deepcopy(yaml.safe_load(path.read_text()))
    model_args = cfg.get("model", {}).get("init_args", {}).get("model_args")
    if model_args is not None:
        cfg["model"]["init_args"]["model_args"] = tiny_model_args(model_args)
    trainer = cfg.setdefault("trainer", {})
    trainer.update(accelerator="cpu", devices=1, fast_dev_run=1, default_root_dir=str(tmp_path / "run"), logger=False)
    trainer.pop("strategy", None)
    trainer.pop("num_nodes", None)
    for dotted, value in (overrides or {}).items():
        set_path(cfg, dotted, value)
    out = tmp_path / f"test_{path.name}"
    out.write_text(yaml.safe_dump(cfg))
    return build_lightning_cli([subcommand, "-c", str(out)])
