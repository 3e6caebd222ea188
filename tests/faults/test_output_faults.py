"""Fault injection into what runs leave on disk and read back: ``smarties stats --out``, bench result files and
cached features.

An output that is an input is refused before anything is written; a half-written result file or a truncated feature
cache is named in one line (with the file to delete) or discarded and recomputed, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from smarties_terratorch import cli


def _tif(path: Path) -> Path:
    data = np.random.default_rng(0).integers(1, 1000, size=(2, 8, 8)).astype("uint16")
    profile = {"driver": "GTiff", "height": 8, "width": 8, "count": 2, "dtype": "uint16", "crs": "EPSG:32631",
               "transform": from_origin(500000, 5000000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("how", ["same path", "hard link", "symlink"])
def test_stats_out_that_is_an_input_is_refused(tmp_path: Path, frozen, capsys, how: str) -> None:
    scene = _tif(tmp_path / "scene.tif")
    out = {"same path": scene, "hard link": tmp_path / "link.tif", "symlink": tmp_path / "sym.tif"}[how]
    if how == "hard link":
        os.link(scene, out)
    elif how == "symlink":
        out.symlink_to(scene)
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
