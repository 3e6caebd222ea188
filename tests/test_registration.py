"""Zero-line registration: the startup ``.pth`` makes ``backbone: smarties_vit_*`` work in TerraTorch with no extra
line, ``custom_modules_path`` or import; ``SMARTIES_TERRATORCH_AUTOLOAD=0`` switches it off.

Default run: the ``.pth`` line exactly as ``setup.py`` writes it, in a temporary site directory that a fresh
``python -S`` adds with ``site.addsitedir`` (two subprocesses: hook on, with a ``terratorch fit`` of a user YAML; hook
off). With ``--runslow``, or ``SMARTIES_TEST_WHEEL=1`` (the Python 3.12 leg of the Makefile), the real thing: fresh
venvs built from the wheel and from ``pip install -e``. The venvs reuse this environment's dependencies through a
plain path ``.pth`` (no reinstall of torch), which adds the directory without running its ``.pth`` files, so this
checkout's own install stays inactive.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from test_terratorch import FIT_OK, FIT_YAML, _clean_env, _run_all, _write_fixture

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "_smarties_terratorch_autoload.py", "smarties_terratorch"]
PTH = "smarties_terratorch_autoload.pth"
HOOK = "_smarties_terratorch_autoload"
# The wheel and editable venvs take ~1 min: slow, unless a leg asks for them (Makefile: test-py312).
wheel_check = pytest.mark.slow if os.environ.get("SMARTIES_TEST_WHEEL") != "1" else (lambda test: test)


def _setup_constant(name: str) -> str:
    """A module-level string of ``setup.py`` (read, not run: running it would call ``setup()``)."""
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


def _user_project(root: Path) -> Path:
    """A working directory outside the repository with tiny GeoTIFFs and a user YAML naming only the backbone."""
    _write_fixture(root / "data")
    assert "smarties" not in FIT_YAML.replace("smarties_vit_tiny_patch16", "")
    (root / "user.yaml").write_text(FIT_YAML)
    return root


# ------------------------------------------------------------------------- fast: the .pth line in a site directory
SITE = """
    import site, sys
    site.addsitedir({site_dir!r})  # what interpreter start does for site-packages: runs the .pth line
    sys.path += [{repo!r}, {purelib!r}]  # the package and the dependencies, without running their .pth files
    hook = sys.modules.get("{hook}")
    assert hook is not None and hook.__file__.startswith({site_dir!r}), "the .pth line did not run"
    assert "torch" not in sys.modules and "smarties_terratorch" not in sys.modules, "startup imported too much"
"""

ON = """
    import lightning.pytorch as pl
    names = lambda: [type(c).__name__ for c in pl.Trainer(logger=False, enable_progress_bar=False).callbacks]
    print("plain", "BindClsTokenNorms" in names())  # the entry point adds nothing outside TerraTorch
    from terratorch.registry import BACKBONE_REGISTRY
    print("terratorch", "BindClsTokenNorms" in names())
    model = BACKBONE_REGISTRY.build("smarties_vit_tiny_patch16", bands=["VV", "VH"])  # no import, no extra line
    print("BUILT", type(model).__name__)
    import runpy
    sys.argv = ["terratorch", "fit", "-c", "user.yaml"]
    runpy.run_module("terratorch", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def site_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """The startup hook as installed (its ``.pth`` line from ``setup.py`` next to the hook module), in fresh
    ``python -S`` interpreters, started together: hook on (registry lookup, then ``terratorch fit``) and off."""
    site_dir = tmp_path_factory.mktemp("site-packages")
    (site_dir / _setup_constant("PTH_NAME")).write_text(_setup_constant("PTH_LINE"))
    shutil.copy2(REPO / f"{HOOK}.py", site_dir)
    prelude = SITE.format(site_dir=str(site_dir), repo=str(REPO), purelib=sysconfig.get_paths()["purelib"], hook=HOOK)
    cwd = _user_project(tmp_path_factory.mktemp("user-project"))
    on, off = (textwrap.dedent(prelude) + textwrap.dedent(code) for code in (ON, NOT_REGISTERED))
    return _run_all(
        {
            "on": ([sys.executable, "-S", "-c", on], _clean_env()),
            "off": ([sys.executable, "-S", "-c", off], _clean_env(SMARTIES_TERRATORCH_AUTOLOAD="0")),
        },
        cwd=cwd,
    )


def test_pth_line_registers_with_no_import(site_runs: dict[str, tuple[int, str]]) -> None:
    rc, out = site_runs["on"]
    assert "BUILT SmartiesBackbone" in out, out[-3000:]


def test_pth_line_terratorch_fit_of_a_user_yaml_with_no_extra_line(site_runs: dict[str, tuple[int, str]]) -> None:
    rc, out = site_runs["on"]
    assert rc == 0 and FIT_OK in out, out[-4000:]


def test_lightning_entry_point_adds_callbacks_only_in_terratorch_runs(site_runs: dict[str, tuple[int, str]]) -> None:
    """The installed ``lightning.pytorch.callbacks_factory`` entry point: nothing outside TerraTorch, the package's
    callbacks once ``terratorch`` is imported."""
    rc, out = site_runs["on"]
    assert "plain False" in out and "terratorch True" in out, out[-3000:]


def test_pth_line_switched_off_by_the_environment(site_runs: dict[str, tuple[int, str]]) -> None:
    rc, out = site_runs["off"]
    assert rc == 0 and "OFF-OK" in out, out[-3000:]


# -------------------------------------------------------------------------- slow: a real wheel and editable install


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
    cwd = _user_project(tmp_path_factory.mktemp("user-project"))
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


@wheel_check
@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_pth_is_installed_at_the_top_of_site_packages(venvs: dict[str, tuple[Path, Path]], kind: str) -> None:
    purelib = venvs[kind][1]
    assert (purelib / PTH).read_text().startswith("import _smarties_terratorch_autoload;")


@wheel_check
@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_registry_build_with_no_import_or_extra_line(runs: dict[str, tuple[int, str]], kind: str) -> None:
    rc, out = runs[f"{kind} build"]
    assert rc == 0 and "BUILT SmartiesBackbone" in out, out[-3000:]


@wheel_check
def test_autoload_switched_off_by_the_environment(runs: dict[str, tuple[int, str]]) -> None:
    rc, out = runs["wheel off"]
    assert rc == 0 and "OFF-OK" in out, out[-3000:]


@wheel_check
def test_terratorch_fit_of_a_user_yaml_with_no_extra_line(runs: dict[str, tuple[int, str]]) -> None:
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
