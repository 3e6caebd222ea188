"""Tiny fake datasets in each dataset's real on-disk layout (torchgeo-style fixture generators).

One module per dataset, each with ``make(root, ...)``. The tests use them, and so does ``smarties bench run
--smoke``, which proves every row of the paper table runs end-to-end without the real data. Nothing written
here is real imagery.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["FIXTURES", "make_fixture", "set_path", "tiny_model_args"]

#: Dataset name -> module of its generator.
FIXTURES: tuple[str, ...] = (
    "bigearthnet",
    "burnscars",
    "dfc2020",
    "dynamicearthnet",
    "eurosat",
    "resisc45",
    "sickle",
    "spacenet7",
    "ucmerced",
    "whurs19",
)


def make_fixture(name: str, root: str | Path, **kwargs: Any) -> Path:
    """Write the fixture of dataset ``name`` under ``root``; returns what its ``make`` returns.

    Raises:
        ValueError: unknown dataset name.
    """
    if name not in FIXTURES:
        raise ValueError(f"No fixture generator for {name!r}; known: {', '.join(FIXTURES)}")
    return importlib.import_module(f"{__name__}.{name}").make(root, **kwargs)


def set_path(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """``cfg["a"]["b"]["c"] = value`` for ``dotted="a.b.c"``, creating dicts on the way."""
    *parents, leaf = dotted.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def tiny_model_args(
    model_args: dict[str, Any], arch: str = "smarties_vit_tiny_patch16", depth: int = 2
) -> dict[str, Any]:
    """A copy of a TerraTorch config's ``model_args`` with the backbone swapped for ``arch`` (``depth`` blocks) and no
    weights; block indices (``backbone_out_indices``, ``SelectIndices`` necks) are clamped to the smaller depth."""

    def clamp(indices: list[int]) -> list[int]:
        return [min(i, depth - 1) if i >= 0 else i for i in indices]

    args = dict(model_args)
    args["backbone"] = arch
    for key in ("backbone_ckpt_path", "backbone_pretrained", "backbone_revision"):
        args.pop(key, None)
    if "backbone_out_indices" in args:
        args["backbone_out_indices"] = clamp(args["backbone_out_indices"])
    if args.get("necks"):
        args["necks"] = [
            {**neck, "indices": clamp(neck["indices"])} if neck.get("name") == "SelectIndices" else dict(neck)
            for neck in args["necks"]
        ]
    return args
