"""``smarties bench``: the paper table, the runner (smoke, resume after a kill, atomic results, skips) and the report.

The runner runs the project's own configs in-process; the reduced smoke test covers one row per protocol on tiny
generated data, the full 14-row smoke run is ``slow``. Runner logic (resume, kills, skips, report) is tested with
a stand-in executor that returns fixed metrics, so those tests take milliseconds.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from smarties_terratorch.bench import config, run
from smarties_terratorch.bench.cli import main, parse_args, trainer_overrides, worker_argv
from smarties_terratorch.bench.config import HUB, build_row_config
from smarties_terratorch.bench.run import BenchRun
from smarties_terratorch.bench.table import PACKAGE, Job, load_table, select_jobs

TABLE = load_table()
ROWS = {r.id: r for r in TABLE.rows}


class Killed(BaseException):
    """The process dying inside a row (as a kill would: not an ``Exception``, so no row records it)."""


def _run(jobs, out, data=None, weights=None, executor=run.execute, **options) -> list[dict[str, Any]]:
    return BenchRun(TABLE, out, data, weights, executor=executor, **options).run(jobs)


# ------------------------------------------------------------------------------------------------- the table
def test_table_has_the_fourteen_paper_rows_with_provenance() -> None:
    assert len(TABLE.rows) == 14
    assert {r.protocol for r in TABLE.rows} == {
        "finetune",
        "linear_probe",
        "knn",
        "upernet_probe",
        "nonlinear_probe",
    }
    published = {(r.id, bb): v.value for r in TABLE.rows for bb, v in r.published.items()}
    # the paper's published values
    assert published[("bigearthnet_s2_finetune", "vitb")] == 86.9
    assert published[("bigearthnet_s2_finetune", "vitl")] == 87.7
    assert published[("bigearthnet_s1_linprobe", "vitl")] == 80.5
    assert published[("bigearthnet_mm_linprobe", "vitb")] == 85.4
    assert published[("eurosat_linprobe", "vitl")] == 98.9
    assert published[("eurosat_finetune", "vitb")] == 99.4
    assert published[("burnscars_upernet", "vitb")] == 82.8
    assert published[("spacenet7_upernet", "vitb")] == 62.2
    assert published[("sickle_nonlinear_probe", "vitb")] == 50.2
    for row in ("eurosat_knn", "whurs19_knn", "ucmerced_knn", "dfc2020_probe"):  # §5: none found
        assert all(v.value is None for v in ROWS[row].published.values())
    assert list(ROWS["resisc45_finetune"].published) == ["vitl"]  # the authors' ViT-L-only script
    for row in TABLE.rows:
        assert (PACKAGE / row.config).is_file(), row.config  # shipped in the package
        for entry in row.published.values():
            assert entry.provenance, row.id


def test_job_selection_and_bad_names() -> None:
    assert len(select_jobs(TABLE, "smoke")) == 14  # one tiny run per row
    real = select_jobs(TABLE, "real")
    assert len(real) == sum(len(r.published) for r in TABLE.rows)
    assert [j.key for j in select_jobs(TABLE, "real", ["eurosat_knn"], ["vitl"])] == ["eurosat_knn__vitl"]
    with pytest.raises(ValueError, match="Unknown row"):
        select_jobs(TABLE, "real", ["imagenet"])
    with pytest.raises(ValueError, match="Unknown backbone"):
        select_jobs(TABLE, "real", None, ["vith"])


# ------------------------------------------------------------------------------------------------- smoke runs
REDUCED = ["eurosat_finetune", "eurosat_linprobe", "eurosat_knn", "spacenet7_upernet", "dfc2020_probe"]


def _check_smoke(results: list[dict[str, Any]], out: Path) -> None:
    for r in results:
        assert r["status"] == "ok", (r["row"], r.get("reason"), r.get("traceback"))
        assert r["kind"] == "smoke" and r["backbone"] == "tiny"
        assert 0 <= r["value"] <= 100
        assert r["config"]["model"]["init_args"]["model_args"]["backbone"] == "smarties_vit_tiny_patch16"
        assert r["weights"]["sha256"] is None and r["versions"]["torch"]
        assert r["seed"] is not None and r["wall_time_s"] > 0
        assert (out / "smoke" / "results" / f"{r['row']}__tiny.json").is_file()
    assert not (out / "real").exists()  # smoke results live apart from real ones


def test_smoke_run_one_row_per_protocol_then_resume(tmp_path: Path) -> None:
    jobs = select_jobs(TABLE, "smoke", REDUCED)
    results = _run(jobs, tmp_path)
    _check_smoke(results, tmp_path)
    by_row = {r["row"]: r for r in results}
    assert by_row["eurosat_linprobe"]["protocol_check"]["encoder_trainable_params"] == 0
    # the released protocol: no layer decay (every layer at the base lr), drop path 0, fp32 on CPU
    finetune = by_row["eurosat_finetune"]
    assert set(finetune["protocol_check"]["layer_lrs"].values()) == {2.0e-4}
    assert finetune["protocol_variant"] == {
        "variant": "released",
        "layer_decay": 1.0,
        "drop_path_rate": 0.0,
        "precision": "32-true",
    }
    for r in results:  # both values, labelled; the authors' rows compare the maximum
        assert r["value_max"] >= r["value_last"] - 1e-9
        if r["row"] != "spacenet7_upernet":
            assert r["value"] == r["value_max"] and r["reported_as"].startswith("max over periodic evaluations")
    assert by_row["eurosat_linprobe"]["feature_cache"]["used"]  # frozen, no augmentation: encoded once
    assert by_row["eurosat_knn"]["feature_cache"]["used"]
    assert not by_row["eurosat_finetune"]["feature_cache"]["used"]
    dfc = by_row["dfc2020_probe"]  # the authors' DFC2020 probe: one 1x1 conv on the last block's tokens
    assert dfc["protocol_check"]["decoder"] == "IdentityDecoder"
    assert dfc["protocol_check"]["probe_layer"].startswith("Conv2d(64, 8, kernel_size=(1, 1)")
    assert by_row["eurosat_knn"]["protocol_check"]["k"] == 20
    assert by_row["spacenet7_upernet"]["protocol_check"]["decoder"] == "UperNetDecoder"
    assert by_row["spacenet7_upernet"]["evaluated"].startswith("test split")

    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "smoke" / "results").iterdir()}
    again = _run(jobs, tmp_path)  # finished rows are not run again
    assert all(r.get("resumed") for r in again)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "smoke" / "results").iterdir()} == stamps


def test_every_rows_smoke_config_builds(tmp_path: Path) -> None:
    """The fast stand-in of the slow all-rows smoke run: every row's smoke config is built (fixture paths, the
    tiny random backbone, one batch per loop) and names an existing fixture generator, without training."""
    from smarties_terratorch.testing import FIXTURES

    for job in select_jobs(TABLE, "smoke"):
        assert job.row.smoke is not None and job.row.smoke.fixture in FIXTURES, job.key
        prepared = build_row_config(job, TABLE, tmp_path / "smoke", fixtures=lambda name: tmp_path / "data" / name)
        cfg = prepared.config
        assert cfg["model"]["init_args"]["model_args"]["backbone"] == TABLE.smoke_backbone.arch, job.key
        assert "backbone_ckpt_path" not in cfg["model"]["init_args"]["model_args"], job.key
        assert cfg["trainer"]["fast_dev_run"] == 1 and cfg["trainer"]["accelerator"] == "cpu", job.key
        assert cfg["data"]["init_args"]["batch_size"] == 2 and cfg["data"]["init_args"]["num_workers"] == 0
        assert prepared.missing == [] and prepared.protocol["variant"] == "released", job.key
        for dotted in job.row.smoke.overrides:  # every fixture path lands in the config
            value = cfg
            for part in dotted.split("."):
                value = value[part]
            assert not isinstance(value, str) or "{root}" not in value, (job.key, dotted)


@pytest.mark.slow  # all 14 rows end to end (about 40 s): the config test above and the one-row-per-protocol run
def test_smoke_run_all_rows(tmp_path: Path) -> None:  # cover it in the default run
    assert main(["run", "--smoke", "--out", str(tmp_path)]) == 0
    results = run.load_results(tmp_path, "smoke")
    assert len(results) == 14
    _check_smoke(results, tmp_path)


# ------------------------------------------------------------------------------------------------- resume / kill
def _fake(values: dict[str, float], kill: str | None = None, calls: list[str] | None = None):
    def executor(job: Job, config_file: Path, verbose: bool) -> dict[str, Any]:
        assert config_file.is_file()
        if calls is not None:
            calls.append(job.key)
        if job.key == kill:
            raise Killed(f"simulated kill in {job.key}")
        value = values[job.row.id]
        last = values.get(job.row.id + ":last", value)
        return {
            "raw_value": value,
            "raw_value_max": value,
            "raw_value_last": last,
            "metrics": {},
            "protocol_check": {},
            "evaluated": "x",
            "seed": 0,
        }

    return executor


def _real_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with EuroSAT's expected paths and a weights folder with a (fake) ViT-B file."""
    data = tmp_path / "data"
    (data / "EuroSAT" / "EuroSAT_MS").mkdir(parents=True)
    (data / "eval_splits").mkdir()
    for name in ("EuroSAT-train.txt", "EuroSAT-val.txt"):  # the authors' file names, as they publish them
        (data / "eval_splits" / name).write_text("./Forest/Forest_1.tif\n")
    weights = tmp_path / "weights"
    weights.mkdir()
    save_file({"cls_token": torch.zeros(1, 1, 8)}, weights / "smarties-v1-vitb.safetensors")  # readable, not ViT-B
    return data, weights


