"""``smarties bench run|report``: the command line of the paper-table runner.

The authors' rows run the protocol that produced the published numbers unless ``--protocol paper`` is given
(:func:`~smarties_terratorch.bench.config.apply_protocol`). Rows run in parallel worker processes with ``--jobs`` /
``--devices`` (:func:`~smarties_terratorch.bench.run.run_parallel`, each worker's options built by
:func:`worker_argv`), one per SLURM array task with ``--job-index``, and a row on several GPUs with
``--trainer.devices N``; ``report`` merges several results folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import HUB
from .report import write_report
from .run import BenchRun, finished, is_rank_zero, run_parallel
from .table import Job, Table, list_jobs, load_table, select_jobs

__all__ = ["main", "parse_args", "parser", "trainer_overrides", "worker_argv"]


def _path_arg(value: str) -> Path:
    """A path option, made absolute once, at parsing, against the working directory.

    Later steps change what paths are relative to (fixture folders, run configs, worker processes), so a relative
    ``--out`` resolved there would be doubled (``bench_results/.../bench_results/...``).
    """
    return Path(value).expanduser().absolute()


def _weights_arg(value: str) -> Path | str:
    return HUB if value == HUB else _path_arg(value)


def parser() -> argparse.ArgumentParser:
    """The ``smarties bench`` argument parser (``run`` also takes ``--trainer.KEY VALUE``: :func:`parse_args`)."""
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


def trainer_overrides(extra: Sequence[str]) -> dict[str, Any]:
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


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``smarties bench`` arguments; a ``run``'s ``--trainer.KEY VALUE`` land in ``trainer_overrides``."""
    args, extra = parser().parse_known_args(list(argv))
    if args.command == "report":
        if extra:
            raise SystemExit(f"smarties bench report: unknown arguments {extra}")
        return args
    args.trainer_overrides = trainer_overrides(extra)
    return args


def worker_argv(args: argparse.Namespace, job_index: int) -> list[str]:
    """The ``smarties bench`` arguments of a worker process that runs job ``job_index`` of the selection ``args``
    makes, with the same options, and neither parallelism nor ``--list``."""
    argv = ["run", "--out", str(args.out), "--data-root", str(args.data_root), "--protocol", args.protocol]
    argv += ["--smoke"] * args.smoke + ["--real-data"] * args.real_data + ["--force"] * args.force
    argv += ["--no-cache"] * (not args.cache) + ["--verbose"] * args.verbose
    if args.weights is not None:
        argv += ["--weights", str(args.weights)]
    if args.table is not None:
        argv += ["--table", str(args.table)]
    if args.rows:
        argv += ["--rows", *args.rows]
    if args.backbone:
        argv += ["--backbone", *args.backbone]
    for item in args.hub_commit:
        argv += ["--hub-commit", item]
    for key, value in args.trainer_overrides.items():  # JSON is YAML: the worker parses back the same value
        argv.append(f"--{key}={json.dumps(value)}")
    return [*argv, "--job-index", str(job_index)]


def _bench_run(args: argparse.Namespace, table: Table) -> BenchRun:
    """The run ``args`` describe (a worker's ``--hub-commit TAG=SHA``: the commits its parent resolved)."""
    hub_commits = {}
    for item in args.hub_commit:
        tag, _, commit = item.partition("=")
        if commit:
            hub_commits[tag] = commit
    return BenchRun(
        table,
        args.out,
        args.data_root,
        args.weights,
        force=args.force,
        protocol=args.protocol,
        cache=args.cache,
        verbose=args.verbose,
        trainer_overrides=args.trainer_overrides,
        hub_commits=hub_commits,
    )


def _run(args: argparse.Namespace) -> int:
    """``smarties bench run``."""
    table = load_table(args.table)
    kind = "smoke" if args.smoke else "real-data" if args.real_data else "real"
    jobs = select_jobs(table, kind, args.rows, args.backbone)
    if args.protocol not in table.protocols:
        raise SystemExit(f"--protocol {args.protocol}: unknown; known: {', '.join(table.protocols)}")
    selection = list(jobs)
    if args.job_index is not None:
        if not 0 <= args.job_index < len(jobs):
            raise SystemExit(f"--job-index {args.job_index}: the selection has {len(jobs)} jobs (0..{len(jobs) - 1})")
        jobs = [jobs[args.job_index]]
    if args.list:
        print(list_jobs(jobs, table))
        return 0
    slots: list[str | None] = list(args.devices) if args.devices else [None] * (args.jobs or 1)
    if args.devices and args.jobs and args.jobs != len(args.devices):
        raise SystemExit(f"--jobs {args.jobs} and {len(args.devices)} --devices disagree: one process per device")
    bench = _bench_run(args, table)
    if len(slots) > 1 and len(jobs) > 1:
        results = _in_workers(args, bench, jobs, selection, slots)
    else:
        results = bench.run(jobs)
    if not is_rank_zero():
        return 0
    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "skipped", "failed")}
    print(f"{len(results)} {kind} jobs: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed")
    print(f"Results: {(args.out / kind / 'results').resolve()}  (report: smarties bench report --out {args.out})")
    return 1 if counts["failed"] else 0


def _in_workers(
    args: argparse.Namespace, bench: BenchRun, jobs: list[Job], selection: list[Job], slots: list[str | None]
) -> list[dict[str, Any]]:
    """Run ``jobs`` (of the selection ``args`` makes) in worker processes, one per slot at a time."""
    if args.smoke:  # generate the shared fixtures once, before the workers read them
        for name in dict.fromkeys(job.row.smoke.fixture for job in jobs if job.row.smoke):
            bench.fixture(name)
    todo = jobs if args.force else [job for job in jobs if not finished(bench.out, job)]
    if args.weights == HUB and not args.smoke:  # one commit for every worker
        commits = bench.resolve_hub(todo)
        args = argparse.Namespace(**{**vars(args), "hub_commit": [f"{t}={c}" for t, c in commits.items()]})
    index = {job.key: i for i, job in enumerate(selection)}  # a worker selects the same jobs and runs one

    def command(job: Job) -> list[str]:
        return [sys.executable, "-m", "smarties_terratorch.cli", "bench", *worker_argv(args, index[job.key])]

    return run_parallel(todo, command, slots, bench.out)


def main(argv: Sequence[str] | None = None) -> int:
    """``smarties bench run|report ...``; returns the exit code (1 if any row failed)."""
    args = parse_args(list(argv) if argv is not None else sys.argv[1:])
    if args.command == "report":
        print(write_report(args.out, args.report_dir))
        print(f"Report files: {(args.report_dir or args.out[0] / 'report').resolve()}")
        return 0
    return _run(args)


if __name__ == "__main__":
    raise SystemExit(main())
