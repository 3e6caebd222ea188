"""``smarties bench``: run the SMARTIES paper table through the project's own configs, and report it.

``smarties bench run`` executes rows of the paper table shipped with the package (``data/paper_table.yaml``, one
entry per row of the paper's evaluation table, configs from the package's ``configs/``: any working directory
works), per backbone, each in-process through TerraTorch's LightningCLI with the row's config, then records one
JSON result per row and backbone. ``smarties bench report`` turns the results into a markdown table of measured
vs published numbers (with the difference), a CSV, a JSON file and a PNG bar chart.

Three kinds of results, kept in separate folders and report sections, never mixed:

* ``real``: the paper protocol on the real datasets (``--data-root``, laid out by ``smarties data download``) with
  the official weights (``--weights DIR|FILE``, or ``--weights hub``: fetched from the Hugging Face Hub at one
  resolved commit); a row whose data or weights are missing is recorded as ``skipped: <what, where it was looked for>``.
* ``smoke`` (``--smoke``): every row end-to-end on tiny generated files in the dataset's real on-disk layout
  (:mod:`smarties_terratorch.testing`), 2-block random backbone, a few batches: proves the wiring, measures nothing.
* ``real-data`` (``--real-data``): the rows that run here on CPU on the real imagery shipped in registry packages
  (the land-cover scene, the six BigEarthNet patches); wiring checks on real pixels, not benchmarks.

Results are written atomically (temporary file + ``os.replace``) when a row finishes, with the resolved config,
seed, library versions, the weights' sha256 (and Hub repo and commit), the data files' sha256 from the data root's
lock file, and wall time; re-running skips finished rows unless ``--force``, so a
killed run loses at most the row in progress.

The authors' rows run the protocol that produced the published numbers unless ``--protocol paper`` is given
(:func:`apply_protocol`); each row records the maximum over its periodic evaluations and the last epoch's value, and
the report compares the maximum (:func:`_reported`). Frozen-encoder rows without augmentation train their head on
cached features (:mod:`smarties_terratorch.tasks.cached`). Rows run in parallel processes with ``--jobs`` /
``--devices`` (:func:`run_parallel`), one per SLURM array task with ``--job-index``, and a row on several GPUs with
``--trainer.devices N``; ``report`` merges several results folders.
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib.metadata
import io
import json
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from .checkpoints import CheckpointError, WeightsUnavailableError, check_checkpoint
from .download import LOCK_NAME
from .fetch import file_sha256
from .hub import fetch_hub_weights
from .io import atomic_path, write_text
from . import models  # noqa: F401 - declares the encoders' weights: get_weights knows their tags
from .testing import set_path, tiny_model_args
from .weights import get_weights

__all__ = [
    "KINDS",
    "Job",
    "apply_protocol",
    "atomic_write_json",
    "build_row_config",
    "load_results",
    "load_table",
    "main",
    "read_result",
    "render_report",
    "run_jobs",
    "run_parallel",
    "select_jobs",
    "smoke_fixture",
    "weights_problem",
]

#: The installed package: the table and the configs ship inside it (package data), so any cwd works.
PACKAGE = Path(__file__).resolve().parent
DEFAULT_TABLE = PACKAGE / "data" / "paper_table.yaml"
#: ``--weights hub``: each backbone's released file, fetched from the Hugging Face Hub.
HUB = "hub"
KINDS = ("real", "real-data", "smoke")
_TQDM_BAR = "lightning.pytorch.callbacks.TQDMProgressBar"
_VERSIONED = ("smarties-terratorch", "torch", "lightning", "terratorch", "timm", "torchmetrics", "torchgeo")


class RowKilled(BaseException):
    """Raised by a test hook to simulate the process dying inside a row."""


# ================================================================================================ table
def load_table(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check the shipped paper table (``data/paper_table.yaml`` in the package) or ``path``.

    Raises:
        FileNotFoundError: the table does not exist.
        ValueError: a row lacks a required field or its ids repeat.
    """
    path = Path(path) if path is not None else DEFAULT_TABLE
    if not path.is_file():
        raise FileNotFoundError(f"Benchmark table {path} not found (pass --table PATH)")
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    required = ("id", "dataset", "protocol", "metric", "metric_key", "config", "subcommand", "evaluate", "published")
    seen: set[str] = set()
    for row in [*table.get("rows", []), *table.get("real_data_rows", [])]:
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{path}: row {row.get('id', '?')} lacks {missing}")
        if row["id"] in seen:
            raise ValueError(f"{path}: duplicate row id {row['id']}")
        seen.add(row["id"])
    table["_path"] = str(path)
    return table


@dataclass
class Job:
    """One (row, backbone) run of one kind; ``options`` carries run-wide settings to the executor (feature cache)."""

    row: dict[str, Any]
    backbone: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.row['id']}__{self.backbone}"


def select_jobs(
    table: dict[str, Any], kind: str, rows: Sequence[str] | None = None, backbones: Sequence[str] | None = None
) -> list[Job]:
    """The jobs of ``kind`` for the selected row ids and backbones (default: all), in table order.

    Raises:
        ValueError: an unknown row id or backbone.
    """
    source = table.get("real_data_rows", []) if kind == "real-data" else table.get("rows", [])
    known = [r["id"] for r in source]
    unknown = sorted(set(rows or ()) - set(known))
    if unknown:
        raise ValueError(f"Unknown row(s) {unknown} for --{kind}; known: {', '.join(known)}")
    bad = sorted(set(backbones or ()) - set(table["backbones"]))
    if bad:
        raise ValueError(f"Unknown backbone(s) {bad}; known: {', '.join(table['backbones'])}")
    jobs = []
    for row in source:
        if rows and row["id"] not in rows:
            continue
        if kind == "real-data":
            jobs.append(Job(row, row.get("backbone", "vitb"), kind))
            continue
        if kind == "smoke":  # one tiny-backbone run per row: ViT-B and ViT-L differ only in the backbone name
            jobs.append(Job(row, "tiny", kind))
            continue
        for bb in row["published"]:  # the backbone sizes the paper reports for this row
            if not backbones or bb in backbones:
                jobs.append(Job(row, bb, kind))
    return jobs


