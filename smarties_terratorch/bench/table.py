"""The paper table (``data/paper_table.yaml``) as dataclasses, and the jobs a selection of it runs.

A row is one entry of the paper's evaluation table: its dataset, protocol, metric, the package config it runs, the
data paths it reads, the published values per backbone and the peers' published numbers. A :class:`Job` is one
(row, backbone) run of one kind (``real``, ``real-data`` or ``smoke``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_TABLE",
    "KINDS",
    "PACKAGE",
    "Backbone",
    "Job",
    "Peer",
    "Protocol",
    "Published",
    "Row",
    "SmokeBackbone",
    "SmokeSpec",
    "Table",
    "list_jobs",
    "load_table",
    "select_jobs",
]

#: The installed package: the table and the configs ship inside it (package data), so any cwd works.
PACKAGE = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = PACKAGE / "data" / "paper_table.yaml"
KINDS = ("real", "real-data", "smoke")
_REQUIRED = ("id", "dataset", "protocol", "metric", "metric_key", "config", "subcommand", "evaluate", "published")


@dataclass(frozen=True)
class Published:
    """A published value (``None``: none found) and where it comes from."""

    value: float | None
    provenance: str | None = None


@dataclass(frozen=True)
class Peer:
    """Another model's published number for a row (never measured here); ``ranked: false`` for another protocol."""

    model: str
    value: float
    source: str
    protocol: str
    ranked: bool = True


@dataclass(frozen=True)
class Backbone:
    """A backbone size of the table: its architecture, released weights file and UPerNet probe blocks."""

    arch: str
    weights: str
    probe_indices: tuple[int, ...] | None = None
    hub: str | None = None

    @property
    def hub_tag(self) -> str:
        """The weights tag: the ``hub`` entry, else the file name without ``.safetensors``."""
        return self.hub or Path(self.weights).stem


@dataclass(frozen=True)
class SmokeBackbone:
    """The random tiny backbone of smoke runs."""

    arch: str
    depth: int


@dataclass(frozen=True)
class Protocol:
    """A protocol variant of the authors' rows (``released``, ``paper``)."""

    name: str
    layer_decay: float
    gpu_precision: str
    drop_path_rate: float | None = None


