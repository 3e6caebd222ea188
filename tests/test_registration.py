"""Zero-line registration: the wheel's startup ``.pth`` makes ``backbone: smarties_vit_*`` work in TerraTorch with no
callback, ``custom_modules_path`` or import; ``SMARTIES_TERRATORCH_AUTOLOAD=0`` switches it off.

Each check runs in a fresh venv built from the wheel (and one from ``pip install -e``), in a subprocess, from a
temporary directory. The venvs reuse this environment's dependencies through a plain path ``.pth`` (no reinstall of
torch), which adds the directory without running its ``.pth`` files, so this checkout's own install stays inactive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from test_terratorch import CALLBACK_LINE, FIT_OK, FIT_YAML, _clean_env, _run_all, _write_fixture

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "_smarties_terratorch_autoload.py", "smarties_terratorch"]
PTH = "smarties_terratorch_autoload.pth"


def _pip(*args: str | Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *map(str, args)], check=True, capture_output=True)


def _venv(root: Path) -> tuple[Path, Path]:
    """A venv without pip whose ``sys.path`` ends with this environment's site-packages; returns (python, purelib)."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(root)], check=True)  # noqa: SLF001
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, Path(purelib)


def _source_copy(root: Path) -> Path:
    """The package sources alone (no caches, no build leftovers), so building never touches the checkout."""
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    return src


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """``{"wheel": ..., "editable": ...}``: fresh venvs with the package installed from a built wheel and with
    ``pip install -e``."""
    root = tmp_path_factory.mktemp("registration")
    src = _source_copy(root)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "dist", src)
    wheel = next((root / "dist").glob("smarties_terratorch-*.whl"))
    out = {"wheel": _venv(root / "venv-wheel"), "editable": _venv(root / "venv-editable")}
    # --ignore-installed: the dependencies' path may hold a regular install of this package (`pip install .`, as
    # CI does), which pip would take as already satisfied; it never uninstalls anything outside the new venv.
    install = ("install", "--no-deps", "--no-index", "--ignore-installed")
    _pip("--python", out["wheel"][0], *install, wheel)
    _pip("--python", out["editable"][0], *install, "--no-build-isolation", "-e", src)
    return out


BUILD = f"""
    import sys
    assert "torch" not in sys.modules and "smarties_terratorch" not in sys.modules, "startup imported too much"
    from terratorch.models import EncoderDecoderFactory
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone="smarties_vit_tiny_patch16", backbone_bands=["VV", "VH"],
        necks=[{{"name": "SelectIndices", "indices": [-1]}}, {{"name": "ReshapeTokensToImage"}}],
        decoder="IdentityDecoder", num_classes=2,
    )
    where = sys.modules["smarties_terratorch"].__file__
    assert not where.startswith({str(REPO / "smarties_terratorch")!r}), f"imported the checkout: {{where}}"
    print("BUILT", type(model.encoder).__name__)
"""

NOT_REGISTERED = """
    import sys
    from terratorch.registry import TERRATORCH_BACKBONE_REGISTRY
    assert "smarties_terratorch" not in sys.modules
    assert "smarties_vit_tiny_patch16" not in TERRATORCH_BACKBONE_REGISTRY
    import smarties_terratorch  # the explicit way still registers
    assert "smarties_vit_tiny_patch16" in TERRATORCH_BACKBONE_REGISTRY
    print("OFF-OK")
"""


@pytest.fixture(scope="module")
def runs(venvs: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every check in its own interpreter, started together (they are mostly import time)."""
    cwd = tmp_path_factory.mktemp("user-project")
    _write_fixture(cwd / "data")
    bare = FIT_YAML.replace(CALLBACK_LINE, "").replace("  callbacks:\n", "")
    assert "smarties" not in bare.replace("smarties_vit_tiny_patch16", "")
    (cwd / "user.yaml").write_text(bare)
    wheel, editable = venvs["wheel"][0], venvs["editable"][0]
    off = _clean_env(SMARTIES_TERRATORCH_AUTOLOAD="0")
    return _run_all(
        {
            "wheel build": ([wheel, "-c", textwrap.dedent(BUILD)], _clean_env()),
            "editable build": ([editable, "-c", textwrap.dedent(BUILD)], _clean_env()),
            "wheel off": ([wheel, "-c", textwrap.dedent(NOT_REGISTERED)], off),
            "wheel fit": ([wheel, "-m", "terratorch", "fit", "-c", "user.yaml"], _clean_env()),
        },
        cwd=cwd,
    )


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_pth_is_installed_at_the_top_of_site_packages(venvs: dict[str, tuple[Path, Path]], kind: str) -> None:
    purelib = venvs[kind][1]
    assert (purelib / PTH).read_text().startswith("import _smarties_terratorch_autoload;")


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_registry_build_with_no_import_or_callback(runs: dict[str, tuple[int, str]], kind: str) -> None:
    rc, out = runs[f"{kind} build"]
    assert rc == 0 and "BUILT SmartiesBackbone" in out, out[-3000:]


def test_autoload_switched_off_by_the_environment(runs: dict[str, tuple[int, str]]) -> None:
    rc, out = runs["wheel off"]
    assert rc == 0 and "OFF-OK" in out, out[-3000:]


def test_terratorch_fit_of_a_user_yaml_without_the_callback_line(runs: dict[str, tuple[int, str]]) -> None:
    rc, out = runs["wheel fit"]
    assert rc == 0 and FIT_OK in out, out[-4000:]


# ------------------------------------------------------------------------------------------------ the hook itself
@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), ("false", False), (" OFF ", False)])
def test_autoload_switch_values(monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool) -> None:
    import _smarties_terratorch_autoload as hook

    if value is None:
        monkeypatch.delenv(hook.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(hook.ENV_VAR, value)
    assert hook.enabled() is on


def test_install_arms_one_finder_that_ignores_other_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    import _smarties_terratorch_autoload as hook

    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, hook.RegisterWithTerraTorch)])
    monkeypatch.delitem(sys.modules, "terratorch.registry")
    hook.install()
    hook.install()
    finders = [f for f in sys.meta_path if isinstance(f, hook.RegisterWithTerraTorch)]
    assert len(finders) == 1 and sys.meta_path[0] is finders[0]
    assert finders[0].find_spec("json") is None and finders[0] in sys.meta_path  # other imports: untouched


def test_lightning_entry_point_adds_tiled_predict_only_in_terratorch_runs() -> None:
    """The installed ``lightning.pytorch.callbacks_factory`` entry point: nothing outside TerraTorch, the
    predict-time tiling callback once ``terratorch`` is imported (in a subprocess: a clean ``sys.modules``)."""
    code = textwrap.dedent(
        """
        import lightning.pytorch as pl
        names = lambda: [type(c).__name__ for c in pl.Trainer(logger=False, enable_progress_bar=False).callbacks]
        print("plain", "SmartiesTiledPredict" in names())
        import terratorch
        print("terratorch", "SmartiesTiledPredict" in names())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "plain False" in out.stdout and "terratorch True" in out.stdout, out.stdout