# ================================================================================================ planning
def _schedule(job: Job, table: dict[str, Any]) -> tuple[int | None, int | None]:
    """(epochs, evaluation period) of a job: its config's trainer settings with the row's backbone overrides."""
    if job.row.get("subcommand") != "fit":
        return None, None
    try:
        cfg = yaml.safe_load(_resolve_config(job.row, table).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None, None
    trainer = dict(cfg.get("trainer") or {})
    for key, value in ((job.row.get("backbone_overrides") or {}).get(job.backbone) or {}).items():
        if key.startswith("trainer."):
            trainer[key.removeprefix("trainer.")] = value
    return trainer.get("max_epochs"), trainer.get("check_val_every_n_epoch", 1)


def list_jobs(jobs: Sequence[Job], table: dict[str, Any]) -> str:
    """``--list``: per job its index, key, data (the datasets it reads), epochs, GPU-time estimate and config."""
    from .download import load_sources
    from .plan import GPU_BASIS, gpu_hours, rows_using

    sources = load_sources()
    used = rows_using(sources, [job.row for job in jobs])
    titles = {name: (sources["datasets"].get(name) or {}).get("title", "split files") for name in used}
    lines = []
    for i, job in enumerate(jobs):
        epochs, every = _schedule(job, table)
        if job.kind != "real":
            data, gpu = ("generated fixture" if job.kind == "smoke" else "registry packages"), "-"
        else:
            data = ", ".join(titles[name] for name, ids in used.items() if job.row["id"] in ids) or "?"
            hours = gpu_hours(job.row, job.backbone, epochs, every)
            gpu = "unknown" if hours is None else f"{hours:.2f} h"
        schedule = "no training" if epochs is None else f"{epochs} epochs (eval every {every})"
        lines.append(f"{i:>3} {job.kind:<9} {job.key:<36} {schedule:<28} GPU {gpu:<8} {job.row['config']}  [{data}]")
    if any(job.kind == "real" for job in jobs):
        lines.append(f"GPU time (estimate, not measured): {GPU_BASIS}; unknown = the row's image counts are not known")
    return "\n".join(lines)


# ================================================================================================ configs
def _resolve_config(row: dict[str, Any], table: dict[str, Any] | None = None) -> Path:
    """The file of a row's ``config:`` entry: an absolute path, else the package's own file (``configs/x.yaml``
    ships in the package), else relative to the table's folder (a table of your own beside its configs).

    Raises:
        FileNotFoundError: none of these exists (every place tried is named).
    """
    rel = Path(row["config"]).expanduser()
    tried = [rel] if rel.is_absolute() else [PACKAGE / rel]
    if not rel.is_absolute() and table is not None and table.get("_path"):
        tried.append(Path(table["_path"]).resolve().parent / rel)
    for path in tried:
        if path.is_file():
            return path
    where = ", ".join(map(str, tried))
    raise FileNotFoundError(f"config {row['config']!r} of row {row['id']} not found (tried {where})")


def _config_label(path: Path) -> str:
    """How a result names its config: ``configs/x.yaml`` for the package's own (no install path), else the path."""
    return path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else str(path)


def _set_backbone(cfg: dict[str, Any], arch: str, ckpt: str | None, probe_indices: Sequence[int] | None) -> None:
    """Point the config's SMARTIES backbone at ``arch`` / ``ckpt``; UPerNet necks read ``probe_indices``."""
    model_args = cfg["model"]["init_args"]["model_args"]
    model_args["backbone"] = arch
    for key in ("backbone_ckpt_path", "backbone_pretrained", "backbone_revision"):
        model_args.pop(key, None)
    if ckpt is not None:
        model_args["backbone_ckpt_path"] = ckpt
    necks = model_args.get("necks") or []
    for neck in necks:
        # only the 4-level UPerNet pyramids follow the backbone depth (a single-block probe keeps its index)
        if neck.get("name") == "SelectIndices" and probe_indices and len(neck["indices"]) == len(probe_indices):
            neck["indices"] = list(probe_indices)


def _shrink_for_smoke(cfg: dict[str, Any], arch: str, depth: int) -> None:
    """Tiny backbone, random weights, a few batches, no checkpoints or loggers."""
    init = cfg["model"]["init_args"]
    init["model_args"] = tiny_model_args(init["model_args"], arch, depth)
    data = cfg["data"]["init_args"]
    data["batch_size"] = 2
    data["num_workers"] = 0
    # fast_dev_run: one batch per loop, no checkpoints or loggers (an integer limit_train_batches: 1 ran every batch
    # here: the CLI read it as the fraction 1.0).
    cfg["trainer"].update(accelerator="cpu", fast_dev_run=1, enable_progress_bar=False, logger=False)
    for key in ("check_val_every_n_epoch", "max_epochs", "enable_checkpointing", "num_sanity_val_steps"):
        cfg["trainer"].pop(key, None)
    callbacks = cfg["trainer"].get("callbacks") or []
    cfg["trainer"]["callbacks"] = [c for c in callbacks if not c.get("class_path", "").endswith("ModelCheckpoint")]


@dataclass
class Prepared:
    """A row's resolved config, or why it cannot run."""

    config: dict[str, Any]
    config_file: Path
    missing: list[str] = field(default_factory=list)
    weights: Path | None = None
    hub: dict[str, Any] | None = None  # repo_id, revision, pinned, sha256, path of weights fetched from the Hub
    data_paths: list[str] = field(default_factory=list)  # root-relative paths the row reads (lock look-up)
    notes: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)