def test_killed_run_loses_only_the_row_in_progress(tmp_path: Path) -> None:
    data, weights = _real_setup(tmp_path)
    jobs = select_jobs(TABLE, "real", ["eurosat_finetune", "eurosat_linprobe", "eurosat_knn"], ["vitb"])
    values = {"eurosat_finetune": 0.99, "eurosat_linprobe": 0.98, "eurosat_knn": 0.9}
    out = tmp_path / "out"
    with pytest.raises(Killed):
        _run(jobs, out, data, weights, executor=_fake(values, kill="eurosat_linprobe__vitb"))
    results = out / "real" / "results"
    assert sorted(p.name for p in results.iterdir()) == ["eurosat_finetune__vitb.json"]  # no partial/tmp files
    first = json.loads((results / "eurosat_finetune__vitb.json").read_text())
    assert first["value"] == pytest.approx(99.0) and first["difference"] == pytest.approx(99.0 - 99.4)
    vitb = weights / "smarties-v1-vitb.safetensors"
    assert first["weights"]["sha256"] == hashlib.sha256(vitb.read_bytes()).hexdigest()
    assert first["config"]["model"]["init_args"]["model_args"]["backbone_ckpt_path"] == str(
        weights / "smarties-v1-vitb.safetensors"
    )

    calls: list[str] = []
    rerun = _run(jobs, out, data, weights, executor=_fake(values, calls=calls))
    assert calls == ["eurosat_linprobe__vitb", "eurosat_knn__vitb"]  # the finished row is skipped
    assert [r["status"] for r in rerun] == ["ok", "ok", "ok"] and rerun[0]["resumed"]
    calls.clear()
    _run(jobs, out, data, weights, force=True, executor=_fake(values, calls=calls))
    assert len(calls) == 3  # --force runs everything again


