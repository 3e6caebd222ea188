"""Running paper-table rows: :class:`BenchRun` (in process, one row after another) and :func:`run_parallel`.

Results are written atomically (temporary file + ``os.replace``) when a row finishes, with the resolved config,
seed, library versions, the weights' sha256 (and Hub repo and commit), the data files' sha256 from the data root's
lock file, and wall time; re-running skips finished rows unless ``force``, so a killed run loses at most the row in
progress.

Each row records the maximum over its periodic evaluations and the last epoch's value, and the report compares the
maximum (:func:`reported_values`). Frozen-encoder rows without augmentation train their head on cached features
(:mod:`smarties_terratorch.tasks.cached`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from .. import models  # noqa: F401 - declares the encoders' weights: get_weights knows their tags
from ..checkpoints import CheckpointError, WeightsUnavailableError, check_checkpoint
from ..download import LOCK_NAME
from ..fetch import file_sha256
from ..hub import fetch_hub_weights
from ..io import write_text
from ..testing import set_path
from ..weights import get_weights
from .config import Prepared, build_row_config
from .table import Job, Row, Table, config_label

__all__ = [
    "BenchRun",
    "Executor",
    "atomic_write_json",
    "data_provenance",
    "execute",
    "load_results",
    "read_result",
    "result_path",
    "run_parallel",
    "versions",
]

_VERSIONED = ("smarties-terratorch", "torch", "lightning", "terratorch", "timm", "torchmetrics", "torchgeo")

#: Runs one job's config file; returns its metrics (:func:`execute`, or a stand-in in tests).
Executor = Callable[[Job, Path, bool], dict[str, Any]]


# ================================================================================================ result files
def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (all or nothing, see :func:`smarties_terratorch.io.write_text`)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str))


def result_path(out: Path, job: Job) -> Path:
    """The result file of ``job`` under the results folder ``out``."""
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
        row, backbone = (job.row.id, job.backbone) if job is not None else (path.stem, None)
        kind = job.kind if job is not None else path.parent.parent.name
        return {"row": row, "backbone": backbone, "kind": kind, "status": "failed", "reason": str(err)}


def finished(out: Path, job: Job) -> bool:
    """Whether ``job`` has an ``ok`` result under ``out`` (a damaged file: run the row again)."""
    path = result_path(out, job)
    return path.is_file() and _read_or_failed(path, job).get("status") == "ok"


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


def _result_line(result: Mapping[str, Any]) -> str:
    """A finished row in one line (the progress output)."""
    head = f"[{result['kind']}] {result['row']} ({result['backbone']})"
    if result["status"] == "ok":
        return f"{head}: {result['metric']} = {result['value']:.2f} in {result['wall_time_s']:.1f} s"
    return f"{head}: {result['status']}: {result.get('reason', '')}"


# ================================================================================================ provenance
def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


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


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-GPU (DDP) row, which must not write results."""
    return all(os.environ.get(v, "0") == "0" for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


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

    from ..tasks.cached import cacheable, features_as_input, intra_op_threads, prepare_cached_features
    from ..tasks.protocols import check_protocol

    row = job.row
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI also looks at sys.argv (ours are `bench run ...`)
    try:
        cli = build_lightning_cli(["-c", str(config_file)], run=False)
    finally:
        sys.argv = argv
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    history = _eval_history(f"val/{row.metric_key}")
    trainer.callbacks.append(history)
    context = ExitStack()
    cache: dict[str, Any] = {"used": False}
    if row.cache and job.options.get("cache"):
        why = cacheable(model, datamodule)
        if why is not None:
            cache["reason"] = why
        else:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
            splits = ("train", "val") if row.stage == "val" else ("train", "val", "test")
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
        if row.subcommand == "fit":
            trainer.fit(model, datamodule=datamodule)
            periodic = list(history.values)
            if row.checkpoint == "best":
                ckpt = _best_checkpoint(trainer)
            evaluated = f"best checkpoint {ckpt}" if ckpt else "final weights"
        elif row.subcommand != "validate":
            raise ValueError(f"{row.id}: subcommand must be fit or validate, got {row.subcommand!r}")
        last = trainer.validate(model, datamodule=datamodule, verbose=verbose)[0]  # the final weights, val list
        if row.stage == "val":
            metrics = last
        else:
            metrics = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=verbose)[0]
    protocol = check_protocol(row.protocol, model, trainer.optimizers if row.subcommand == "fit" else None)
    key = f"{row.stage}/{row.metric_key}"
    if key not in metrics:
        raise KeyError(f"{row.id}: metric {key} was not logged (logged: {sorted(metrics)})")
    val_key = f"val/{row.metric_key}"
    if val_key not in last:
        raise KeyError(f"{row.id}: metric {val_key} was not logged (logged: {sorted(last)})")
    final = float(last[val_key])
    return {
        "raw_value": float(metrics[key]),
        # the periodic evaluations during fit and the final weights' evaluation (kNN: that one evaluation)
        "raw_value_max": max([v for _, v in periodic] + [final]),
        "raw_value_last": final,
        "evaluations": [[epoch, value] for epoch, value in periodic],
        "metrics": {k: float(v) for k, v in {**last, **metrics}.items()},
        "protocol_check": protocol,
        "evaluated": f"{row.stage} split, {evaluated}",
        "feature_cache": cache,
        "seed": cli.config.get("seed_everything"),
    }