def apply_protocol(cfg: dict[str, Any], row: dict[str, Any], table: dict[str, Any], protocol: str) -> dict[str, Any]:
    """Set the protocol variant's settings on a row's config; return what was set (recorded in the result).

    Only rows marked ``authors_protocol`` (the authors' own evaluation code) follow the variant: layer decay for
    fine-tuning rows, drop path, and fp16 autocast when the run is on a CUDA device (fp32 otherwise). The PANGAEA
    rows keep their configs (PANGAEA's protocol: fp32).

    Raises:
        ValueError: an unknown protocol variant.
    """
    variants = table.get("protocols") or {}
    if protocol not in variants:
        raise ValueError(f"Unknown --protocol {protocol!r}; known: {', '.join(variants) or 'none in the table'}")
    settings = variants[protocol]
    applied: dict[str, Any] = {"variant": protocol}
    if not row.get("authors_protocol"):
        applied["note"] = "not an authors' row: the config's own settings"
        return applied
    init = cfg["model"]["init_args"]
    if row["protocol"] == "finetune":
        init["layer_decay"] = float(settings["layer_decay"])
        applied["layer_decay"] = init["layer_decay"]
    if "drop_path_rate" in settings:
        init["model_args"]["backbone_drop_path_rate"] = float(settings["drop_path_rate"])
        applied["drop_path_rate"] = float(settings["drop_path_rate"])
    trainer = cfg.setdefault("trainer", {})
    accelerator = str(trainer.get("accelerator", "auto"))
    on_cuda = accelerator in ("auto", "gpu", "cuda") and _cuda_available()
    trainer["precision"] = settings["gpu_precision"] if on_cuda else "32-true"
    applied["precision"] = trainer["precision"]
    return applied


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_row_config(
    job: Job,
    table: dict[str, Any],
    out: Path,
    data_root: Path | None = None,
    weights: Path | str | None = None,
    fixtures: Callable[[str], Path] | None = None,
    protocol: str = "released",
) -> Prepared:
    """The config dict a job runs, with data/weights paths set; ``missing`` lists what is absent and where.

    Args:
        job: the row and backbone.
        table: the loaded table (backbone definitions).
        out: the run folder of this kind (``OUT/<kind>``).
        data_root: the datasets' root (real runs).
        weights: a folder with the official ``.safetensors`` files, one file, or ``"hub"`` (each backbone's released
            file from the Hugging Face Hub, :func:`hub_weights`) (real / real-data runs).
        fixtures: dataset name -> generated fixture root (smoke runs).
        protocol: the protocol variant of the table's ``protocols`` (:func:`apply_protocol`).
    """
    row = job.row
    config_path = _resolve_config(row, table)
    cfg = copy.deepcopy(yaml.safe_load(config_path.read_text(encoding="utf-8")))
    prepared = Prepared(cfg, config_path)
    trainer = cfg.setdefault("trainer", {})
    run_dir = out / "runs" / job.key
    trainer["default_root_dir"] = str(run_dir)
    trainer.pop("strategy", None)
    trainer.pop("num_nodes", None)
    if isinstance(trainer.get("logger"), dict):  # keep the config's CSV logger, inside the run folder
        trainer["logger"].setdefault("init_args", {})["save_dir"] = str(run_dir)

    if job.kind == "smoke":
        if fixtures is None:
            raise ValueError("smoke jobs need fixtures")
        smoke = table["smoke_backbone"]
        _shrink_for_smoke(cfg, smoke["arch"], int(smoke["depth"]))
        spec = row["smoke"]
        root = fixtures(spec["fixture"])
        for dotted, value in spec.get("overrides", {}).items():
            set_path(cfg, dotted, value.replace("{root}", str(root)) if isinstance(value, str) else value)
        prepared.protocol = apply_protocol(cfg, row, table, protocol)
        return prepared

    if trainer.get("enable_progress_bar", True):  # per-row progress: Lightning's tqdm bar (under the overall one)
        trainer["callbacks"] = [*(trainer.get("callbacks") or []), {"class_path": _TQDM_BAR}]
    bb = table["backbones"][job.backbone]
    if weights == HUB:
        ckpt, msg = None, ""
        try:
            fetched = hub_weights(_hub_tag(bb))
        except (WeightsUnavailableError, CheckpointError, KeyError) as err:
            msg = f"weights {bb['weights']} from the Hugging Face Hub: {err}"
        else:
            ckpt, prepared.hub = Path(fetched["path"]), fetched
    else:
        ckpt = _find_weights(None if weights is None else Path(weights), bb["weights"])
        msg = f"weights {bb['weights']} " + (f"not found in {weights}" if weights else "not given (no --weights)")
    if ckpt is None:
        if job.kind == "real":
            prepared.missing.append(msg)
        else:  # real-data rows run anyway, honestly labelled
            prepared.notes.append(f"{msg}: random-initialised {bb['arch']} (wiring check, features carry no meaning)")
    prepared.weights = ckpt
    _set_backbone(cfg, bb["arch"], str(ckpt) if ckpt else None, bb.get("probe_indices"))
    for dotted, value in (row.get("backbone_overrides") or {}).get(job.backbone, {}).items():
        set_path(cfg, dotted, value)  # e.g. the ViT-L script's own evaluation period
    prepared.protocol = apply_protocol(cfg, row, table, protocol)
    if job.kind == "real-data":
        for dotted, value in row.get("overrides", {}).items():
            set_path(cfg, dotted, value)
        if row.get("source") == "bigearthnet_examples":
            _use_bigearthnet_examples(cfg, out / "data")
        return prepared
    root = data_root if data_root is not None else Path("data")
    for dotted, rel in (row.get("data_created") or {}).items():  # files the data module writes (statistics caches)
        set_path(cfg, dotted, str((root / rel).resolve()))
    for dotted, rel in (row.get("data") or {}).items():
        if rel is None:
            set_path(cfg, dotted, None)
            continue
        path, tried = _first_existing(root, rel)
        if path is None:
            prepared.missing.append(f"{dotted.rsplit('.', 1)[-1]}: {' or '.join(map(str, tried))}")
            path = tried[0]
        elif path.is_relative_to(root.resolve()):
            prepared.data_paths.append(path.relative_to(root.resolve()).as_posix())
        set_path(cfg, dotted, str(path))
    return prepared


_HUB_FETCHED: dict[str, dict[str, Any]] = {}


def hub_weights(tag: str, commit: str | None = None) -> dict[str, Any]:
    """The released weights ``tag`` fetched from the Hugging Face Hub once per process (every row of a run uses the
    same commit): ``{"repo_id", "revision" (the commit), "pinned", "sha256", "path"}``.

    Args:
        tag: a declared weights tag (``smarties-v1-vitb``).
        commit: the commit the parent process of a parallel run resolved (its workers fetch that one).

    Raises:
        KeyError: an unknown weights tag.
        WeightsUnavailableError, CheckpointError: the file cannot be fetched, or its declared sha256 differs.
    """
    if tag not in _HUB_FETCHED:
        record = fetch_hub_weights(tag, commit).record()
        if commit is not None:  # pinned only if the package declares it, whoever resolved it
            record["pinned"] = get_weights(tag).revision is not None
        _HUB_FETCHED[tag] = record
    return _HUB_FETCHED[tag]


def _hub_tag(backbone: dict[str, Any]) -> str:
    """The weights tag of a table backbone: its ``hub`` entry, else its file name without ``.safetensors``."""
    return backbone.get("hub") or Path(backbone["weights"]).stem


def data_provenance(root: Path, used: Sequence[str]) -> dict[str, Any]:
    """The lock-file records (``smarties data download``) of the files behind the root-relative paths ``used``: a
    file read as it is, or an archive extracted into (a parent of) a used folder."""
    lock = root / LOCK_NAME
    if not lock.is_file():
        note = f"no {LOCK_NAME} under {root}: the data was not placed by smarties data download"
        return {"lock": None, "files": {}, "note": note}
    try:
        records = json.loads(lock.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        return {"lock": str(lock), "files": {}, "note": f"unreadable lock file: {err}"}

    def covers(rel: str, rec: dict[str, Any]) -> bool:
        into = rec.get("extracted_to")
        return rel in used or bool(into) and any(u == into or u.startswith(f"{into}/") for u in used)

    keep = ("url", "sha256", "size", "commit")
    files = {rel: {k: rec[k] for k in keep if k in rec} for rel, rec in sorted(records.items()) if covers(rel, rec)}
    return {"lock": str(lock), "files": files}


def _first_existing(root: Path, rel: str | Sequence[str]) -> tuple[Path | None, list[Path]]:
    """The first of ``rel``'s candidates (one path, or a list: the authors' file name first, then older names)
    that exists under ``root``, and every path tried."""
    tried = [(root / r).resolve() for r in ([rel] if isinstance(rel, str) else rel)]
    return next((p for p in tried if p.exists()), None), tried


def _use_bigearthnet_examples(cfg: dict[str, Any], folder: Path) -> None:
    """Point a BigEarthNet config at the six real patches of ``bigearthnet-common``, all in every split (the
    leave-one-out kNN evaluates each patch against the other five)."""
    from .sample_data import bigearthnet_examples

    try:
        examples = bigearthnet_examples(folder / "bigearthnet-examples")
    except ImportError as err:
        raise FileNotFoundError(f"the real BigEarthNet patches: {err}") from err
    split = write_text(folder / "bigearthnet-examples.txt", "".join(f"{e.s2_dir.name}\n" for e in examples))
    set_path(cfg, "data.init_args.s2_root", str(examples[0].s2_dir.parent))
    for key in ("train_split", "val_split", "test_split"):
        set_path(cfg, f"data.init_args.{key}", str(split))


def _find_weights(weights: Path | None, filename: str) -> Path | None:
    if weights is None:
        return None
    if weights.is_file():
        return weights
    candidate = weights / filename
    return candidate if candidate.is_file() else None


# ================================================================================================ results
def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (all or nothing, see :func:`smarties_terratorch.io.write_text`)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str))