def test_result_files_are_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results" / "row.json"
    run.atomic_write_json(path, {"value": 1})

    real_write = Path.write_bytes

    def broken_write(self: Path, data: bytes) -> int:
        real_write(self, data[:5])  # the process dies half-way through writing
        raise Killed("killed while writing")

    monkeypatch.setattr(Path, "write_bytes", broken_write)
    with pytest.raises(Killed):
        run.atomic_write_json(path, {"value": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"value": 1}  # the old result is intact
    assert [p.name for p in path.parent.iterdir()] == ["row.json"]  # and no temporary file is left


def test_failed_row_is_recorded_and_retried(tmp_path: Path) -> None:
    data, weights = _real_setup(tmp_path)
    jobs = select_jobs(TABLE, "real", ["eurosat_knn"], ["vitb"])

    def broken(job: Job, config_file: Path, verbose: bool) -> dict[str, Any]:
        raise RuntimeError("CUDA out of memory")

    (result,) = _run(jobs, tmp_path / "out", data, weights, executor=broken)
    assert result["status"] == "failed" and "CUDA out of memory" in result["reason"] and "value" not in result
    calls: list[str] = []
    _run(jobs, tmp_path / "out", data, weights, executor=_fake({"eurosat_knn": 0.5}, calls=calls))
    assert calls == ["eurosat_knn__vitb"]


# ------------------------------------------------------------------------------------------------- skips
def test_missing_data_or_weights_is_skipped_never_a_number(tmp_path: Path) -> None:
    data, weights = _real_setup(tmp_path)
    calls: list[str] = []
    executor = _fake({"eurosat_knn": 0.5, "bigearthnet_s2_finetune": 0.5}, calls=calls)
    jobs = select_jobs(TABLE, "real", ["eurosat_knn", "bigearthnet_s2_finetune"])
    results = {
        r["row"] + "/" + r["backbone"]: r
        for r in _run(jobs, tmp_path / "o", data, weights, executor=executor)
    }
    assert calls == ["eurosat_knn__vitb"]
    ben = results["bigearthnet_s2_finetune/vitb"]
    assert ben["status"] == "skipped" and "value" not in ben
    assert (
        ben["reason"].startswith("skipped: missing s2_root: ")
        and str(data.resolve() / "BigEarthNet-v1/S2") in ben["reason"]
    )
    vitl = results["eurosat_knn/vitl"]
    assert vitl["status"] == "skipped"
    assert f"weights smarties-v1-vitl.safetensors not found in {weights}" in vitl["reason"]
    no_weights = _run(select_jobs(TABLE, "real", ["eurosat_knn"], ["vitb"]), tmp_path / "p", data)
    assert "smarties-v1-vitb.safetensors not given (no --weights)" in no_weights[0]["reason"]


# ------------------------------------------------------------------------------------------------- report
def test_report_measured_vs_published_and_kinds_apart(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, weights = _real_setup(tmp_path)
    out = tmp_path / "out"
    real = select_jobs(TABLE, "real", ["eurosat_linprobe", "eurosat_knn"], ["vitb"])
    values = {"eurosat_linprobe": 0.975, "eurosat_linprobe:last": 0.97, "eurosat_knn": 0.9}
    _run(real, out, data, weights, executor=_fake(values))
    smoke = select_jobs(TABLE, "smoke", ["eurosat_linprobe"])
    _run(smoke, out, executor=_fake({"eurosat_linprobe": 0.1234}))

    capsys.readouterr()  # drop the runner's progress lines
    assert main(["report", "--out", str(out)]) == 0
    markdown = capsys.readouterr().out
    real_part, smoke_part = markdown.split("## Smoke run")
    head = "| eurosat_linprobe | vitb | linear_probe | top-1 accuracy (%) "
    assert head + "| 97.50 | 97.00 | 97.50 (max) | 98.40 | -0.90 | ok |" in real_part  # max, last, compared
    head = "| eurosat_knn | vitb | knn | top-1 accuracy (%) "
    assert head + "| 90.00 | 90.00 | 90.00 (max) | n/a | n/a | ok |" in real_part
    assert "shared/" not in markdown and "spec/" not in markdown  # the header cites nothing outside the repository
    assert "12.34" not in real_part and "12.34" in smoke_part  # a smoke number never lands in the real table

    report_dir = out / "report"
    rows = list(csv.DictReader((report_dir / "results.csv").open()))
    assert {(r["kind"], r["row"]) for r in rows} == {
        ("real", "eurosat_linprobe"),
        ("real", "eurosat_knn"),
        ("smoke", "eurosat_linprobe"),
    }
    flat = json.loads((report_dir / "results.json").read_text())
    linprobe = next(e for e in flat if e["kind"] == "real" and e["row"] == "eurosat_linprobe")
    assert linprobe["difference"] == -0.9 and (linprobe["value_max"], linprobe["value_last"]) == (97.5, 97.0)
    assert linprobe["protocol_variant"] == "released"
    png = (report_dir / "paper_table.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_cli_lists_jobs_and_reports_nothing_yet(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--smoke", "--list"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 14
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "No results under" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Unknown row"):
        main(["run", "--rows", "nope", "--out", str(tmp_path)])
    assert not any(name.endswith(".tmp") for _, _, files in os.walk(tmp_path) for name in files)


def test_bad_weights_fail_the_row_before_it_starts(tmp_path: Path) -> None:
    data, weights = _real_setup(tmp_path)
    vitb = weights / "smarties-v1-vitb.safetensors"
    vitb.write_bytes(vitb.read_bytes()[:40])  # truncated
    calls: list[str] = []
    jobs = select_jobs(TABLE, "real", ["eurosat_knn", "bigearthnet_s2_finetune"], ["vitb"])
    results = _run(jobs, tmp_path / "o", data, weights, executor=_fake({}, calls=calls))
    assert calls == []  # no row started
    for r in results:  # reported even when the row's data is missing too: the file has to be fixed
        assert r["status"] == "failed" and "value" not in r
        assert r["reason"].startswith(f"weights: {vitb} is not a readable safetensors file (truncated or corrupt)")
    assert not (tmp_path / "o" / "real" / "configs").exists()


# ------------------------------------------------------------------------------------------ protocol, split names
AUTHORS_SPLITS = [  # the authors' eval_splits/ file names, exactly
    "BigEarthNet-S2-train10prcnt.txt",
    "BigEarthNet-S2-train1prcnt.txt",
    "BigEarthNet-S2-val.txt",
    "BigEarthNet-S1-train10prcnt.txt",
    "BigEarthNet-S1-train1prcnt.txt",
    "BigEarthNet-MM-train10prcnt.txt",
    "BigEarthNet-MM-train1prcnt.txt",
    "EuroSAT-train.txt",
    "EuroSAT-val.txt",
    "RESISC45-train.txt",
    "RESISC45-val.txt",
    "UC-Merced-train.txt",
    "UC-Merced-val.txt",
    "WHU-RS19-train.txt",
    "WHU-RS19-val.txt",
]


def test_the_authors_split_files_are_used_as_they_are(tmp_path: Path) -> None:
    """A copy of the authors' eval_splits/ (exact names) plus the datasets' folders: no row misses a split file."""
    data = tmp_path / "data"
    for folder in ("EuroSAT/EuroSAT_MS", "RESISC45", "WHU-RS19", "UCMerced/Images", "BigEarthNet-v1/S2"):
        (data / folder).mkdir(parents=True)
    (data / "eval_splits").mkdir()
    for name in AUTHORS_SPLITS:
        (data / "eval_splits" / name).write_text("x\n")
    rows = ["eurosat_finetune", "eurosat_linprobe", "eurosat_knn", "resisc45_finetune", "whurs19_knn"]
    rows += ["ucmerced_knn", "bigearthnet_s2_finetune"]
    for job in select_jobs(TABLE, "real", rows):
        prepared = build_row_config(job, TABLE, tmp_path / "out", data)
        assert [m for m in prepared.missing if not m.startswith("weights")] == [], job.key
        splits = {k: v for k, v in prepared.config["data"]["init_args"].items() if k.endswith("_split")}
        assert {Path(v).name for v in splits.values()} <= set(AUTHORS_SPLITS), job.key


def test_older_lowercase_split_names_still_work_and_missing_names_both(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "WHU-RS19").mkdir(parents=True)
    (data / "eval_splits").mkdir()
    (data / "eval_splits" / "whurs19-train.txt").write_text("x\n")
    (job,) = select_jobs(TABLE, "real", ["whurs19_knn"], ["vitb"])
    prepared = build_row_config(job, TABLE, tmp_path / "out", data)
    assert prepared.config["data"]["init_args"]["train_split"] == str(data.resolve() / "eval_splits/whurs19-train.txt")
    val = next(m for m in prepared.missing if m.startswith("val_split"))
    assert "WHU-RS19-val.txt or " in val and val.endswith("whurs19-val.txt")  # both names, the authors' first


def test_protocol_variants() -> None:
    import yaml

    def config_of(row_id: str) -> dict[str, Any]:
        return yaml.safe_load((PACKAGE / ROWS[row_id].config).read_text())

    apply_protocol = config.apply_protocol
    ft = config_of("eurosat_finetune")
    applied = apply_protocol(ft, ROWS["eurosat_finetune"], TABLE, "released", cuda=True)
    assert ft["model"]["init_args"]["layer_decay"] == 1.0 and ft["trainer"]["precision"] == "16-mixed"
    assert ft["model"]["init_args"]["model_args"]["backbone_drop_path_rate"] == 0.0
    assert applied == {"variant": "released", "layer_decay": 1.0, "drop_path_rate": 0.0, "precision": "16-mixed"}
    apply_protocol(ft, ROWS["eurosat_finetune"], TABLE, "paper", cuda=True)
    assert ft["model"]["init_args"]["layer_decay"] == 0.75
    ft["trainer"]["accelerator"] = "cpu"  # fp16 autocast only on a CUDA device
    assert apply_protocol(ft, ROWS["eurosat_finetune"], TABLE, "released", cuda=True)["precision"] == "32-true"
    ft["trainer"]["accelerator"] = "auto"
    assert apply_protocol(ft, ROWS["eurosat_finetune"], TABLE, "released", cuda=False)["precision"] == "32-true"
    pangaea = config_of("burnscars_upernet")  # PANGAEA's rows keep their configs (fp32)
    before = copy.deepcopy(pangaea)
    assert "note" in apply_protocol(pangaea, ROWS["burnscars_upernet"], TABLE, "released")
    assert pangaea == before
    with pytest.raises(ValueError, match="Unknown --protocol 'fast'"):
        apply_protocol(ft, ROWS["eurosat_finetune"], TABLE, "fast")


# ------------------------------------------------------------------------------------------------- scale out
@pytest.mark.slow  # two child processes each running smoke rows: about a minute
def test_two_parallel_workers_run_smoke_rows(tmp_path: Path) -> None:
    """`--jobs 2`: one child process per row at a time, each writing its own result file, then one report."""
    rows = ["eurosat_knn", "whurs19_knn", "ucmerced_knn"]
    assert main(["run", "--smoke", "--rows", *rows, "--jobs", "2", "--out", str(tmp_path)]) == 0
    results = {r["row"]: r for r in run.load_results(tmp_path, "smoke")}
    assert sorted(results) == sorted(rows) and {r["status"] for r in results.values()} == {"ok"}
    logs = sorted(p.name for p in (tmp_path / "smoke" / "logs").iterdir())
    assert logs == sorted(f"{r}__tiny.log" for r in rows)
    assert (tmp_path / "smoke" / "data" / "eurosat" / ".complete").is_file()  # fixtures made once, shared
    starts = sorted(r["started_at"] for r in results.values())
    ends = sorted(r["finished_at"] for r in results.values())
    assert starts[1] <= ends[0]  # two rows overlapped in time


def test_job_index_selects_one_job_and_worker_argv() -> None:
    argv = ["run", "--smoke", "--rows", "a", "b", "--jobs", "2", "--out", "x", "--devices", "0", "1"]
    argv += ["--protocol=paper", "--list", "--hub-commit", "t=c", "--trainer.devices", "2", "--trainer.strategy=ddp"]
    args = parse_args(argv)
    worker = parse_args(worker_argv(args, 3))  # the same selection and options, one job, no parallelism
    assert (worker.job_index, worker.jobs, worker.devices, worker.list) == (3, None, None, False)
    same = {k: v for k, v in vars(args).items() if k not in ("job_index", "jobs", "devices", "list")}
    assert {k: v for k, v in vars(worker).items() if k in same} == same
    assert worker.trainer_overrides == {"trainer.devices": 2, "trainer.strategy": "ddp"}
    assert trainer_overrides(["--trainer.devices", "4", "--trainer.strategy=ddp"]) == {
        "trainer.devices": 4,
        "trainer.strategy": "ddp",
    }
    with pytest.raises(SystemExit, match="unknown argument '--epochs'"):
        trainer_overrides(["--epochs", "3"])
    with pytest.raises(SystemExit, match="--job-index 99"):
        main(["run", "--smoke", "--job-index", "99", "--list"])


def test_a_failed_workers_output_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two worker processes at once (a thread pool of two slots); a worker that writes no result fails its job,
    and what it printed is shown."""
    import sys

    jobs = select_jobs(TABLE, "smoke", ["eurosat_knn", "whurs19_knn"])
    done = {"row": "eurosat_knn", "backbone": "tiny", "kind": "smoke", "status": "ok", "metric": "m", "value": 1.0,
            "wall_time_s": 1.0}  # fmt: skip
    programs = {  # stand-ins of `smarties bench run --job-index K`: one writes its result, one fails
        "eurosat_knn": f"import json, sys; json.dump({done!r}, open(sys.argv[1], 'w'))",
        "whurs19_knn": "import sys; print('CUDA error: out of memory'); sys.exit(3)",
    }

    def command(job: Job) -> list[str]:
        path = run.result_path(tmp_path, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-c", programs[job.row.id], str(path)]

    results = run.run_parallel(jobs, command, [None, None], tmp_path)
    assert [r["status"] for r in results] == ["ok", "failed"]
    assert results[1]["reason"] == f"worker produced no result (log: {tmp_path / 'smoke/logs/whurs19_knn__tiny.log'})"
    printed = capsys.readouterr().out
    assert "whurs19_knn__tiny: the worker exited with 3 without a result" in printed
    assert "CUDA error: out of memory" in printed  # the worker's own words


def test_an_interrupt_stops_the_running_workers_and_starts_no_other(tmp_path: Path) -> None:
    """Ctrl-C sent to the parent alone: the running workers get it too, the third row never starts, nothing hangs."""
    import os
    import signal
    import sys
    import threading
    import time

    jobs = select_jobs(TABLE, "smoke", ["eurosat_knn", "whurs19_knn", "ucmerced_knn"])
    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"

    def command(job: Job) -> list[str]:
        return [sys.executable, "-c", sleeper, str(tmp_path / f"{job.row.id}.pid")]

    def interrupt_when_both_run() -> None:
        while len(list(tmp_path.glob("*.pid"))) < 2 or any(not p.read_text() for p in tmp_path.glob("*.pid")):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_both_run, daemon=True).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run.run_parallel(jobs, command, [None, None], tmp_path, grace=10.0)
    assert time.monotonic() - start < 60
    pids = {p.stem: int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert sorted(pids) == ["eurosat_knn", "whurs19_knn"]  # the third row was never started
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped and reaped
    assert not list((tmp_path / "smoke").glob("results/*.json"))  # interrupted rows leave no result


def test_trainer_options_reach_the_row_config(tmp_path: Path) -> None:
    """`--trainer.devices N --trainer.strategy ddp` (a DDP row) lands in the config the row runs."""
    data, weights = _real_setup(tmp_path)
    (job,) = select_jobs(TABLE, "real", ["eurosat_linprobe"], ["vitb"])
    overrides = {"trainer.devices": 4, "trainer.strategy": "ddp"}
    executor = _fake({"eurosat_linprobe": 0.9})
    (result,) = _run([job], tmp_path / "o", data, weights, executor=executor, trainer_overrides=overrides)
    assert result["config"]["trainer"]["devices"] == 4 and result["config"]["trainer"]["strategy"] == "ddp"


def test_results_of_several_folders_merge(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A SLURM array writes one folder per task (or node); `report --out A B` merges them, newest result wins."""
    data, weights = _real_setup(tmp_path)
    values = {"eurosat_linprobe": 0.98, "eurosat_knn": 0.9}
    for i, row in enumerate(["eurosat_linprobe", "eurosat_knn"]):
        (job,) = select_jobs(TABLE, "real", [row], ["vitb"])
        _run([job], tmp_path / f"task{i}", data, weights, executor=_fake(values))
    (again,) = select_jobs(TABLE, "real", ["eurosat_knn"], ["vitb"])  # re-run later elsewhere
    _run([again], tmp_path / "task2", data, weights, executor=_fake({"eurosat_knn": 0.95}))
    merged = run.load_results([tmp_path / f"task{i}" for i in range(3)], "real")
    assert {(r["row"], r["value"]) for r in merged} == {("eurosat_linprobe", 98.0), ("eurosat_knn", 95.0)}
    capsys.readouterr()
    outs = [str(tmp_path / f"task{i}") for i in range(3)]
    assert main(["report", "--out", *outs, "--report-dir", str(tmp_path / "rep")]) == 0
    markdown = capsys.readouterr().out
    assert "| eurosat_linprobe | vitb |" in markdown
    assert "| eurosat_knn | vitb | knn | top-1 accuracy (%) | 95.00" in markdown


def test_vitl_rows_use_the_vitl_scripts_evaluation_period(tmp_path: Path) -> None:
    """The maximum is over periodic evaluations, so their period follows each backbone's own script."""
    periods = {}
    for bb in ("vitb", "vitl"):
        (job,) = select_jobs(TABLE, "real", ["bigearthnet_s2_finetune"], [bb])
        config = build_row_config(job, TABLE, tmp_path, tmp_path).config
        periods[bb] = config["trainer"]["check_val_every_n_epoch"]
    assert periods == {"vitb": 20, "vitl": 25}


def test_table_and_configs_come_from_an_installed_copy_of_the_package(tmp_path: Path) -> None:
    """A copy of the package outside the checkout (as a non-editable install is), run from another folder, finds
    its table and every row's config inside itself and records configs without an install path."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "smarties_terratorch", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import smarties_terratorch as p, smarties_terratorch.bench.table as b\n"
        "t = b.load_table()\n"
        "rows = [t.config_file(r) for r in t.rows + t.real_data_rows]\n"
        "print(p.__file__, b.DEFAULT_TABLE, all(r.is_relative_to(b.PACKAGE) for r in rows), "
        "sorted({b.config_label(r).split('/')[0] for r in rows}))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    module, table, inside, labels = proc.stdout.split(" ", 3)
    assert module.startswith(str(site)) and table.startswith(str(site)) and inside == "True"
    assert labels.strip() == "['configs']"


def test_a_table_of_your_own_resolves_configs_beside_it(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("x: 1\n")
    table = dataclasses.replace(TABLE, path=tmp_path / "table.yaml")
    row = ROWS["eurosat_knn"]
    assert table.config_file(dataclasses.replace(row, config="mine.yaml")) == tmp_path / "mine.yaml"
    assert table.config_file(row).is_relative_to(PACKAGE)
    with pytest.raises(FileNotFoundError, match="nope.yaml.*row eurosat_knn.*tried"):
        table.config_file(dataclasses.replace(row, config="nope.yaml"))


def test_data_provenance_reads_the_lock_file(tmp_path: Path) -> None:
    from smarties_terratorch.download import LOCK_NAME

    assert run.data_provenance(tmp_path, ["EuroSAT/EuroSAT_MS"])["lock"] is None
    files = {
        "downloads/EuroSAT_MS.zip": {"url": "u1", "sha256": "a" * 64, "extracted_to": "EuroSAT/EuroSAT_MS"},
        "eval_splits/EuroSAT-train.txt": {"url": "u2", "sha256": "b" * 64},
        "eval_splits/RESISC45-train.txt": {"url": "u3", "sha256": "c" * 64},
        "DFC2020/DFC_preprocessed.pt": {"url": "u4", "sha256": "d" * 64, "commit": "e" * 40},
    }
    (tmp_path / LOCK_NAME).write_text(json.dumps({"format": 1, "files": files}))
    found = run.data_provenance(tmp_path, ["EuroSAT/EuroSAT_MS", "eval_splits/EuroSAT-train.txt",
                                             "DFC2020/DFC_preprocessed.pt"])["files"]  # fmt: skip
    assert sorted(found) == ["DFC2020/DFC_preprocessed.pt", "downloads/EuroSAT_MS.zip", "eval_splits/EuroSAT-train.txt"]
    assert found["DFC2020/DFC_preprocessed.pt"] == {"url": "u4", "sha256": "d" * 64, "commit": "e" * 40}


def test_hub_weights_that_cannot_be_fetched_skip_the_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    jobs = select_jobs(TABLE, "real", ["eurosat_knn"], ["vitb"])
    result = _run(jobs, tmp_path / "out", tmp_path / "data", HUB, executor=_fake({}))[0]
    assert result["status"] == "skipped"
    assert "smarties-v1-vitb.safetensors from the Hugging Face Hub" in result["reason"]
    assert "gsumbul/SMARTIES-v1-ViT-B" in result["reason"] and "HF_HUB_OFFLINE" in result["reason"]


def test_parallel_workers_fetch_the_commit_the_parent_resolved(tmp_path: Path) -> None:
    from smarties_terratorch.hub import HubFile

    calls = []

    def fake_fetch(tag: str, revision: str | None = None) -> HubFile:
        calls.append((tag, revision))
        return HubFile("gsumbul/x", revision or "c" * 40, revision is not None, "s" * 64, Path("/cache/x"))

    jobs = select_jobs(TABLE, "real", ["eurosat_knn", "eurosat_linprobe"], ["vitb"])
    parent = BenchRun(TABLE, tmp_path, weights=HUB, fetch_hub=fake_fetch)
    commits = parent.resolve_hub(jobs)
    assert commits == {"smarties-v1-vitb": "c" * 40} and parent.resolve_hub(jobs) == commits  # fetched once
    args = parse_args(["run", "--weights", "hub", "--hub-commit", f"smarties-v1-vitb={'c' * 40}"])
    assert parse_args(worker_argv(args, 0)).hub_commit == [f"smarties-v1-vitb={'c' * 40}"]  # passed on
    worker = BenchRun(TABLE, tmp_path, weights=HUB, hub_commits=commits, fetch_hub=fake_fetch)  # a worker process
    record = worker.hub_weights("smarties-v1-vitb")
    assert calls == [("smarties-v1-vitb", None), ("smarties-v1-vitb", "c" * 40)]
    assert record["revision"] == "c" * 40 and record["pinned"] is False  # resolved by the parent, not pinned
