"""The package's top level: lazy public names, a console script that starts without torch, and the import graph
(no circle, no module importing a higher layer, no test helper in production code)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import smarties_terratorch


def test_public_names_resolve() -> None:
    for name in smarties_terratorch.__all__:
        assert getattr(smarties_terratorch, name) is not None
        assert name in dir(smarties_terratorch)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        smarties_terratorch.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_help_does_not_import_torch() -> None:
    # `smarties --help` and argument errors answer in well under a second because nothing imports torch
    code = (
        "import sys\n"
        "from smarties_terratorch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


# ------------------------------------------------------------------------------------------------- import graph
PACKAGE = Path(smarties_terratorch.__file__).resolve().parent

#: Each top-level module or subpackage's layer, low to high: a module may import its own layer and lower ones only.
LAYERS: dict[str, int] = {
    **dict.fromkeys(("spectrum", "device", "io", "fetch", "plan", "augmentation"), 0),  # no package imports
    "normalization": 1,
    **dict.fromkeys(("models", "weights", "hub", "checkpoints", "pretrained"), 2),  # the model, its weights, loading
    **dict.fromkeys(("datasets", "sample_data"), 3),  # readers of on-disk data
    **dict.fromkeys(("datamodules", "tasks", "necks", "backbone", "pangaea"), 4),  # Lightning / TerraTorch / PANGAEA
    **dict.fromkeys(("scene", "export", "stats", "download", "testing", "bench"), 5),  # tools
    "cli": 6,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every package module ``path`` imports, at the top or inside a function (lazy imports count too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(files)) for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else None
    return LAYERS.get(top) if top else None


def test_every_module_has_a_layer() -> None:
    tops = {m.split(".")[1] for m in _graph() if "." in m}
    assert tops <= set(LAYERS), f"add {sorted(tops - set(LAYERS))} to LAYERS"


def test_import_graph_has_no_circle() -> None:
    # The package's own __init__ only names modules lazily (by string), so it takes part in no cycle.
    graph = {m: {t for t in targets if t != "smarties_terratorch"} for m, targets in _graph().items()}
    assert _cycles(graph) == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(module) is not None and _layer(target) is not None and _layer(target) > _layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize("helper", ["tests", "conftest", "http_server", "cli_utils"])
def test_production_code_imports_no_test_helper(helper: str) -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n == helper or n.startswith(f"{helper}.") for n in names), f"{path} imports {helper}"


def test_one_address_per_name() -> None:
    """A module's ``__all__`` lists only what it defines; only package ``__init__`` files gather names."""
    reexported = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported: set[str] = set()
        public: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                imported |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                public = list(ast.literal_eval(node.value))
        reexported += [f"{_module_name(path)}.{name}" for name in public if name in imported]
    assert reexported == []


def _layout_entries(markdown: Path) -> set[str]:
    """The package entries named in the first ``smarties_terratorch/`` tree block of a page."""
    text = markdown.read_text(encoding="utf-8")
    block = text[text.index("```\nsmarties_terratorch/\n") + 4 :]
    block = block[: block.index("```")]
    entries = set()
    for line in block.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):
            entries.add(line.split()[0].rstrip("/"))
        elif line and not line.startswith(" "):
            break  # the next top-level folder (benchmarks/, docs/, ...)
    return entries


@pytest.mark.parametrize("page", ["README.md", "docs/api/index.md"])
def test_layout_section_names_every_module(page: str) -> None:
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    listed = {e.removesuffix(".py") for e in _layout_entries(PACKAGE.parent / page)}
    assert listed == present, f"missing: {sorted(present - listed)}, gone: {sorted(listed - present)}"


def test_the_documented_layers_are_the_checked_ones() -> None:
    text = (PACKAGE.parent / "docs" / "api" / "index.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            documented |= dict.fromkeys((m.strip(" `") for m in cells[1].split(",")), int(cells[0]))
    assert documented == LAYERS