def result_path(out: Path, job: Job) -> Path:
    return out / job.kind / "results" / f"{job.key}.json"


def read_result(path: Path) -> dict[str, Any]:
    """One result file (:func:`atomic_write_json`).

    Raises:
        ValueError: the file is not one whole JSON object (e.g. cut short by a full disk or written by another
            tool); the message names the file to delete.
    """
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        problem = f"not whole JSON: {err}"
    else:
        if isinstance(result, dict):
            return result
        problem = f"a JSON {type(result).__name__}, not a result object"
    raise ValueError(
        f"{path} is a damaged result file ({problem}); delete it, or run `smarties bench run` again to recompute "
        f"the row (it replaces the file)."
    )


def _read_or_failed(path: Path, job: Job | None = None) -> dict[str, Any]:
    """:func:`read_result`, or a failed record whose reason names the damaged file."""
    try:
        return read_result(path)
    except ValueError as err:
        row, backbone = (job.row["id"], job.backbone) if job is not None else (path.stem, None)
        kind = job.kind if job is not None else path.parent.parent.name
        return {"row": row, "backbone": backbone, "kind": kind, "status": "failed", "reason": str(err)}


def load_results(out: Path | Sequence[Path], kind: str) -> list[dict[str, Any]]:
    """Every finished result file of ``kind`` under ``out`` (one results folder or several, e.g. one per node of a
    SLURM array); a (row, backbone) found in several folders keeps its most recently finished result. Temporary
    files of killed runs are ignored."""
    outs = [out] if isinstance(out, str | Path) else list(out)
    merged: dict[str, dict[str, Any]] = {}
    for folder in (Path(o) / kind / "results" for o in outs):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            result = _read_or_failed(path)  # a damaged file is reported as failed, naming it; never guessed at
            previous = merged.get(path.stem)
            if previous is None or str(result.get("finished_at", "")) >= str(previous.get("finished_at", "")):
                merged[path.stem] = result
    return [merged[k] for k in sorted(merged)]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


_CHECKED: dict[tuple[str, int, float], str | None] = {}


def weights_problem(path: Path) -> str | None:
    """Why the weights file ``path`` cannot be used (unreadable, or pickled code/objects), or ``None`` if it can.

    The check reads the file safely (never unpickling objects) and is cached per path, size and mtime.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key not in _CHECKED:
        try:
            check_checkpoint(path)
            _CHECKED[key] = None
        except (CheckpointError, OSError) as err:
            _CHECKED[key] = str(err)
    return _CHECKED[key]


# ================================================================================================ execution
def _best_checkpoint(trainer: Any) -> str | None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.best_model_path:
            return cb.best_model_path
    return None


def _eval_history(key: str) -> Any:
    """A Lightning callback recording ``key`` after every (non-sanity) validation: the periodic evaluations."""
    from lightning.pytorch.callbacks import Callback

    class EvaluationHistory(Callback):
        def __init__(self) -> None:
            self.values: list[tuple[int, float]] = []

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            value = trainer.callback_metrics.get(key)
            if not trainer.sanity_checking and value is not None:
                self.values.append((int(trainer.current_epoch), float(value)))

    return EvaluationHistory()


def _preprocessing(config: dict[str, Any]) -> dict[str, Any]:
    """The data section that decides the pixels and the sample lists (not the batching), with a fingerprint
    (size, mtime) of every file or folder it names, so regenerated data never reuses stale features, and the
    trainer's precision."""
    data = config.get("data") or {}
    args = {k: v for k, v in (data.get("init_args") or {}).items() if k not in ("batch_size", "num_workers")}
    stamps = {}
    for value in args.values():
        if isinstance(value, str) and Path(value).exists():
            stat = Path(value).stat()
            stamps[value] = [stat.st_size, stat.st_mtime_ns]
    # the precision changes the features (fp16 autocast on GPU)
    precision = (config.get("trainer") or {}).get("precision")
    return {"class_path": data.get("class_path"), "init_args": args, "files": stamps, "precision": precision}


def execute(job: Job, config_file: Path, verbose: bool = False) -> dict[str, Any]:
    """Run one job's config in-process; return its metrics, protocol facts and what was evaluated.

    Every validation during ``fit`` is recorded: ``value_max`` is the maximum over these periodic evaluations (what
    the authors' logs report) and ``value_last`` the value of the final weights. With ``job.options["cache"]`` and
    a row marked ``cache``, the frozen encoder's features are computed once and the head runs on them
    (:mod:`smarties_terratorch.tasks.cached`).
    """
    from contextlib import ExitStack

    from lightning.pytorch.accelerators import CPUAccelerator
    from terratorch.cli_tools import build_lightning_cli

    from .tasks.cached import cacheable, features_as_input, intra_op_threads, prepare_cached_features
    from .tasks.protocols import check_protocol

    row = job.row
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI also looks at sys.argv (ours are `bench run ...`)
    try:
        cli = build_lightning_cli(["-c", str(config_file)], run=False)
    finally:
        sys.argv = argv
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    stage = row["evaluate"]["stage"]
    history = _eval_history(f"val/{row['metric_key']}")
    trainer.callbacks.append(history)
    context = ExitStack()
    cache: dict[str, Any] = {"used": False}
    if row.get("cache") and job.options.get("cache"):
        why = cacheable(model, datamodule)
        if why is not None:
            cache["reason"] = why
        else:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
            splits = ("train", "val") if stage == "val" else ("train", "val", "test")
            datamodule, record = prepare_cached_features(
                model,
                datamodule,
                job.options["cache_dir"],
                job.options.get("weights_sha256"),
                _preprocessing(config),
                config["model"]["init_args"]["model_args"].get("backbone_bands"),
                splits,
                device=trainer.strategy.root_device,  # the run's device and precision (fp16 autocast on GPU)
                precision=trainer.precision_plugin.forward_context,
            )
            cache = {"used": True, "splits": record}
            context.enter_context(features_as_input(model))
            if isinstance(trainer.accelerator, CPUAccelerator):  # the head's tensors are too small to split
                context.enter_context(intra_op_threads(1))
    evaluated = "final weights"
    ckpt = None
    periodic: list[tuple[int, float]] = []
    with context:
        if row["subcommand"] == "fit":
            trainer.fit(model, datamodule=datamodule)
            periodic = list(history.values)
            if row["evaluate"].get("checkpoint") == "best":
                ckpt = _best_checkpoint(trainer)
            evaluated = f"best checkpoint {ckpt}" if ckpt else "final weights"
        elif row["subcommand"] != "validate":
            raise ValueError(f"{row['id']}: subcommand must be fit or validate, got {row['subcommand']!r}")
        last = trainer.validate(model, datamodule=datamodule, verbose=verbose)[0]  # the final weights, val list
        if stage == "val":
            metrics = last
        else:
            metrics = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=verbose)[0]
    protocol = check_protocol(row["protocol"], model, trainer.optimizers if row["subcommand"] == "fit" else None)
    key = f"{stage}/{row['metric_key']}"
    if key not in metrics:
        raise KeyError(f"{row['id']}: metric {key} was not logged (logged: {sorted(metrics)})")
    val_key = f"val/{row['metric_key']}"
    if val_key not in last:
        raise KeyError(f"{row['id']}: metric {val_key} was not logged (logged: {sorted(last)})")
    final = float(last[val_key])
    return {
        "raw_value": float(metrics[key]),
        # the periodic evaluations during fit and the final weights' evaluation (kNN: that one evaluation)
        "raw_value_max": max([v for _, v in periodic] + [final]),
        "raw_value_last": final,
        "evaluations": [[epoch, value] for epoch, value in periodic],
        "metrics": {k: float(v) for k, v in {**last, **metrics}.items()},
        "protocol_check": protocol,
        "evaluated": f"{stage} split, {evaluated}",
        "feature_cache": cache,
        "seed": cli.config.get("seed_everything"),
    }


