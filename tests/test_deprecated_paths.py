"""The pre-0.2 module paths keep working, with a deprecation warning, and give the very same objects."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c", code], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_lightning_alias_is_tasks() -> None:
    out = _run(
        "import smarties_terratorch.lightning.classification as old\n"
        "from smarties_terratorch.lightning.knn import SmartiesKNNTask\n"
        "import smarties_terratorch.tasks.classification as new, smarties_terratorch.tasks.knn as knn\n"
        "assert old is new and SmartiesKNNTask is knn.SmartiesKNNTask, (old, new)\n"
        "assert new.__spec__.name == 'smarties_terratorch.tasks.classification'\n"
    )
    assert out.returncode == 0, out.stderr
    assert "smarties_terratorch.lightning is deprecated" in out.stderr and "smarties_terratorch.tasks" in out.stderr


def test_terratorch_alias_is_backbone() -> None:
    out = _run(
        "import smarties_terratorch.terratorch as old, smarties_terratorch.backbone as new\n"
        "assert old is new and old.SmartiesBackbones is new.SmartiesBackbones\n"
    )
    assert out.returncode == 0, out.stderr
    assert "smarties_terratorch.terratorch is deprecated" in out.stderr


def test_new_paths_do_not_warn() -> None:
    out = _run("import smarties_terratorch.backbone, smarties_terratorch.tasks.pretrain")
    assert out.returncode == 0, out.stderr
    assert "deprecated" not in out.stderr
