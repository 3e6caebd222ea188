"""Run a shipped TerraTorch/LightningCLI config in-process on tiny settings (torchgeo-style trainer tests)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def set_path(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"]["c"] = value`` for ``dotted="a.b.c"``, creating dicts on the way."""
    *parents, leaf = dotted.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def tiny_model_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """Swap a config's SMARTIES backbone for the 2-block tiny variant without weights."""
    args = dict(model_args)
    args["backbone"] = "smarties_vit_tiny_patch16"
    for key in ("backbone_ckpt_path", "backbone_pretrained", "backbone_revision"):
        args.pop(key, None)
    if "backbone_out_indices" in args:
        args["backbone_out_indices"] = [min(i, 1) if i >= 0 else i for i in args["backbone_out_indices"]]
    necks = []
    for neck in args.get("necks", []) or []:
        neck = dict(neck)
        if neck.get("name") == "SelectIndices":
            neck["indices"] = [min(i, 1) if i >= 0 else i for i in neck["indices"]]
        necks.append(neck)
    if necks:
        args["necks"] = necks
    return args


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
