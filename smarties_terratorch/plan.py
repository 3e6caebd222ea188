"""Planning a paper-table run: what each dataset costs on disk, which rows read it, and what a job costs in GPU time.

``smarties data download --dry-run`` prints :func:`plan_datasets` (no network request is made) and
``smarties bench run --list`` prints :func:`gpu_hours` per job. Sizes come from the sources table
(``data/sources.yaml``: ``bytes`` per file, ``extracted_size`` per dataset; ``null`` = unknown); which rows read a
dataset is derived from the paper table (``data/paper_table.yaml``: the folders in each row's ``data``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "GPU_BASIS",
    "DatasetPlan",
    "format_plan",
    "gpu_hours",
    "load_rows",
    "plan_datasets",
    "row_paths",
    "rows_using",
]

PAPER_TABLE = Path(__file__).parent / "data" / "paper_table.yaml"
SPLITS = "splits"  # the name `smarties data download` gives the authors' split files

#: Encoder throughput behind :func:`gpu_hours`: timm's published inference benchmark (RTX 4090, AMP, batch 1024,
#: 224 x 224), images per second.
THROUGHPUT = {"vitb": 2787.0, "vitl": 912.7}
GPU_BASIS = (
    "encoder image passes / timm's published RTX 4090 AMP 224-px inference rate (ViT-B 2,787, ViT-L 912.7 img/s); "
    "a training pass counts 3 (forward + backward); decoder, data loading and evaluation overheads not included"
)


def _folders_of(entry: Mapping[str, Any]) -> list[str]:
    """Root-relative paths a sources entry puts in place (its own files and the manual ones)."""
    out = [*entry.get("expect", []), *entry.get("manual_expect", [])]
    for spec in entry.get("files", []):
        if "save_as" in spec:
            out.append(spec["save_as"])
        elif "extract" in spec:
            out.append(spec["extract"]["into"])
    return out


def row_paths(row: Mapping[str, Any]) -> list[str]:
    """The root-relative paths a paper-table row reads (every alternative of its ``data`` entries)."""
    out: list[str] = []
    for value in (row.get("data") or {}).values():
        out += [value] if isinstance(value, str) else list(value)
    return out


def _related(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def rows_using(sources: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Dataset name (and ``"splits"``) -> ids of the rows that read its folders (or the split files)."""
    split_folder = sources["splits"]["folder"]
    used: dict[str, list[str]] = {name: [] for name in [*sources["datasets"], SPLITS]}
    for row in rows:
        paths = row_paths(row)
        for name, entry in sources["datasets"].items():
            if any(_related(p, f) for p in paths for f in _folders_of(entry)):
                used[name].append(row["id"])
        if any(_related(p, split_folder) for p in paths):
            used[SPLITS].append(row["id"])
    return used


@dataclass(frozen=True)
class DatasetPlan:
    """What fetching one dataset means: its files, sizes (``None`` = unknown), the rows reading it, its state."""

    name: str
    title: str
    files: tuple[str, ...]
    download_bytes: int | None  # None unless every file's size is known
    extracted_bytes: int | None
    rows: tuple[str, ...]
    state: str  # "present", "to download", "manual step", "nothing to fetch"


def _file_name(spec: Mapping[str, Any]) -> str:
    if "hub" in spec:
        return spec["hub"]["file"]
    if "torchgeo" in spec:
        return f"{spec['torchgeo']} archive (torchgeo's address)"
    return spec["url"].rsplit("/", 1)[-1]