@dataclass(frozen=True)
class SmokeSpec:
    """A row's smoke run: the generated fixture it reads and the config keys pointing at it (``{root}``)."""

    fixture: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One row of the table (``rows`` or ``real_data_rows``).

    ``published`` maps each backbone the row reports to its published value (a real-data row: its one backbone);
    ``data`` maps dotted config keys to root-relative paths (a list: alternatives, the authors' name first);
    ``spec`` is the row as written in the table (descriptive fields such as ``images`` live only there).
    """

    id: str
    dataset: str
    protocol: str
    metric: str
    metric_key: str
    config: str
    subcommand: str
    stage: str
    checkpoint: str
    published: Mapping[str, Published]
    scale: float = 1.0
    data: Mapping[str, Any] = field(default_factory=dict)
    data_created: Mapping[str, str] = field(default_factory=dict)
    smoke: SmokeSpec | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    backbone_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    authors_protocol: bool = False
    cache: bool = False
    peers: tuple[Peer, ...] = ()
    backbone: str | None = None
    source: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], real_data: bool = False) -> Row:
        """A row from its table entry (checked for the required fields by :func:`load_table`)."""
        backbone = spec.get("backbone", "vitb") if real_data else None
        published = {backbone: spec["published"]} if real_data else spec["published"]
        smoke = spec.get("smoke")
        return cls(
            id=spec["id"],
            dataset=spec["dataset"],
            protocol=spec["protocol"],
            metric=spec["metric"],
            metric_key=spec["metric_key"],
            config=spec["config"],
            subcommand=spec["subcommand"],
            stage=spec["evaluate"]["stage"],
            checkpoint=spec["evaluate"].get("checkpoint", "last"),
            published={bb: Published(v.get("value"), v.get("provenance")) for bb, v in published.items()},
            scale=float(spec.get("scale", 1)),
            data=spec.get("data") or {},
            data_created=spec.get("data_created") or {},
            smoke=None if smoke is None else SmokeSpec(smoke["fixture"], smoke.get("overrides") or {}),
            overrides=spec.get("overrides") or {},
            backbone_overrides=spec.get("backbone_overrides") or {},
            authors_protocol=bool(spec.get("authors_protocol")),
            cache=bool(spec.get("cache")),
            peers=tuple(Peer(**p) for p in spec.get("peers") or ()),
            backbone=backbone,
            source=spec.get("source"),
            spec=spec,
        )


@dataclass(frozen=True)
class Table:
    """The loaded table; ``path`` is where it was read (a row's config may live beside it)."""

    path: Path
    backbones: Mapping[str, Backbone]
    smoke_backbone: SmokeBackbone
    protocols: Mapping[str, Protocol]
    rows: tuple[Row, ...]
    real_data_rows: tuple[Row, ...] = ()

    def config_file(self, row: Row) -> Path:
        """The file of a row's ``config:`` entry: an absolute path, else the package's own file
        (``configs/x.yaml`` ships in the package), else relative to the table's folder (a table of your own beside
        its configs).

        Raises:
            FileNotFoundError: none of these exists (every place tried is named).
        """
        rel = Path(row.config).expanduser()
        tried = [rel] if rel.is_absolute() else [PACKAGE / rel, self.path.resolve().parent / rel]
        for path in tried:
            if path.is_file():
                return path
        where = ", ".join(map(str, tried))
        raise FileNotFoundError(f"config {row.config!r} of row {row.id} not found (tried {where})")


def config_label(path: Path) -> str:
    """How a result names its config: ``configs/x.yaml`` for the package's own (no install path), else the path."""
    return path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else str(path)


def load_table(path: str | Path | None = None) -> Table:
    """Read and check the shipped paper table (``data/paper_table.yaml`` in the package) or ``path``.

    Raises:
        FileNotFoundError: the table does not exist.
        ValueError: a row lacks a required field or its ids repeat.
    """
    path = Path(path) if path is not None else DEFAULT_TABLE
    if not path.is_file():
        raise FileNotFoundError(f"Benchmark table {path} not found (pass --table PATH)")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for row in [*spec.get("rows", []), *spec.get("real_data_rows", [])]:
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ValueError(f"{path}: row {row.get('id', '?')} lacks {missing}")
        if row["id"] in seen:
            raise ValueError(f"{path}: duplicate row id {row['id']}")
        seen.add(row["id"])
    backbones = {
        name: Backbone(b["arch"], b["weights"], tuple(b.get("probe_indices") or ()) or None, b.get("hub"))
        for name, b in spec["backbones"].items()
    }
    smoke = spec["smoke_backbone"]
    return Table(
        path=path,
        backbones=backbones,
        smoke_backbone=SmokeBackbone(smoke["arch"], int(smoke["depth"])),
        protocols={name: Protocol(name, **settings) for name, settings in (spec.get("protocols") or {}).items()},
        rows=tuple(Row.from_spec(r) for r in spec.get("rows", [])),
        real_data_rows=tuple(Row.from_spec(r, real_data=True) for r in spec.get("real_data_rows", [])),
    )


# ================================================================================================ jobs
@dataclass
class Job:
    """One (row, backbone) run of one kind; ``options`` carries what the executor needs (feature cache)."""

    row: Row
    backbone: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.row.id}__{self.backbone}"


def select_jobs(
    table: Table, kind: str, rows: Sequence[str] | None = None, backbones: Sequence[str] | None = None
) -> list[Job]:
    """The jobs of ``kind`` for the selected row ids and backbones (default: all), in table order.

    Raises:
        ValueError: an unknown row id or backbone.
    """
    source = table.real_data_rows if kind == "real-data" else table.rows
    known = [r.id for r in source]
    unknown = sorted(set(rows or ()) - set(known))
    if unknown:
        raise ValueError(f"Unknown row(s) {unknown} for --{kind}; known: {', '.join(known)}")
    bad = sorted(set(backbones or ()) - set(table.backbones))
    if bad:
        raise ValueError(f"Unknown backbone(s) {bad}; known: {', '.join(table.backbones)}")
    jobs = []
    for row in source:
        if rows and row.id not in rows:
            continue
        if kind == "real-data":
            jobs.append(Job(row, row.backbone or "vitb", kind))
        elif kind == "smoke":  # one tiny-backbone run per row: ViT-B and ViT-L differ only in the backbone name
            jobs.append(Job(row, "tiny", kind))
        else:
            # the backbone sizes the paper reports for this row
            jobs += [Job(row, bb, kind) for bb in row.published if not backbones or bb in backbones]
    return jobs


def _schedule(job: Job, table: Table) -> tuple[int | None, int | None]:
    """(epochs, evaluation period) of a job: its config's trainer settings with the row's backbone overrides."""
    if job.row.subcommand != "fit":
        return None, None
    try:
        cfg = yaml.safe_load(table.config_file(job.row).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None, None
    trainer = dict(cfg.get("trainer") or {})
    for key, value in (job.row.backbone_overrides.get(job.backbone) or {}).items():
        if key.startswith("trainer."):
            trainer[key.removeprefix("trainer.")] = value
    return trainer.get("max_epochs"), trainer.get("check_val_every_n_epoch", 1)


def list_jobs(jobs: Sequence[Job], table: Table) -> str:
    """``--list``: per job its index, key, data (the datasets it reads), epochs, GPU-time estimate and config."""
    from ..download import load_sources
    from ..plan import GPU_BASIS, gpu_hours, rows_using

    sources = load_sources()
    used = rows_using(sources, [job.row.spec for job in jobs])
    titles = {name: (sources["datasets"].get(name) or {}).get("title", "split files") for name in used}
    lines = []
    for i, job in enumerate(jobs):
        epochs, every = _schedule(job, table)
        if job.kind != "real":
            data, gpu = ("generated fixture" if job.kind == "smoke" else "registry packages"), "-"
        else:
            data = ", ".join(titles[name] for name, ids in used.items() if job.row.id in ids) or "?"
            hours = gpu_hours(job.row.spec, job.backbone, epochs, every)
            gpu = "unknown" if hours is None else f"{hours:.2f} h"
        schedule = "no training" if epochs is None else f"{epochs} epochs (eval every {every})"
        lines.append(f"{i:>3} {job.kind:<9} {job.key:<36} {schedule:<28} GPU {gpu:<8} {job.row.config}  [{data}]")
    if any(job.kind == "real" for job in jobs):
        lines.append(f"GPU time (estimate, not measured): {GPU_BASIS}; unknown = the row's image counts are not known")
    return "\n".join(lines)
