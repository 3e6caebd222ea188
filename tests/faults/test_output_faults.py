"""Fault injection into what runs leave on disk and read back: ``smarties stats --out``, bench result files and
cached features.

An output that is an input is refused before anything is written; a half-written result file or a truncated feature
cache is named in one line (with the file to delete) or discarded and recomputed, saying so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

from smarties_terratorch import cli

from .conftest import ALIASES, alias_of


def _tif(path: Path) -> Path:
    data = np.random.default_rng(0).integers(1, 1000, size=(2, 8, 8)).astype("uint16")
    profile = {"driver": "GTiff", "height": 8, "width": 8, "count": 2, "dtype": "uint16", "crs": "EPSG:32631",
               "transform": from_origin(500000, 5000000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("how", ALIASES)
def test_stats_out_that_is_an_input_is_refused(tmp_path: Path, frozen, capsys, how: str) -> None:
    scene = _tif(tmp_path / "scene.tif")
    out = alias_of(scene, how, tmp_path)
    with frozen(tmp_path):
        code = cli.main(["stats", str(scene), "--bands", "B04", "B08", "--out", str(out), "--overwrite"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"The output {out} is an input of this run ({scene})" in err and len(err.strip().splitlines()) == 1
    with rasterio.open(scene) as src:  # still the GeoTIFF it was
        assert src.count == 2


def test_stats_existing_out_needs_overwrite(tmp_path: Path, frozen, capsys) -> None:
    scene = _tif(tmp_path / "scene.tif")
    out = tmp_path / "stats.yaml"
    out.write_text("# hand-edited statistics\n")
    argv = ["stats", str(scene), "--bands", "B04", "B08", "--out", str(out)]
    with frozen(tmp_path):
        assert cli.main(argv) == 2
    assert f"{out} exists; pass --overwrite" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0
    assert "mean:" in out.read_text() and not list(tmp_path.glob(".stats.yaml.*"))  # replaced, no leftovers


# ------------------------------------------------------------------------------------------------ bench results
_KEY = "eurosat_knn__vitb"


def _half_written(out: Path) -> Path:
    path = out / "real" / "results" / f"{_KEY}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"row": "eurosat_knn", "backbone": "vitb", "status": "ok", "value": 9')  # cut short
    return path


def test_bench_report_names_a_half_written_result(tmp_path: Path) -> None:
    from smarties_terratorch.bench.run import load_results, read_result

    out = tmp_path / "out"
    path = _half_written(out)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r" is a damaged result file .*delete it"):
        read_result(path)
    (result,) = load_results(out, "real")
    assert result["status"] == "failed" and result["reason"].startswith(f"{path} is a damaged result file")


def test_bench_run_recomputes_a_half_written_result(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    path = _half_written(out)
    weights = tmp_path / "weights"
    weights.mkdir()  # no weights file in it: the row is recomputed and fails fast, before any training
    code = cli.main(["bench", "run", "--rows", "eurosat_knn", "--backbone", "vitb", "--weights", str(weights),
                     "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert f"{path} is a damaged result file" in printed and "Recomputing it now." in printed
    assert code == 0  # a row skipped for missing weights is not a failure
    assert json.loads(path.read_text())["status"] == "skipped"  # the recomputed row, a whole file again


# ------------------------------------------------------------------------------------------------ feature cache
def test_truncated_feature_cache_is_discarded_and_recomputed(tmp_path: Path, caplog) -> None:
    from terratorch.cli_tools import build_lightning_cli

    from smarties_terratorch.bench.config import build_row_config
    from smarties_terratorch.bench.table import Job, load_table
    from smarties_terratorch.tasks.cached import prepare_cached_features
    from smarties_terratorch.testing import make_fixture

    table = load_table()
    row = next(r for r in table.rows if r.id == "eurosat_knn")
    root = tmp_path / "eurosat"
    make_fixture("eurosat", root)
    prepared = build_row_config(Job(row, "tiny", "smoke"), table, tmp_path / "run", fixtures=lambda n: root)
    config = tmp_path / "knn.yaml"
    config.write_text(yaml.safe_dump(prepared.config))
    run = build_lightning_cli(["-c", str(config)], run=False)
    folder = tmp_path / "cache"

    def encode() -> tuple[dict, dict]:
        dm, record = prepare_cached_features(run.model, run.datamodule, folder, None, {}, splits=("train",))
        return dm.datasets["train"].features, record["train"]

    first, record = encode()
    cached = Path(record["file"])
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])  # a run killed while another process wrote it, a full disk, ...
    with caplog.at_level("WARNING", logger="smarties_terratorch.tasks.cached"):
        again, record = encode()
    assert f"Feature cache {cached} is damaged" in caplog.text and "encoding the split again" in caplog.text
    assert not record["reused"] and torch.equal(again, first)
    assert cached.read_bytes() == data  # replaced by a whole file
    assert encode()[1]["reused"]
