"""Planning the paper-table run: sizes, rows per dataset, --dry-run, --list, peers, and the docs that state them."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from smarties_terratorch.bench.cli import main as bench_main
from smarties_terratorch.bench.report import render_report, standing_section
from smarties_terratorch.bench.table import load_table
from smarties_terratorch import download as dl
from smarties_terratorch.plan import SPLITS, gpu_hours, load_rows, plan_datasets, row_paths, rows_using

DOCS = Path(__file__).parents[1] / "docs"
SOURCES = dl.load_sources()
ROWS = load_rows()


def test_every_fetched_file_is_read_by_a_row() -> None:
    """No automatic download of files that no paper-table row reads (SpaceNet7's official tarballs are gone)."""
    used = rows_using(SOURCES, ROWS)
    for name, entry in SOURCES["datasets"].items():
        if entry.get("files"):
            assert used[name], f"{name} is downloaded but no row reads it"
    assert SOURCES["datasets"]["spacenet7"]["files"] == []
    assert used["spacenet7"] == ["spacenet7_upernet"]
    assert sorted(used["bigearthnet-s1"]) == ["bigearthnet_mm_linprobe", "bigearthnet_s1_linprobe"]
    for row in ROWS:  # and every row's data comes from some dataset entry
        if row_paths(row):
            assert any(row["id"] in ids for ids in used.values()), row["id"]


def test_dry_run_prints_the_plan_without_any_request(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("--dry-run made a request")

    monkeypatch.setattr(dl, "_fetch", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)  # nor any other connection
    root = tmp_path / "data"
    assert dl.main(["download", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert not root.exists()  # nothing written
    eurosat = next(line for line in out.splitlines() if line.startswith("EuroSAT_MS"))
    assert "2.07 GB" in eurosat and "to download" in eurosat and "eurosat_knn" in eurosat
    sn7 = next(line for line in out.splitlines() if line.startswith("SpaceNet7"))
    assert "manual step" in sn7 and "SN7_buildings" not in out
    assert "17 split lists" in out
    # a dataset in place is reported present
    (root / "WHU-RS19").mkdir(parents=True)
    assert dl.main(["download", "whu-rs19", "--dry-run", "--root", str(root)]) == 0
    assert "present" in capsys.readouterr().out


def test_sizes_table_in_the_data_guide_matches_the_sources() -> None:
    """docs/data.md's sizes table says what sources.yaml and the paper table say (sizes, rows per dataset)."""
    text = (DOCS / "data.md").read_text()
    section = text.split("## Planning: sizes", 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"^\| `([\w-]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    documented = {m[0]: m[1:] for m in cells}
    plans = plan_datasets(dl.resolve_names([], SOURCES), "/nonexistent", SOURCES, ROWS)
    assert set(documented) == {p.name for p in plans}
    for p in plans:
        download, extracted, rows = (cell.strip() for cell in documented[p.name])
        if not p.files:
            assert download == "manual", p.name
        elif p.download_bytes is None:
            assert download == "unknown", p.name
        else:
            assert download.startswith(f"{p.download_bytes:,} B"), p.name
        assert extracted == ("unknown" if p.extracted_bytes is None else f"{p.extracted_bytes / 1e9:.2f} GB")
        assert re.findall(r"`(\w+)`", rows) == list(p.rows), p.name


def test_downloadable_files_in_the_docs_match_the_sources() -> None:
    """docs/data.md's 'What goes where' and split-file lists name exactly the files the shipped table fetches, and
    the paper-table guide tells the same story about the BigEarthNet-S1/MM val lists."""
    text = (DOCS / "data.md").read_text()
    where = text.split("## What goes where", 1)[1].split("\n## ", 1)[0]
    for name, entry in SOURCES["datasets"].items():
        line = next(ln for ln in where.splitlines() if ln.startswith(f"| `{name}` |"))
        fetched = line.split("|")[3]
        names = [Path(spec.get("url", "") or spec.get("hub", {}).get("file", "")).name for spec in entry["files"]]
        names = [n for n in names if n] or []
        if "torchgeo" in str(entry["files"]):
            names = ["NWPU-RESISC45.zip"]  # the file at torchgeo's address
        assert re.findall(r"`([^`]+)`", fetched) == names, name
    splits = text.split("## The authors' split files", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([\w-]+\.txt)`", splits))
    assert set(SOURCES["splits"]["files"]) <= listed
    assert f"All {len(SOURCES['splits']['files'])} are downloaded" in splits
    guide = (DOCS / "guide" / "bench.md").read_text()
    for fname in ("BigEarthNet-S1-val.txt", "BigEarthNet-MM-val.txt"):
        assert fname in SOURCES["splits"]["files"] and fname in guide
    assert "must be supplied" not in guide and "not available to us" not in guide


def test_gpu_hours_basis() -> None:
    row = {"protocol": "finetune", "images": {"train": 1000, "eval": 100}}
    # 10 epochs x 1000 x 3 passes + (10 // 5 + 1) evaluations x 100, at 2787 img/s
    assert gpu_hours(row, "vitb", 10, 5) == pytest.approx((30000 + 300) / 2787 / 3600)
    assert gpu_hours({"protocol": "knn", "images": {"train": 10, "eval": 5}}, "vitl", None, None) == pytest.approx(
        15 / 912.7 / 3600)
    assert gpu_hours({"protocol": "upernet_probe", "images": None}, "vitb", 80, 5) is None


def test_list_shows_data_epochs_and_gpu_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["run", "--list", "--backbone", "vitb"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    by_key = {line.split()[2]: line for line in lines[:-1]}
    assert "150 epochs (eval every 20)" in by_key["eurosat_finetune__vitb"]
    assert "[EuroSAT_MS, split files]" in by_key["eurosat_finetune__vitb"]
    assert re.search(r"GPU \d+\.\d\d h", by_key["eurosat_finetune__vitb"])
    assert "no training" in by_key["eurosat_knn__vitb"]
    assert "GPU unknown" in by_key["spacenet7_upernet__vitb"] and "[SpaceNet7]" in by_key["spacenet7_upernet__vitb"]
    assert lines[-1].startswith("GPU time (estimate, not measured): encoder image passes")


def test_peers_are_cited_data_and_the_report_shows_where_smarties_stands(tmp_path: Path) -> None:
    table = load_table()
    for row in table.rows:
        for peer in row.peers:
            assert peer.model and peer.protocol, row.id
            assert peer.source and isinstance(peer.value, float)
    result = {"kind": "real", "row": "spacenet7_upernet", "backbone": "vitb", "status": "ok", "value": 60.0}
    folder = tmp_path / "real" / "results"
    folder.mkdir(parents=True)
    (folder / "spacenet7_upernet__vitb.json").write_text(json.dumps({**result, "metric": "mIoU (%)",
                                                                      "wall_time_s": 1.0}))
    text = standing_section(table, [result])
    line = next(ln for ln in text.splitlines() if ln.startswith("| spacenet7_upernet | mIoU"))
    # published 62.2; ranked peers: Scale-MAE 62.96 above it, five below -> 2nd of 7
    assert "vitb 62.20" in line and "vitb 60.00" in line and "Scale-MAE 62.96" in line and "2nd of 7" in line
    assert "| dfc2020_probe | CROMA (ViT-B/8) | 66.50 |" in text  # listed, but another protocol: not ranked
    dfc = next(ln for ln in text.splitlines() if ln.startswith("| dfc2020_probe | mIoU"))
    assert "none recorded" in dfc
    assert "Where SMARTIES stands" in render_report(tmp_path, table)[0]


def test_splits_pseudo_dataset_rows() -> None:
    used = rows_using(SOURCES, ROWS)
    assert "eurosat_knn" in used[SPLITS] and "burnscars_upernet" not in used[SPLITS]