def run_job(
    job: Job,
    table: dict[str, Any],
    out: Path,
    data_root: Path | None,
    weights: Path | str | None,
    fixtures: Callable[[str], Path] | None,
    executor: Callable[[Job, Path, bool], dict[str, Any]] = execute,
    verbose: bool = False,
) -> dict[str, Any]:
    """Prepare, run and record one job; returns the result written to its JSON file."""
    row = job.row
    published = row["published"] if job.kind == "real-data" else row["published"].get(job.backbone, {})
    result: dict[str, Any] = {
        "row": row["id"],
        "backbone": job.backbone,
        "kind": job.kind,
        "dataset": row["dataset"],
        "protocol": row["protocol"],
        "metric": row["metric"],
        "published": published.get("value"),
        "provenance": published.get("provenance"),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    try:
        prepared = build_row_config(
            job, table, out / job.kind, data_root, weights, fixtures, job.options.get("protocol", "released")
        )
    except FileNotFoundError as err:
        prepared = None
        result.update(status="skipped", reason=f"skipped: {err}")
    if prepared is not None:
        for dotted, value in (job.options.get("trainer_overrides") or {}).items():  # e.g. trainer.devices: 4 (DDP)
            set_path(prepared.config, dotted, value)
        result["config_file"] = _config_label(prepared.config_file)
        result["notes"] = prepared.notes
        result["protocol_variant"] = prepared.protocol
        problem = weights_problem(prepared.weights) if prepared.weights is not None else None
        if problem is not None:  # checked before the row starts: a bad file fails the row, it never loads
            result.update(status="failed", reason=f"weights: {problem}")
        elif prepared.missing:
            result.update(status="skipped", reason="skipped: missing " + "; ".join(prepared.missing))
        else:
            run_config = out / job.kind / "configs" / f"{job.key}.yaml"
            write_text(run_config, yaml.safe_dump(prepared.config, sort_keys=False))
            result["config"] = prepared.config
            if prepared.hub is not None:  # fetched from the Hub: its repo, commit and whether it was pinned
                result["weights"] = dict(prepared.hub)
            elif prepared.weights is not None:
                result["weights"] = {"path": str(prepared.weights), "sha256": file_sha256(prepared.weights)}
            else:
                result["weights"] = {"path": None, "sha256": None, "note": "random initialisation"}
            if job.kind == "real":
                root = data_root if data_root is not None else Path("data")
                result["data"] = data_provenance(root.resolve(), prepared.data_paths)
            result["versions"] = versions()
            job.options.update(
                cache_dir=str(out / job.kind / "feature_cache"), weights_sha256=result["weights"]["sha256"]
            )
            try:
                measured = executor(job, run_config, verbose)
            except (Exception, SystemExit) as err:  # noqa: BLE001 - a broken row is recorded; kills propagate
                result.update(status="failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
            else:
                scale = float(row.get("scale", 1))
                result.update(measured)
                result.update(status="ok", **_reported(row, measured, scale))
                if result["published"] is not None and job.kind == "real":
                    result["difference"] = round(result["value"] - result["published"], 4)
    result["wall_time_s"] = round(time.perf_counter() - start, 2)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result = json.loads(json.dumps(result, default=str))  # return exactly what the file holds (str keys etc.)
    if _is_rank_zero():  # a DDP row's other processes run the same code and must not write
        atomic_write_json(result_path(out, job), result)
    return result


def _reported(row: dict[str, Any], measured: dict[str, Any], scale: float) -> dict[str, Any]:
    """The labelled values of a finished row: the maximum over its periodic evaluations, the last epoch's value,
    and the one compared with the published number (``value``, described by ``reported_as``).

    Rows evaluated on the val list (the authors' protocol) compare the maximum, as the authors' logs report it;
    rows evaluated on a test split (PANGAEA's protocol) compare the test value of the best-val checkpoint.
    """
    raw = measured["raw_value"]
    best = measured.get("raw_value_max", raw)
    last = measured.get("raw_value_last", raw)
    values: dict[str, Any] = {"value_max": round(best * scale, 4), "value_last": round(last * scale, 4)}
    if "evaluations" in measured:  # [epoch, value] of each periodic evaluation, on the reported scale
        values["evaluations"] = [[epoch, round(v * scale, 4)] for epoch, v in measured["evaluations"]]
    if row["evaluate"]["stage"] == "val":
        values.update(value=values["value_max"], reported_as="max over periodic evaluations (val list)")
    else:
        values.update(
            value=round(raw * scale, 4),
            reported_as=f"{row['evaluate']['stage']} split, {row['evaluate'].get('checkpoint', 'last')} checkpoint "
            "(max and last: val split)",
        )
    return values


def smoke_fixture(out: Path, name: str) -> Path:
    """The generated fixture ``name`` under ``out/smoke/data``: reused when complete (parallel workers share it),
    written afresh otherwise (a half-written fixture of a killed run is removed first)."""
    from .testing import make_fixture

    root = out / "smoke" / "data" / name
    done = root / ".complete"
    if not done.is_file():
        if root.exists():
            shutil.rmtree(root)
        make_fixture(name, root)
        write_text(done, "")
    return root


def run_jobs(
    jobs: Iterable[Job],
    table: dict[str, Any],
    out: Path,
    data_root: Path | None = None,
    weights: Path | str | None = None,
    force: bool = False,
    executor: Callable[[Job, Path, bool], dict[str, Any]] = execute,
    verbose: bool = False,
    protocol: str = "released",
    cache: bool = True,
) -> list[dict[str, Any]]:
    """Run ``jobs`` in order, skipping those with a finished (``ok``) result unless ``force``.

    Skipped / failed rows are retried on the next run (their data may have appeared). Each result is written when
    its row ends, so interrupting the loop loses only the row in progress. ``protocol`` and ``cache`` are the
    defaults of jobs that do not set them (``Job.options``).
    """
    jobs = list(jobs)
    # once, here: the run's configs and fixtures live in other folders, where a relative path would mean another place
    out = Path(out).absolute()
    data_root = None if data_root is None else Path(data_root).absolute()
    for job in jobs:
        job.options.setdefault("protocol", protocol)
        job.options.setdefault("cache", cache)
    cache: dict[str, Path] = {}

    def fixtures(name: str) -> Path:
        if name not in cache:
            cache[name] = smoke_fixture(out, name)
        return cache[name]

    results = []
    bar = tqdm(jobs, desc="paper table", unit="row", dynamic_ncols=True, position=0)
    for job in bar:
        bar.set_postfix_str(f"{job.kind}: {job.key}")
        path = result_path(out, job)
        if path.is_file() and not force:
            try:
                previous = read_result(path)
            except ValueError as err:
                bar.write(f"[{job.kind}] {job.key}: {err} Recomputing it now.")
                previous = {}
            if previous.get("status") == "ok":
                results.append({**previous, "resumed": True})
                continue
        result = run_job(job, table, out, data_root, weights, fixtures, executor, verbose)
        bar.write(_one_line(result))
        results.append(result)
    return results


def _one_line(result: dict[str, Any]) -> str:
    head = f"[{result['kind']}] {result['row']} ({result['backbone']})"
    if result["status"] == "ok":
        return f"{head}: {result['metric']} = {result['value']:.2f} in {result['wall_time_s']:.1f} s"
    return f"{head}: {result['status']}: {result.get('reason', '')}"


# ================================================================================================ report
def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _status(result: dict[str, Any]) -> str:
    if result["status"] == "ok":
        return "ok"
    return result.get("reason") or result["status"]


def render_report(
    out: Path | Sequence[Path], table: dict[str, Any] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown report (one section per kind, never mixed) and the flat list of result rows behind it."""
    sections = []
    flat: list[dict[str, Any]] = []
    titles = {
        "real": "Paper table: measured vs published (real data, official weights)",
        "real-data": "Real-data rows (registry-shipped real imagery, CPU; wiring checks, not benchmarks)",
        "smoke": "Smoke run (tiny generated data, 2-block random backbone: proves the wiring, measures nothing)",
    }
    table = table if table is not None else load_table()
    order = {r["id"]: i for i, r in enumerate([*table.get("rows", []), *table.get("real_data_rows", [])])}
    for kind in KINDS:
        results = load_results(out, kind)
        results.sort(key=lambda r: (order.get(r["row"], len(order)), str(r.get("backbone"))))
        if not results:
            continue
        lines = [f"## {titles[kind]}", ""]
        if kind == "smoke":
            lines += [
                "| row | backbone | protocol | metric | max over evals | last epoch | status | wall s |",
                "|---|---|---|---|---|---|---|---|",
            ]
        else:
            lines += [
                "| row | backbone | protocol | metric | max over evals | last epoch | compared | published | "
                "difference | status | wall s |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
        for r in results:
            ok = r["status"] == "ok"
            measured = r.get("value") if ok else None
            diff = r.get("difference") if kind == "real" else None
            entry = {
                "kind": kind,
                "row": r["row"],
                "backbone": r.get("backbone"),
                "protocol": r.get("protocol"),
                "protocol_variant": (r.get("protocol_variant") or {}).get("variant"),
                "metric": r.get("metric"),
                "value_max": r.get("value_max", measured) if ok else None,
                "value_last": r.get("value_last", measured) if ok else None,
                "measured": measured,
                "reported_as": r.get("reported_as"),
                "published": r.get("published"),
                "difference": diff,
                "provenance": r.get("provenance"),
                "status": _status(r),
                "wall_time_s": r.get("wall_time_s"),
                "weights_sha256": (r.get("weights") or {}).get("sha256"),
                "weights_revision": (r.get("weights") or {}).get("revision"),
                "feature_cache": bool((r.get("feature_cache") or {}).get("used")),
                "notes": "; ".join(r.get("notes") or []),
            }
            flat.append(entry)
            cells = [r["row"], str(r.get("backbone")), str(r.get("protocol")), str(r.get("metric"))]
            cells += [_fmt(entry["value_max"]), _fmt(entry["value_last"])]
            if kind != "smoke":
                compared = "n/a" if measured is None else f"{measured:.2f} ({_short(r.get('reported_as'))})"
                cells += [compared, _fmt(r.get("published")), "n/a" if diff is None else f"{diff:+.2f}"]
            cells += [entry["status"].replace("|", "/"), f"{r['wall_time_s']:.1f}" if ok else ""]
            lines.append("| " + " | ".join(cells) + " |")
        notes = sorted({n for r in results for n in (r.get("notes") or [])})
        if notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in notes]
        sections.append("\n".join(lines))
    if not sections:
        where = out if isinstance(out, str | Path) else ", ".join(map(str, out))
        return f"No results under {where} (run `smarties bench run --out DIR` first).\n", flat
    sections.append(standing_section(table, load_results(out, "real")))
    variants = sorted({e["protocol_variant"] for e in flat if e["protocol_variant"]})
    header = (
        "# SMARTIES paper table\n\n"
        "Published values and their sources: the benchmark table (`smarties bench run --table`; each row's "
        "source is its provenance in the JSON/CSV). *max over evals*: the maximum over a row's periodic "
        "evaluations on the val list (what the authors' logs report); *last epoch*: the final weights' value; "
        "*compared*: the value set against the published number (max for the authors' rows, the test split at "
        "the best-val checkpoint for PANGAEA's). Differences are compared - published, only for real runs. "
        f"Protocol variant: {', '.join(variants) or 'n/a'}.\n\n"
    )
    return header + "\n\n".join(sections) + "\n", flat


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def standing_section(table: dict[str, Any], real: Sequence[dict[str, Any]]) -> str:
    """Markdown: per paper row, SMARTIES' published and measured values beside the peers' published numbers.

    Peers come from the table's ``peers`` (values with their source and protocol, never measured here); the rank is
    that of SMARTIES' published ViT-B value (else ViT-L) among the ranked peers (``ranked: false``: another
    protocol, or a second source for a model already ranked).
    """
    measured = {(r["row"], r.get("backbone")): r.get("value") for r in real if r.get("status") == "ok"}
    lines = [
        "## Where SMARTIES stands (peers: published numbers with their sources, never measured here)",
        "",
        "| row | metric | SMARTIES published | SMARTIES measured | best peer (published) | rank of SMARTIES |",
        "|---|---|---|---|---|---|",
    ]
    details = ["", "| row | peer | value | source | protocol |", "|---|---|---|---|---|"]
    for row in table.get("rows", []):
        peers = row.get("peers") or []
        pub = {bb: (v or {}).get("value") for bb, v in (row.get("published") or {}).items()}
        published = " / ".join(f"{bb} {_fmt(v)}" for bb, v in pub.items()) or "n/a"
        got = " / ".join(
            f"{bb} {'not measured' if measured.get((row['id'], bb)) is None else _fmt(measured[(row['id'], bb)])}"
            for bb in pub
        ) or "n/a"
        ranked = sorted((p for p in peers if p.get("ranked", True)), key=lambda p: -p["value"])
        best = f"{ranked[0]['model']} {_fmt(ranked[0]['value'])}" if ranked else "none recorded"
        own = pub.get("vitb") if pub.get("vitb") is not None else pub.get("vitl")
        rank = "n/a" if own is None or not ranked else (
            f"{_ordinal(1 + sum(p['value'] > own for p in ranked))} of {len(ranked) + 1}"
        )
        lines.append(f"| {row['id']} | {row['metric']} | {published} | {got} | {best} | {rank} |")
        for p in peers:
            details.append(f"| {row['id']} | {p['model']} | {_fmt(p['value'])} | {p['source']} | {p['protocol']} |")
    return "\n".join(lines + details)


def _short(reported_as: str | None) -> str:
    """``max`` or e.g. ``test split, best checkpoint`` (the compared value's label, without the long note)."""
    if not reported_as:
        return "?"
    return "max" if reported_as.startswith("max") else reported_as.split(" (")[0]


def write_chart(flat: list[dict[str, Any]], path: Path) -> Path:
    """Bar chart of measured vs published per (row, backbone): real and real-data results only, never smoke."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [e for e in flat if e["kind"] != "smoke" and (e["measured"] is not None or e["published"] is not None)]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    if rows:
        labels = [f"{e['row']}\n{e['backbone']} ({e['kind']})" for e in rows]
        x = range(len(rows))
        measured = [e["measured"] if e["measured"] is not None else 0.0 for e in rows]
        published = [e["published"] if e["published"] is not None else 0.0 for e in rows]
        ax.bar([i - 0.2 for i in x], measured, width=0.4, label="measured", color="#1f77b4")
        ax.bar([i + 0.2 for i in x], published, width=0.4, label="published", color="#aaaaaa")
        for i, e in enumerate(rows):
            if e["measured"] is None:
                ax.text(i - 0.2, 1, "not measured", rotation=90, ha="center", va="bottom", fontsize=7)
            if e["published"] is None:
                ax.text(i + 0.2, 1, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("metric (%)")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no real or real-data results yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("SMARTIES paper table: measured vs published (smoke results excluded)")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:  # the temporary name keeps the suffix: savefig infers the format
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return path


def report(out: Path | Sequence[Path], report_dir: Path | None = None) -> str:
    """Write ``report.md``, ``results.csv``, ``results.json`` and ``paper_table.png`` (default: under the first
    results folder); return the markdown. Several folders are merged (:func:`load_results`)."""
    markdown, flat = render_report(out)
    report_dir = report_dir or (Path(out) if isinstance(out, str | Path) else Path(out[0])) / "report"
    write_text(report_dir / "report.md", markdown)
    atomic_write_json(report_dir / "results.json", flat)
    fields = ["kind", "row", "backbone", "protocol", "protocol_variant", "metric", "value_max", "value_last"]
    fields += ["measured", "reported_as", "published", "difference", "provenance", "status", "wall_time_s"]
    fields += ["weights_sha256", "weights_revision", "feature_cache", "notes"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(flat)
    write_text(report_dir / "results.csv", table.getvalue())
    write_chart(flat, report_dir / "paper_table.png")
    return markdown


# ================================================================================================ parallel
def run_parallel(
    jobs: Sequence[Job],
    argv: Sequence[str],
    slots: Sequence[str | None],
    out: Path,
    poll_s: float = 0.5,
) -> list[dict[str, Any]]:
    """Run ``jobs`` in child processes, at most one per slot at a time; return their results in job order.

    Each child is ``python -m smarties_terratorch.bench run ARGV --rows ROW --backbone BB`` (``ARGV`` = this run's
    options without the selection and parallelism flags); a slot that names a device sets ``CUDA_VISIBLE_DEVICES``
    to it, so each process sees one GPU. Children write their own result files (the usual per-row JSON, atomic);
    their output goes to ``OUT/<kind>/logs/<row>__<backbone>.log``.
    """
    import os
    import subprocess

    pending = list(jobs)
    running: dict[str | None, tuple[subprocess.Popen[bytes], Job, Any]] = {}
    free = list(slots)
    bar = tqdm(total=len(pending), desc="paper table", unit="row", dynamic_ncols=True)
    try:
        while pending or running:
            while pending and free:
                slot, job = free.pop(0), pending.pop(0)
                env = dict(os.environ)
                if slot is not None:
                    env["CUDA_VISIBLE_DEVICES"] = slot
                log_path = out / job.kind / "logs" / f"{job.key}.log"
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = log_path.open("wb")
                backbone = [] if job.kind != "real" else ["--backbone", job.backbone]
                cmd = [sys.executable, "-m", "smarties_terratorch.bench", "run", *argv, "--rows", job.row["id"]]
                proc = subprocess.Popen([*cmd, *backbone], env=env, stdout=log, stderr=subprocess.STDOUT)
                running[slot] = (proc, job, log)
            time.sleep(poll_s)
            for slot, (proc, job, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[slot]
                free.append(slot)
                bar.update(1)
                path = result_path(out, job)
                if path.is_file():
                    bar.write(_one_line(_read_or_failed(path, job)))
                else:
                    bar.write(f"[{job.kind}] {job.key}: the worker exited with {proc.returncode} without a result")
    finally:
        for proc, _, log in running.values():  # interrupted: stop our children, keep finished results
            proc.terminate()
            log.close()
        bar.close()
    results = []
    for job in jobs:
        path = result_path(out, job)
        if path.is_file():
            results.append(_read_or_failed(path, job))
        else:
            log = out / job.kind / "logs" / f"{job.key}.log"
            reason = f"worker produced no result (log: {log})"
            results.append(
                {"row": job.row["id"], "backbone": job.backbone, "kind": job.kind, "status": "failed", "reason": reason}
            )
    return results


def _trainer_overrides(extra: Sequence[str]) -> dict[str, Any]:
    """``--trainer.KEY VALUE`` (or ``--trainer.KEY=VALUE``) pairs -> ``{"trainer.KEY": value}`` (YAML-parsed)."""
    overrides: dict[str, Any] = {}
    items = list(extra)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--trainer."):
            raise SystemExit(f"smarties bench run: unknown argument {flag!r} (trainer options are --trainer.KEY VALUE)")
        if "=" in flag:
            key, value = flag[2:].split("=", 1)
        elif items:
            key, value = flag[2:], items.pop(0)
        else:
            raise SystemExit(f"smarties bench run: {flag} needs a value")
        overrides[key] = yaml.safe_load(value)
    return overrides


# ================================================================================================ CLI
def _path_arg(value: str) -> Path:
    """A path option, made absolute once, at parsing, against the working directory.

    Later steps change what paths are relative to (fixture folders, run configs, worker processes), so a relative
    ``--out`` resolved there would be doubled (``bench_results/.../bench_results/...``).
    """
    return Path(value).expanduser().absolute()


def _weights_arg(value: str) -> Path | str:
    return HUB if value == HUB else _path_arg(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smarties bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run rows of the paper table")
    run.add_argument("--rows", nargs="+", metavar="ID", help="row ids (default: all; see --list)")
    run.add_argument("--backbone", nargs="+", choices=["vitb", "vitl"], help="backbones (default: all the row has)")
    run.add_argument("--data-root", type=_path_arg, default="data", help="datasets root (default: ./data)")
    run.add_argument(
        "--weights",
        type=_weights_arg,
        help="folder with smarties-v1-vit{b,l}.safetensors, one file, or 'hub': each backbone's released file from "
        "the Hugging Face Hub (the declared commit, else the repo's current commit, logged and recorded)",
    )
    run.add_argument(
        "--out", type=_path_arg, default="bench_results", help="results folder (default: ./bench_results)"
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="every row on tiny generated data (wiring check)")
    mode.add_argument("--real-data", action="store_true", help="the CPU rows on registry-shipped real imagery")
    run.add_argument("--force", action="store_true", help="re-run rows that already have a finished result")
    run.add_argument(
        "--table", type=_path_arg, help="benchmark table (default: the paper table shipped with the package)"
    )
    run.add_argument(
        "--protocol",
        default="released",
        help="protocol variant of the authors' rows: released (default: what produced the published numbers: "
        "layer decay 1.0, drop path 0, fp16 autocast on GPU) or paper (layer decay 0.75 really applied)",
    )
    run.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="re-encode every image every epoch in the frozen-encoder rows (default: encode once, cache features)",
    )
    run.add_argument("--list", action="store_true", help="list the selected jobs (with their index) and exit")
    # the commits a parallel run's parent resolved for --weights hub: every worker fetches the same bytes
    run.add_argument("--hub-commit", action="append", default=[], metavar="TAG=SHA", help=argparse.SUPPRESS)
    run.add_argument("--verbose", action="store_true", help="Lightning's own progress bars and summaries")
    scale = run.add_argument_group("scale out")
    scale.add_argument(
        "--devices",
        nargs="+",
        metavar="GPU",
        help="run rows in parallel, one process per listed GPU (CUDA_VISIBLE_DEVICES of each process)",
    )
    scale.add_argument("--jobs", type=int, help="run rows in parallel in this many processes (default: 1)")
    scale.add_argument(
        "--job-index",
        type=int,
        metavar="I",
        help="run only the I-th selected job (0-based, as --list numbers them): one job per SLURM array task",
    )
    rep = sub.add_parser("report", help="markdown / CSV / JSON / PNG report of the results")
    rep.add_argument(
        "--out",
        type=_path_arg,
        nargs="+",
        default=[_path_arg("bench_results")],
        help="results folder(s) of `bench run`; several are merged (e.g. one per node)",
    )
    rep.add_argument("--report-dir", type=_path_arg, help="where to write the files (default: the first OUT/report)")
    return parser


#: Options of `bench run` that select jobs or parallelism: not passed on to the worker processes.
_NOT_FOR_WORKERS = {"--rows": True, "--backbone": True, "--devices": True, "--jobs": 1, "--job-index": 1, "--list": 0}


def _worker_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` (after ``run``) without the selection and parallelism options (a worker gets one ``--rows``)."""
    kept, items = [], list(argv)
    while items:
        item = items.pop(0)
        name = item.split("=", 1)[0]
        if name not in _NOT_FOR_WORKERS:
            kept.append(item)
            continue
        takes = _NOT_FOR_WORKERS[name]
        if "=" in item or takes == 0:
            continue
        if takes is True:  # nargs="+": drop every value up to the next option
            while items and not items[0].startswith("--"):
                items.pop(0)
        else:
            items.pop(0)
    return kept


def _is_rank_zero() -> bool:
    """False in the extra processes of a multi-GPU (DDP) row, which must not write results."""
    import os

    return all(os.environ.get(v, "0") == "0" for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def main(argv: Sequence[str] | None = None) -> int:
    """``smarties bench run|report ...``; returns the exit code (1 if any row failed)."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    args, extra = _parser().parse_known_args(argv)
    if args.command == "report":
        if extra:
            raise SystemExit(f"smarties bench report: unknown arguments {extra}")
        print(report(args.out, args.report_dir))
        print(f"Report files: {(args.report_dir or args.out[0] / 'report').resolve()}")
        return 0
    trainer_overrides = _trainer_overrides(extra)
    table = load_table(args.table)
    kind = "smoke" if args.smoke else "real-data" if args.real_data else "real"
    jobs = select_jobs(table, kind, args.rows, args.backbone)
    if args.protocol not in (table.get("protocols") or {}):
        raise SystemExit(f"--protocol {args.protocol}: unknown; known: {', '.join(table.get('protocols') or {})}")
    if args.job_index is not None:
        if not 0 <= args.job_index < len(jobs):
            raise SystemExit(f"--job-index {args.job_index}: the selection has {len(jobs)} jobs (0..{len(jobs) - 1})")
        jobs = [jobs[args.job_index]]
    for job in jobs:
        job.options["trainer_overrides"] = trainer_overrides
    if args.list:
        print(list_jobs(jobs, table))
        return 0
    slots: list[str | None] = list(args.devices) if args.devices else [None] * (args.jobs or 1)
    if args.devices and args.jobs and args.jobs != len(args.devices):
        raise SystemExit(f"--jobs {args.jobs} and {len(args.devices)} --devices disagree: one process per device")
    if len(slots) > 1 and len(jobs) > 1:
        if kind == "smoke":  # generate the shared fixtures once, before the workers read them
            for name in dict.fromkeys(job.row["smoke"]["fixture"] for job in jobs):
                smoke_fixture(args.out, name)
        todo = jobs if args.force else [j for j in jobs if not _finished(args.out, j)]
        worker_argv = _worker_argv(argv[1:])
        if args.weights == HUB and kind != "smoke":
            worker_argv += _resolve_hub_once(todo, table)
        results = run_parallel(todo, worker_argv, slots, args.out)
    else:
        for item in args.hub_commit:
            tag, _, commit = item.partition("=")
            try:
                hub_weights(tag, commit or None)
            except (WeightsUnavailableError, CheckpointError, KeyError):
                pass  # the row that needs it records why (build_row_config asks again)
        results = run_jobs(
            jobs,
            table,
            args.out,
            args.data_root,
            args.weights,
            args.force,
            verbose=args.verbose,
            protocol=args.protocol,
            cache=args.cache,
        )
    if not _is_rank_zero():
        return 0
    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "skipped", "failed")}
    print(f"{len(results)} {kind} jobs: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed")
    print(f"Results: {(args.out / kind / 'results').resolve()}  (report: smarties bench report --out {args.out})")
    return 1 if counts["failed"] else 0


def _resolve_hub_once(jobs: Sequence[Job], table: dict[str, Any]) -> list[str]:
    """Fetch the Hub weights of ``jobs`` in this process; ``--hub-commit TAG=SHA`` options for the workers."""
    options = []
    for tag in dict.fromkeys(_hub_tag(table["backbones"][job.backbone]) for job in jobs):
        try:
            options += ["--hub-commit", f"{tag}={hub_weights(tag)['revision']}"]
        except (WeightsUnavailableError, CheckpointError, KeyError):
            pass  # each worker then records why its rows were skipped
    return options


def _finished(out: Path, job: Job) -> bool:
    path = result_path(out, job)
    return path.is_file() and _read_or_failed(path, job).get("status") == "ok"  # a damaged file: run the row again


if __name__ == "__main__":
    raise SystemExit(main())