def reported_values(row: Row, measured: Mapping[str, Any]) -> dict[str, Any]:
    """The labelled values of a finished row: the maximum over its periodic evaluations, the last epoch's value,
    and the one compared with the published number (``value``, described by ``reported_as``).

    Rows evaluated on the val list (the authors' protocol) compare the maximum, as the authors' logs report it;
    rows evaluated on a test split (PANGAEA's protocol) compare the test value of the best-val checkpoint.
    """
    scale = row.scale
    raw = measured["raw_value"]
    best = measured.get("raw_value_max", raw)
    last = measured.get("raw_value_last", raw)
    values: dict[str, Any] = {"value_max": round(best * scale, 4), "value_last": round(last * scale, 4)}
    if "evaluations" in measured:  # [epoch, value] of each periodic evaluation, on the reported scale
        values["evaluations"] = [[epoch, round(v * scale, 4)] for epoch, v in measured["evaluations"]]
    if row.stage == "val":
        values.update(value=values["value_max"], reported_as="max over periodic evaluations (val list)")
    else:
        values.update(
            value=round(raw * scale, 4),
            reported_as=f"{row.stage} split, {row.checkpoint} checkpoint (max and last: val split)",
        )
    return values


# ================================================================================================ the run
@dataclass
class BenchRun:
    """One ``smarties bench run``: the table, where results go, the data and weights, and the run's options.

    It owns the run's state: the Hub weights fetched (once per tag, every row uses the same commit), the weights
    files checked (per path, size and mtime) and the smoke fixtures generated.

    Args:
        table: the loaded table.
        out: the results folder (``OUT/<kind>/results/<row>__<backbone>.json``).
        data_root: the datasets' root (real runs; default ``./data``).
        weights: a folder with the official ``.safetensors`` files, one file, or ``"hub"``.
        force: run rows again that already have a finished result.
        protocol: the protocol variant of the authors' rows.
        cache: train frozen-encoder heads on cached features (rows marked ``cache``).
        verbose: Lightning's own progress bars and summaries.
        trainer_overrides: ``{"trainer.KEY": value}`` set on every row's config (e.g. a DDP row's devices).
        hub_commits: weights tag -> the commit a parallel run's parent resolved (its workers fetch that one).
        executor: runs one row's config (:func:`execute`; tests pass a stand-in).
        fetch_hub: fetches a weights tag from the Hub (:func:`smarties_terratorch.hub.fetch_hub_weights`).
    """

    table: Table
    out: Path
    data_root: Path | None = None
    weights: Path | str | None = None
    force: bool = False
    protocol: str = "released"
    cache: bool = True
    verbose: bool = False
    trainer_overrides: Mapping[str, Any] = field(default_factory=dict)
    hub_commits: Mapping[str, str] = field(default_factory=dict)
    executor: Executor = execute
    fetch_hub: Callable[..., Any] = fetch_hub_weights
    _hub: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _checked: dict[tuple[str, int, float], str | None] = field(default_factory=dict, init=False, repr=False)
    _fixtures: dict[str, Path] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # once, here: the run's configs and fixtures live in other folders, where a relative path means another place
        self.out = Path(self.out).absolute()
        self.data_root = None if self.data_root is None else Path(self.data_root).absolute()

    # -------------------------------------------------------------------------------------------- weights
    def hub_weights(self, tag: str) -> dict[str, Any]:
        """The released weights ``tag`` fetched from the Hugging Face Hub once per run (every row uses the same
        commit: ``hub_commits[tag]`` if the parent process resolved it): ``{"repo_id", "revision" (the commit),
        "pinned", "sha256", "path"}``.

        Raises:
            KeyError: an unknown weights tag.
            WeightsUnavailableError, CheckpointError: the file cannot be fetched, or its declared sha256 differs.
        """
        if tag not in self._hub:
            commit = self.hub_commits.get(tag)
            record = self.fetch_hub(tag, commit).record()
            if commit is not None:  # pinned only if the package declares it, whoever resolved it
                record["pinned"] = get_weights(tag).revision is not None
            self._hub[tag] = record
        return self._hub[tag]

    def hub_checkpoint(self, tag: str) -> dict[str, Any]:
        """:meth:`hub_weights`, any reason it cannot be had raised as ``FileNotFoundError`` (the row is skipped)."""
        try:
            return self.hub_weights(tag)
        except (WeightsUnavailableError, CheckpointError, KeyError) as err:
            raise FileNotFoundError(str(err)) from err

    def resolve_hub(self, jobs: Iterable[Job]) -> dict[str, str]:
        """Fetch the Hub weights of ``jobs`` here, once per tag; tag -> commit, for the worker processes."""
        commits = {}
        for tag in dict.fromkeys(self.table.backbones[job.backbone].hub_tag for job in jobs):
            try:
                commits[tag] = self.hub_weights(tag)["revision"]
            except (WeightsUnavailableError, CheckpointError, KeyError):
                pass  # each worker then records why its rows were skipped
        return commits

    def weights_problem(self, path: Path) -> str | None:
        """Why the weights file ``path`` cannot be used (unreadable, or pickled code/objects), or ``None`` if it can.

        The check reads the file safely (never unpickling objects) and is cached per path, size and mtime.
        """
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime)
        if key not in self._checked:
            try:
                check_checkpoint(path)
                self._checked[key] = None
            except (CheckpointError, OSError) as err:
                self._checked[key] = str(err)
        return self._checked[key]

    # -------------------------------------------------------------------------------------------- fixtures
    def fixture(self, name: str) -> Path:
        """The generated fixture ``name`` under ``OUT/smoke/data``: reused when complete (parallel workers share
        it), written afresh otherwise (a half-written fixture of a killed run is removed first)."""
        if name not in self._fixtures:
            from ..testing import make_fixture

            root = self.out / "smoke" / "data" / name
            done = root / ".complete"
            if not done.is_file():
                if root.exists():
                    shutil.rmtree(root)
                make_fixture(name, root)
                write_text(done, "")
            self._fixtures[name] = root
        return self._fixtures[name]

    # -------------------------------------------------------------------------------------------- rows
    def prepare(self, job: Job) -> Prepared:
        """The job's config (:func:`~smarties_terratorch.bench.config.build_row_config`) with the run's options."""
        prepared = build_row_config(
            job,
            self.table,
            self.out / job.kind,
            self.data_root,
            self.weights,
            self.fixture,
            self.protocol,
            hub=self.hub_checkpoint,
        )
        for dotted, value in self.trainer_overrides.items():  # e.g. trainer.devices: 4 (DDP)
            set_path(prepared.config, dotted, value)
        return prepared

    def run_job(self, job: Job) -> dict[str, Any]:
        """Prepare, run and record one job; returns the result written to its JSON file."""
        row = job.row
        published = row.published.get(job.backbone)
        result: dict[str, Any] = {
            "row": row.id,
            "backbone": job.backbone,
            "kind": job.kind,
            "dataset": row.dataset,
            "protocol": row.protocol,
            "metric": row.metric,
            "published": published.value if published else None,
            "provenance": published.provenance if published else None,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        start = time.perf_counter()
        try:
            prepared = self.prepare(job)
        except FileNotFoundError as err:
            result.update(status="skipped", reason=f"skipped: {err}")
        else:
            self._run_prepared(job, prepared, result)
        result["wall_time_s"] = round(time.perf_counter() - start, 2)
        result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        result = json.loads(json.dumps(result, default=str))  # return exactly what the file holds (str keys etc.)
        if is_rank_zero():  # a DDP row's other processes run the same code and must not write
            atomic_write_json(result_path(self.out, job), result)
        return result

    def _run_prepared(self, job: Job, prepared: Prepared, result: dict[str, Any]) -> None:
        """Check, provenance, execute: fill ``result`` of a job whose config was built."""
        result["config_file"] = config_label(prepared.config_file)
        result["notes"] = prepared.notes
        result["protocol_variant"] = prepared.protocol
        problem = self.weights_problem(prepared.weights) if prepared.weights is not None else None
        if problem is not None:  # checked before the row starts: a bad file fails the row, it never loads
            result.update(status="failed", reason=f"weights: {problem}")
            return
        if prepared.missing:
            result.update(status="skipped", reason="skipped: missing " + "; ".join(prepared.missing))
            return
        run_config = self.out / job.kind / "configs" / f"{job.key}.yaml"
        write_text(run_config, yaml.safe_dump(prepared.config, sort_keys=False))
        result["config"] = prepared.config
        if prepared.hub is not None:  # fetched from the Hub: its repo, commit and whether it was pinned
            result["weights"] = dict(prepared.hub)
        elif prepared.weights is not None:
            result["weights"] = {"path": str(prepared.weights), "sha256": file_sha256(prepared.weights)}
        else:
            result["weights"] = {"path": None, "sha256": None, "note": "random initialisation"}
        if job.kind == "real":
            root = self.data_root if self.data_root is not None else Path("data")
            result["data"] = data_provenance(root.resolve(), prepared.data_paths)
        result["versions"] = versions()
        job.options.update(
            cache=self.cache,
            cache_dir=str(self.out / job.kind / "feature_cache"),
            weights_sha256=result["weights"]["sha256"],
        )
        try:
            measured = self.executor(job, run_config, self.verbose)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a broken row is recorded; kills propagate
            result.update(status="failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
            return
        result.update(measured)
        result.update(status="ok", **reported_values(job.row, measured))
        if result["published"] is not None and job.kind == "real":
            result["difference"] = round(result["value"] - result["published"], 4)

    def run(self, jobs: Iterable[Job]) -> list[dict[str, Any]]:
        """Run ``jobs`` in order, skipping those with a finished (``ok``) result unless ``force``.

        Skipped / failed rows are retried on the next run (their data may have appeared). Each result is written
        when its row ends, so interrupting the loop loses only the row in progress.
        """
        results = []
        bar = tqdm(list(jobs), desc="paper table", unit="row", dynamic_ncols=True, position=0)
        for job in bar:
            bar.set_postfix_str(f"{job.kind}: {job.key}")
            path = result_path(self.out, job)
            if path.is_file() and not self.force:
                try:
                    previous = read_result(path)
                except ValueError as err:
                    bar.write(f"[{job.kind}] {job.key}: {err} Recomputing it now.")
                    previous = {}
                if previous.get("status") == "ok":
                    results.append({**previous, "resumed": True})
                    continue
            result = self.run_job(job)
            bar.write(_result_line(result))
            results.append(result)
        return results


# ================================================================================================ parallel
def run_parallel(
    jobs: Sequence[Job],
    command: Callable[[Job], Sequence[str]],
    slots: Sequence[str | None],
    out: Path,
    grace: float = 30.0,
) -> list[dict[str, Any]]:
    """Run ``jobs`` in worker processes, at most one per slot at a time; return their results in job order.

    ``command(job)`` is the worker's command line (``smarties bench run`` of that one job: ``python -m
    smarties_terratorch.cli bench ...``, see :func:`smarties_terratorch.bench.cli.worker_argv`); a slot that names
    a device sets ``CUDA_VISIBLE_DEVICES`` to it, so each process sees one GPU. Workers write their own result
    files (the usual per-row JSON, atomic); their output goes to
    ``OUT/<kind>/logs/<row>__<backbone>.log``. An interrupt (Ctrl-C, or ``KeyboardInterrupt`` however it reaches
    this process) stops the running workers (SIGINT, then SIGKILL after ``grace`` seconds), drops the rows not
    started yet and keeps every finished row's result; the next run resumes from them.
    """
    free: queue.Queue[str | None] = queue.Queue()
    for slot in slots:
        free.put(slot)
    running: set[subprocess.Popen] = set()
    lock = threading.Lock()
    stopping = threading.Event()

    def work(job: Job) -> int:
        slot = free.get()  # as many threads as slots: one is always free here
        try:
            env = dict(os.environ)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            log_path = _log_path(out, job)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as log, lock:
                if stopping.is_set():
                    return -signal.SIGINT
                proc = subprocess.Popen(list(command(job)), env=env, stdout=log, stderr=subprocess.STDOUT)
                running.add(proc)
            try:
                return proc.wait()
            finally:
                with lock:
                    running.discard(proc)
        finally:
            free.put(slot)

    bar = tqdm(total=len(jobs), desc="paper table", unit="row", dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=len(slots))
    try:
        futures = {pool.submit(work, job): job for job in jobs}
        for future in as_completed(futures):
            job, code = futures[future], future.result()
            bar.update(1)
            path = result_path(out, job)
            if path.is_file():
                bar.write(_result_line(_read_or_failed(path, job)))
            else:
                bar.write(f"[{job.kind}] {job.key}: the worker exited with {code} without a result")
                bar.write(_tail(_log_path(out, job)))
    except BaseException:
        _stop_workers(running, lock, stopping, grace)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # interrupted: drop rows not started, keep finished results
        bar.close()
    results = []
    for job in jobs:
        path = result_path(out, job)
        if path.is_file():
            results.append(_read_or_failed(path, job))
        else:
            reason = f"worker produced no result (log: {_log_path(out, job)})"
            results.append({"row": job.row.id, "backbone": job.backbone, "kind": job.kind, "status": "failed",
                            "reason": reason})  # fmt: skip
    return results


def _stop_workers(running: set[subprocess.Popen], lock: threading.Lock, stopping: threading.Event,
                  grace: float) -> None:
    """Interrupt the running workers (SIGINT: a row in progress writes no result) and start no other one; any
    worker still alive after ``grace`` seconds is killed."""
    with lock:
        stopping.set()
        procs = list(running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log_path(out: Path, job: Job) -> Path:
    return out / job.kind / "logs" / f"{job.key}.log"


def _tail(log: Path, lines: int = 20) -> str:
    """The last lines of a worker's log (what a failed worker said), with the log's path."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()[-lines:]
    except OSError:
        text = []
    return "\n".join([f"  {log}:", *(f"    {line}" for line in text)])
