"""The supported stacks: declared dependency bounds, and the guards for library changes we know about.

CI runs this file on both legs (Python 3.11 + TerraTorch 1.2.11 + torchgeo 0.8, Python 3.12 + TerraTorch 1.2.13 +
torchgeo 0.9).
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
import types
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIRS = [REPO / "smarties_terratorch" / "configs", REPO / "smarties_terratorch" / "pangaea" / "configs"]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def test_this_environment_is_inside_the_declared_bounds() -> None:
    """What CI tests is what pyproject allows (so a bound that no longer holds shows up here, not in a user's pip)."""
    outside = []
    for req in _requirements():
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            outside.append(f"{req.name} not installed")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            outside.append(f"{req.name} {installed} not in {req.specifier}")
    assert not outside, outside


def test_upper_bounds_are_only_the_known_ones() -> None:
    """No cap on torch/torchvision (CI's newest leg installs the newest); caps only on announced API changes."""
    capped = {req.name for req in _requirements() if any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier)}
    assert capped == {"terratorch", "torchgeo"}


def test_knn_task_imports_base_task_after_torchgeo_renames_trainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchgeo 0.10 renames ``torchgeo.trainers`` to ``torchgeo.tasks``: the kNN task imports from either."""
    from torchgeo.trainers import BaseTask

    renamed = types.ModuleType("torchgeo.tasks")
    renamed.BaseTask = BaseTask
    monkeypatch.setitem(sys.modules, "torchgeo.tasks", renamed)
    monkeypatch.setitem(sys.modules, "torchgeo.trainers", None)  # `import torchgeo.trainers` now raises ImportError
    spec = importlib.util.find_spec("smarties_terratorch.tasks.knn")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # a fresh copy, not the one in sys.modules
    assert module.BaseTask is BaseTask and issubclass(module.SmartiesKNNTask, BaseTask)


def test_no_config_uses_upernet_scale_modules() -> None:
    """TerraTorch 1.2.12 removed ``UperNetDecoder(scale_modules=...)``; the shipped configs build on 1.2.11-1.2.13
    with the ``LearnedInterpolateToPyramidal`` neck instead."""
    offenders = [str(p) for d in CONFIG_DIRS for p in sorted(d.rglob("*.yaml")) if "scale_modules" in p.read_text()]
    code = [str(p) for p in sorted((REPO / "smarties_terratorch").rglob("*.py")) if "scale_modules" in p.read_text()]
    assert not offenders and not code, offenders + code