def plan_datasets(
    names: Sequence[str], root: str | Path, sources: Mapping[str, Any], table_rows: Sequence[Mapping[str, Any]] | None
) -> list[DatasetPlan]:
    """One :class:`DatasetPlan` per canonical name (``"splits"`` included); only local files are looked at."""
    rows = rows_using(sources, table_rows if table_rows is not None else load_rows())
    root = Path(root)
    out = []
    for name in names:
        if name == SPLITS:
            files = tuple(sources["splits"]["files"])
            folder = sources["splits"]["folder"]
            present = all((root / folder / f).is_file() for f in files)
            out.append(DatasetPlan(SPLITS, f"split files ({folder}/)", files, None, None, tuple(rows[SPLITS]),
                                   "present" if present else "to download"))
            continue
        entry = sources["datasets"][name]
        specs = entry.get("files", [])
        sizes = [spec.get("bytes") for spec in specs]
        expect = [*entry.get("expect", []), *entry.get("manual_expect", [])]
        if expect and all((root / rel).exists() for rel in expect):
            state = "present"
        elif entry.get("manual_expect"):
            state = "manual step"
        else:
            state = "to download" if specs else "nothing to fetch"
        out.append(DatasetPlan(
            name,
            entry.get("title", name),
            tuple(_file_name(s) for s in specs),
            sum(sizes) if specs and all(s is not None for s in sizes) else (0 if not specs else None),
            entry.get("extracted_size"),
            tuple(rows[name]),
            state,
        ))  # fmt: skip
    return out


def _gb(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 1e9:.2f} GB"


def format_plan(plans: Sequence[DatasetPlan]) -> str:
    """The dry-run table: dataset, download size, extracted size, state, files, rows reading it; then the totals."""
    width = max(len(p.title) for p in plans) + 2
    lines = [f"{'dataset':<{width}}{'download':>10}{'extracted':>11}  {'state':<13} files; rows reading it"]
    for p in plans:
        if p.name == SPLITS:
            files = f"{len(p.files)} split lists"
        else:
            files = ", ".join(p.files) if p.files else "nothing automatic (manual step)"
        download = "-" if not p.files else _gb(p.download_bytes)
        lines.append(
            f"{p.title:<{width}}{download:>10}{_gb(p.extracted_bytes):>11}  {p.state:<13} {files}; "
            f"rows: {', '.join(p.rows) or 'none'}"
        )
    todo = [p for p in plans if p.state == "to download"]
    known = sum(p.download_bytes or 0 for p in todo)
    unknown = [p.title for p in todo if p.download_bytes is None]
    manual = [p.title for p in plans if p.state == "manual step"]
    lines.append(
        f"to download: {len(todo)} item(s), {known / 1e9:.2f} GB of known size"
        + (f" + {len(unknown)} of unknown size ({', '.join(unknown)})" if unknown else "")
    )
    if manual:
        lines.append(f"manual steps (printed by the download itself): {', '.join(manual)}")
    lines.append("sizes: data/sources.yaml (unknown = not published in our sources; the lock file records the size "
                 "of every file fetched)")
    return "\n".join(lines)


def load_rows(path: str | Path = PAPER_TABLE) -> list[dict[str, Any]]:
    """The rows of the paper table (``data/paper_table.yaml`` by default)."""
    return list(yaml.safe_load(Path(path).read_text(encoding="utf-8")).get("rows", []))


def gpu_hours(row: Mapping[str, Any], backbone: str, epochs: int | None, eval_every: int | None) -> float | None:
    """GPU-hour estimate of one job from :data:`GPU_BASIS`, or ``None`` when the row's image counts are unknown.

    The row's ``images: {train, eval}`` counts (and ``views``: encoder passes per image) give the encoder passes:
    frozen cached rows and kNN encode every image once; other frozen rows encode the train images every epoch and
    the eval images at every evaluation; fine-tuning counts 3 passes per train image (forward + backward).
    """
    images = row.get("images") or {}
    train, evals = images.get("train"), images.get("eval")
    rate = THROUGHPUT.get(backbone)
    if train is None or evals is None or rate is None:
        return None
    views = int(row.get("views", 1))
    if row["protocol"] == "knn" or row.get("cache"):
        passes = train + evals
    else:
        if not epochs:
            return None
        evaluations = epochs // (eval_every or 1) + 1
        per_train = 3 if row["protocol"] == "finetune" else 1
        passes = epochs * train * per_train + evaluations * evals
    return views * passes / rate / 3600
