"""Fault injection into the data side: data modules, data sets, the raster reader and the normaliser builder.

Each case feeds one hostile or bad input and asserts the exception type, that the message names the offending file
or value, and that every input (and earlier output) is byte-identical afterwards.
"""

from __future__ import annotations

import base64
import collections
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import http_server
import numpy as np
import pytest
import rasterio
import yaml

from smarties_terratorch import download as dl
from smarties_terratorch import fetch
from smarties_terratorch.datasets.bigearthnet import read_bigearthnet_s2
from smarties_terratorch.datamodules.bigearthnet import BigEarthNetDataModule
from smarties_terratorch.datamodules.burnscars import HLSBurnScarsDataModule
from smarties_terratorch.datamodules.dfc2020 import DFC2020DataModule
from smarties_terratorch.datamodules.dynamicearthnet import DynamicEarthNetDataModule
from smarties_terratorch.datasets.paired import PairedImageDataset
from smarties_terratorch.datasets.pairs import ViewSpec, read_pairs_list
from smarties_terratorch.io import RasterError, RasterReader, read_raster
from smarties_terratorch.testing import make_fixture
from smarties_terratorch.normalization import SmartiesNormalize

from .conftest import write_hostile_checkpoint

GOOD_STATS = {"mean": [0.5] * 6, "std": [0.2] * 6, "p1": [0.0] * 6, "p99": [1.0] * 6}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-fixtures")
    for name in ("burnscars", "bigearthnet", "dynamicearthnet"):
        make_fixture(name, root / name)
    return root


def _copy(fixtures: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixtures / name, tmp_path / name))


def _burnscars(root: Path, **kwargs) -> HLSBurnScarsDataModule:
    return HLSBurnScarsDataModule(str(root), protocol="terratorch", crop_size=None, **kwargs)


def _first_image(root: Path) -> Path:
    return sorted((root / "validation").glob("*_merged.tif"))[0]


# ------------------------------------------------------------------------------------------------ broken rasters
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text("this is not a GeoTIFF"), "is not a readable raster"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "could not be read"),
        (lambda p: p.write_bytes(b""), "is not a readable raster"),
    ],
    ids=["text-file", "truncated", "empty"],
)
def test_broken_image_is_named(fixtures: Path, tmp_path: Path, frozen, damage, message: str) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    image = _first_image(root)
    damage(image)
    dm = _burnscars(root, statistics=GOOD_STATS, scale=1.0)
    with frozen(tmp_path), pytest.raises(RasterError, match=re.escape(str(image)) + ".*" + message):
        dm.load(dm.items("val")[0])


def test_truncated_bigearthnet_band_is_named(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "bigearthnet", tmp_path)
    patch = next(p for p in sorted((root / "BigEarthNet-v1.0").iterdir()) if p.is_dir())
    band = patch / f"{patch.name}_B05.tif"
    band.write_bytes(band.read_bytes()[:300])
    with frozen(tmp_path), pytest.raises(RasterError, match=re.escape(str(band))):
        read_bigearthnet_s2(patch)


def test_wrong_band_count_vs_bands(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    five = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1"]
    dm = _burnscars(root, bands=five, statistics={k: v[:5] for k, v in GOOD_STATS.items()}, scale=1.0)
    image = dm.items("val")[0][0]
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(image)) + r": 6 bands in the file but 5"):
        dm.datasets.setdefault("val", dm.build_dataset("val"))[0]


def test_label_with_out_of_range_values(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "burnscars", tmp_path)
    mask = sorted((root / "validation").glob("*.mask.tif"))[0]
    with rasterio.open(mask, "r+") as dst:
        data = dst.read()
        data[0, 3, 3] = 7
        dst.write(data)
    dm = _burnscars(root, statistics=GOOD_STATS, scale=1.0)
    image_name = mask.name.replace(".mask.tif", "_merged.tif")
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(image_name) + r": mask values \[7\]"):
        dm.build_dataset("val")[0]


def test_dynamicearthnet_label_with_wrong_band_count(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "dynamicearthnet", tmp_path)
    dm = DynamicEarthNetDataModule(str(root), statistics="compute", stats_samples=1, crop_size=None)
    label = dm.items("train")[0][1]
    with rasterio.open(label) as src:
        profile, first = src.profile, src.read(1)
    profile.update(count=1)
    with rasterio.open(label, "w", **profile) as dst:
        dst.write(first[None])
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(label)) + r": 1 bands; .*7 one-hot"):
        dm.load(dm.items("train")[0])


# ------------------------------------------------------------------------------------------------ reader inputs
def test_band_files_not_overlapping(tmp_path: Path, frozen) -> None:
    def write(path: Path, x0: float) -> Path:
        with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="float32", crs="EPSG:32632",
                           transform=rasterio.transform.from_origin(x0, 5e6, 10, 10)) as dst:  # fmt: skip
            dst.write(np.ones((1, 4, 4), np.float32))
        return path

    here, far = write(tmp_path / "B02.tif", 5e5), write(tmp_path / "B03.tif", 6e5)
    with frozen(tmp_path), pytest.raises(RasterError, match=rf"{re.escape(str(far))} does not overlap .*B02\.tif"):
        read_raster([here, far])


def test_band_index_out_of_range(fixtures: Path, frozen) -> None:
    image = _first_image(fixtures / "burnscars")
    with frozen(image), pytest.raises(RasterError, match=re.escape(str(image)) + r" has 6 band\(s\).*\[7\]"):
        RasterReader(image, indexes=[1, 7])


def test_missing_raster_is_named(tmp_path: Path, frozen) -> None:
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.tif"))):
        read_raster(tmp_path / "nope.tif")


# ------------------------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize(
    "content, error, message",
    [
        (yaml.safe_dump({k: v[:5] for k, v in GOOD_STATS.items()}), ValueError, r"has 5 values per statistic .* 6"),
        ("mean: [0.5, 0.5\nstd: {", ValueError, "is not valid JSON/YAML"),
        (yaml.safe_dump({"mean": [0.5] * 6, "std": [0.2] * 6}), ValueError, "lacks p1, p99"),
        ("- 1\n- 2\n", ValueError, "must hold a mapping"),
        (yaml.safe_dump({**GOOD_STATS, "p99": [0.0] * 6}), ValueError, "p99 must be > p1"),
    ],
    ids=["wrong-channel-count", "malformed-yaml", "missing-keys", "not-a-mapping", "p99-below-p1"],
)
def test_bad_statistics_file(fixtures: Path, tmp_path: Path, frozen, content: str, error: type, message: str) -> None:
    stats = tmp_path / "stats.yaml"
    stats.write_text(content)
    dm = _burnscars(fixtures / "burnscars", statistics=str(stats), scale=1.0)
    pattern = r"HLSBurnScarsDataModule: statistics file " + re.escape(str(stats)) + ".*" + message
    with frozen(tmp_path), pytest.raises(error, match=pattern):
        dm.normalizer()


def test_corrupt_statistics_cache_is_reported_not_overwritten(fixtures: Path, tmp_path: Path, frozen) -> None:
    cache = tmp_path / "cache.yaml"
    cache.write_text("mean: [oops")
    dm = _burnscars(fixtures / "burnscars", statistics="compute", statistics_file=str(cache), scale=1.0)
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(cache)) + " is not valid JSON/YAML"):
        dm.normalizer()


def test_unknown_statistics_table_is_named(fixtures: Path, frozen) -> None:
    dm = _burnscars(fixtures / "burnscars", statistics="S2-L3Z")
    with frozen(fixtures / "burnscars"), pytest.raises(ValueError, match=r"HLSBurnScarsDataModule: .*'S2-L3Z'"):
        dm.normalizer()


def test_view_statistics_file_with_wrong_channel_count(tmp_path: Path, frozen) -> None:
    stats = tmp_path / "l8.json"
    stats.write_text('{"mean": [0.5, 0.5], "std": [0.2, 0.2], "p1": [0, 0], "p99": [1, 1]}')
    view = ViewSpec(bands=["L8:B4", "L8:B3", "L8:B2"], statistics=str(stats))
    with frozen(tmp_path), pytest.raises(ValueError, match=r"View \['L8:B4'.*" + re.escape(str(stats)) + ".*2 values"):
        view.normalizer()


def test_from_spec_rejects_other_types(frozen, tmp_path: Path) -> None:
    with frozen(tmp_path), pytest.raises(TypeError, match="got list"):
        SmartiesNormalize.from_spec([0.5, 0.2, 0.0, 1.0])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ split files
def test_pairs_list_naming_missing_files(tmp_path: Path, frozen) -> None:
    listing = tmp_path / "pairs.txt"
    listing.write_text("a.tif b.tif\n\n# comment\nc.tif\n")
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=r"line 1: .*a\.tif\n.*line 1: .*b\.tif\n.*line 4"):
        read_pairs_list(listing)


def test_bigearthnet_split_naming_a_missing_patch(fixtures: Path, tmp_path: Path, frozen) -> None:
    split = tmp_path / "split.txt"
    split.write_text("S2A_MSIL2A_20170613T101031_99_99\n")
    s2_root = fixtures / "bigearthnet" / "BigEarthNet-v1.0"
    dm = BigEarthNetDataModule(str(s2_root), train_split=str(split))
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match="'S2A_MSIL2A_20170613T101031_99_99' not found"):
        dm.split_samples("train")


def test_dynamicearthnet_split_naming_a_missing_file(fixtures: Path, tmp_path: Path, frozen) -> None:
    root = _copy(fixtures, "dynamicearthnet", tmp_path)
    split = root / "dynnet_training_splits" / "train.txt"
    planet, label, month = split.read_text().splitlines()[0].split()
    split.write_text(f"{planet} {label.replace('.tif', '_gone.tif')} {month}\n")
    dm = DynamicEarthNetDataModule(str(root), crop_size=None)
    with frozen(tmp_path), pytest.raises(FileNotFoundError, match=re.escape(str(split)) + r".*_gone\.tif"):
        dm.items("train")


def test_non_overlapping_pair(tmp_path: Path, frozen) -> None:
    from data.paired.data import make  # the paired fixture, with an S1 image 100 km away

    pairs = make(tmp_path / "paired")
    far = pairs.parent / "far.txt"
    far.write_text("s2/pair_0.tif far/far.tif\n")
    source = {"list": str(far), "first": {"bands": ["S2-L2A:B02", "S2-L2A:B03", "S2-L2A:B04", "S2-L2A:B08"],
              "statistics": "S2-L2A"}, "second": {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"}}  # fmt: skip
    with frozen(tmp_path), pytest.raises(ValueError, match=r"pair_0\.tif and .*far\.tif do not overlap"):
        PairedImageDataset([source], img_size=32)


# ------------------------------------------------------------------------------------------------ pickles
def test_dfc2020_pickle_is_refused_and_never_run(tmp_path: Path, frozen) -> None:
    marker = tmp_path / "PWNED"
    path = write_hostile_checkpoint(tmp_path / "DFC_preprocessed.pt", marker)
    dm = DFC2020DataModule(str(path))
    pattern = re.escape(str(path)) + r" holds pickled Python objects"
    with frozen(tmp_path), pytest.raises(ValueError, match=pattern) as err:
        dm.setup("fit")
    assert "trust_pickle" in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()


def test_dfc2020_truncated_file(tmp_path: Path, frozen) -> None:
    path = make_fixture("dfc2020", tmp_path / "dfc")
    path.write_bytes(path.read_bytes()[:1000])
    with frozen(tmp_path), pytest.raises(ValueError, match=re.escape(str(path)) + " is not a readable PyTorch file"):
        DFC2020DataModule(str(path)).setup("fit")


# ------------------------------------------------------------------------------------------------ downloads
# `smarties data download` against the loopback server (tests/http_server.py) playing a mirror with crafted answers.
# A tiny sources table: a plain binary file (no published checksum: first use), a zip with a published sha256, a
# tar.gz with a published md5 and size, and two split lists (a sha256 and a git blob id).

PT_URL = "https://data.example.org/files/file.pt"
ZIP_URL = "https://data.example.org/files/zset.zip"
TGZ_URL = "https://data.example.org/files/tset.tar.gz"
SPLIT_URL = "https://raw.example.org/c0ffee/{name}"


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


PT = bytes(range(256)) * 40  # 10 KiB of binary
ZIP = _zip({"Zset/a/1.txt": b"one" * 100, "Zset/b/2.txt": b"two"})
TGZ = _targz({"train/x.txt": bytes(range(256)) * 30, "val/y.txt": b"y"})
SPLITS = {"a.txt": b"./a/1.txt\n", "b.txt": b"./b/2.txt\n"}


def _sources() -> dict:
    return {
        "splits": {"url": SPLIT_URL.replace("c0ffee", "{commit}"), "commit": "c0ffee", "folder": "eval_splits",
                   "files": {"a.txt": {"sha256": hashlib.sha256(SPLITS["a.txt"]).hexdigest()},
                             "b.txt": {"git_blob": _blob(SPLITS["b.txt"])}}},
        "datasets": {
            "pt": {"title": "PT", "files": [{"url": PT_URL, "save_as": "PT/file.pt"}], "expect": ["PT/file.pt"]},
            "zset": {"title": "Zset", "splits": ["a.txt", "b.txt"], "expect": ["Zset/a"],
                     "files": [{"url": ZIP_URL, "sha256": hashlib.sha256(ZIP).hexdigest(),
                                "extract": {"member": "Zset", "into": "Zset"}}]},
            "tset": {"title": "Tset", "expect": ["tset/train"],
                     "files": [{"url": TGZ_URL, "md5": hashlib.md5(TGZ).hexdigest(), "bytes": len(TGZ),
                                "extract": {"into": "tset"}}]},
        },
    }


@pytest.fixture
def mirror() -> object:
    files = {_path(PT_URL): PT, _path(ZIP_URL): ZIP, _path(TGZ_URL): TGZ}
    files.update({_path(SPLIT_URL.format(name=n)): b for n, b in SPLITS.items()})
    srv = http_server.Server(files)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _fast_retries(fast_fetch: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)


def _download(capsys: pytest.CaptureFixture[str], root: Path, *args: str, sources: dict | None = None,
              mirror: object = None) -> tuple[int, str, str]:
    """``smarties data download ARGS --root ROOT [--mirror URL]``: (exit code, stdout, stderr)."""

    extra = ["--mirror", mirror.url] if mirror is not None else []
    code = dl.main(["download", *args, "--root", str(root), *extra], sources=sources or _sources())
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _failed_line(out: str, name: str) -> str:
    """The summary line of a failed dataset (one line: the reason and the fix)."""
    lines = [line for line in out.splitlines() if line.startswith(f"  failed {name}: ")]
    assert len(lines) == 1, out
    return lines[0]


def _lock_files(root: Path) -> dict:
    path = root / dl.LOCK_NAME
    return json.loads(path.read_text())["files"] if path.exists() else {}


# ---- item 2: writes stay inside --root
def test_download_part_symlink_is_not_followed(tmp_path: Path, mirror, capsys, frozen) -> None:
    root, outside = tmp_path / "data", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.bin"
    victim.write_bytes(b"precious")
    (root / "PT").mkdir(parents=True)
    (root / "PT" / ".file.pt.part").symlink_to(victim)  # planted in a shared root
    with frozen(outside):
        code, out, _ = _download(capsys, root, "pt", mirror=mirror)
    assert code == 1 and "is a symbolic link; refusing to write through it" in _failed_line(out, "pt")
    assert not (root / "PT" / "file.pt").exists() and _lock_files(root) == {}


@pytest.mark.parametrize("link", ["Zset", "Zset/a", "downloads", "eval_splits"])
def test_download_symlinked_folder_is_not_followed(tmp_path: Path, mirror, capsys, frozen, link: str) -> None:
    root, outside = tmp_path / "data", tmp_path / "outside"
    (outside / "a").mkdir(parents=True)
    (outside / "a" / "mine.txt").write_text("mine")
    planted = root / link
    planted.parent.mkdir(parents=True, exist_ok=True)
    if link == "Zset/a":  # an existing dataset folder with a link inside, where the archive's a/ merges
        planted.symlink_to(outside / "a")
    else:
        planted.symlink_to(outside)
    sources = _sources()
    sources["datasets"]["zset"]["expect"] = ["Zset/a", "Zset/b"]  # not complete: the run extracts into Zset
    with frozen(outside):
        code, out, _ = _download(capsys, root, "zset", sources=sources, mirror=mirror)
    assert code == 1 and f"{planted} is a symbolic link" in out


@pytest.mark.parametrize(
    "where, value",
    [("save_as", "../evil.pt"), ("save_as", "/tmp/smarties-evil.pt"), ("into", "../evil"), ("into", "a/../../evil"),
     ("folder", "../splits"), ("folder", "/tmp/smarties-evil-splits")],
)
def test_download_paths_of_a_sources_table_stay_inside_root(tmp_path: Path, mirror, capsys, frozen,
                                                            where: str, value: str) -> None:
    sources = _sources()
    if where == "save_as":
        sources["datasets"]["pt"]["files"][0]["save_as"] = value
        names = ["pt"]
    elif where == "into":
        sources["datasets"]["tset"]["files"][0]["extract"]["into"] = value
        names = ["tset"]
    else:
        sources["splits"]["folder"] = value
        names = ["splits"]
    root = tmp_path / "data"
    with frozen(tmp_path / "outside"):
        code, out, _ = _download(capsys, root, *names, sources=sources, mirror=mirror)
    assert code == 1 and f"{value!r} in the sources table: must be a path relative to the data root" in out
    assert not (tmp_path / "evil.pt").exists() and not (tmp_path / "evil").exists()
    assert not Path("/tmp/smarties-evil.pt").exists() and not Path("/tmp/smarties-evil-splits").exists()
    assert mirror.requests == []


# ---- item 3: one run at a time per root
def _start(root: Path, names: list[str], mirror, lines: list[str]) -> tuple[threading.Thread, dict]:
    """``download(names)`` in a thread; its statuses land in the returned dict under ``"statuses"``."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("statuses", dl.download(
        names, root, mirror=mirror.url, sources=_sources(), log=lines.append)))
    thread.start()
    return thread, result


def _wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("second", ["pt", "tset"], ids=["same-dataset", "other-dataset"])
def test_download_two_runs_on_one_root_take_turns(tmp_path: Path, mirror, second: str) -> None:
    root = tmp_path / "data"
    stall = threading.Event()
    mirror.cut[_path(PT_URL)] = (3000, stall)  # the first run stalls mid-file
    first_log: list[str] = []
    second_log: list[str] = []
    first, first_result = _start(root, ["pt"], mirror, first_log)
    _wait_for(lambda: mirror.sent.get(_path(PT_URL)) == 3000)
    second_run, second_result = _start(root, [second], mirror, second_log)
    _wait_for(lambda: any("waiting for another" in line for line in second_log))
    assert len(mirror.requests) == 1  # the second run asked for nothing while the first one ran
    stall.set()
    first.join(30)
    second_run.join(30)
    assert [s.state for s in first_result["statuses"]] == ["downloaded"]
    assert [s.state for s in second_result["statuses"]] == ["up to date" if second == "pt" else "downloaded"]
    assert (root / "PT" / "file.pt").read_bytes() == PT  # not 2 appended copies
    assert set(_lock_files(root)) == {"PT/file.pt"} | ({"downloads/tset.tar.gz"} if second == "tset" else set())


# ---- item 4: no silently accepted bytes
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
@pytest.mark.parametrize("name, path", [("pt", _path(PT_URL)), ("splits", _path(SPLIT_URL.format(name="b.txt")))])
def test_download_html_answer_is_refused(tmp_path: Path, mirror, capsys, name: str, path: str,
                                         content_type: str) -> None:
    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    mirror.always[path] = {"body": page, "headers": {"Content-Type": content_type}}
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, name, mirror=mirror)
    assert code == 1 and "HTML page" in _failed_line(out, name)
    rel = "PT/file.pt" if name == "pt" else "eval_splits/b.txt"
    assert not (root / rel).exists() and rel not in _lock_files(root)
    assert not [p for p in root.rglob(".*.part")]


def _interrupt(root: Path, mirror, capsys, monkeypatch, sent: int = 3072) -> Path:
    monkeypatch.setattr(fetch, "RETRIES", 0)
    mirror.cut[_path(PT_URL)] = (sent, None)
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 1
    monkeypatch.setattr(fetch, "RETRIES", 3)
    part = root / "PT" / ".file.pt.part"
    assert part.stat().st_size == sent
    return part


def test_download_part_of_an_older_file_is_not_resumed(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    root = tmp_path / "data"
    _interrupt(root, mirror, capsys, monkeypatch)
    newer = PT[::-1] + b"v2"
    mirror.files[_path(PT_URL)] = newer  # the source changed between the runs: another ETag
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    assert mirror.gets(_path(PT_URL)) == [None, "bytes=3072-"]  # asked with If-Range, answered with the whole file
    assert (root / "PT" / "file.pt").read_bytes() == newer


@pytest.mark.parametrize("newer", [PT[:2000], PT + PT], ids=["shorter", "longer"])
def test_download_server_ignoring_if_range_cannot_mix_versions(tmp_path: Path, mirror, capsys, monkeypatch,
                                                               newer: bytes) -> None:
    root = tmp_path / "data"
    _interrupt(root, mirror, capsys, monkeypatch)
    mirror.files[_path(PT_URL)] = newer
    mirror.always[_path(PT_URL)] = {"if_range": False}  # answers 416 / a range of the new file
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    assert (root / "PT" / "file.pt").read_bytes() == newer


def test_download_overlong_part_is_restarted(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    root = tmp_path / "data"
    part = _interrupt(root, mirror, capsys, monkeypatch)
    part.write_bytes(PT + b"appended by another run")
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    assert mirror.gets(_path(PT_URL))[-1] is None  # no range asked from an over-long part
    assert (root / "PT" / "file.pt").read_bytes() == PT


def test_download_416_for_another_size_is_not_completion(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    root = tmp_path / "data"
    part = _interrupt(root, mirror, capsys, monkeypatch)
    part.write_bytes(PT)  # as long as the file, but the server says otherwise
    mirror.crafted[_path(PT_URL)] = [{"status": 416}]  # no Content-Range: not a proof of completion
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    assert mirror.gets(_path(PT_URL)) == [None, f"bytes={len(PT)}-", None]
    assert (root / "PT" / "file.pt").read_bytes() == PT


def test_download_lying_content_length_is_not_pinned(tmp_path: Path, mirror, capsys) -> None:
    mirror.always[_path(PT_URL)] = {"length": len(PT) + 100}  # announces 100 bytes it never sends
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, "pt", mirror=mirror)
    assert code == 1 and "after 4 attempts" in _failed_line(out, "pt")
    assert not (root / "PT" / "file.pt").exists() and _lock_files(root) == {}


@pytest.mark.parametrize(
    "damage, pattern",
    [({"headers": {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}}, r"md5 \w+, expected 0{32} \(md5 stated by the server"),
     ({"headers": {"X-Linked-Etag": '"' + "0" * 64 + '"'}}, r"sha256 \w+, expected 0{64} \(sha256 stated by the Hub")],
    ids=["content-md5", "x-linked-etag"],
)
def test_download_server_digest_mismatch_is_refused(tmp_path: Path, mirror, capsys, damage: dict,
                                                    pattern: str) -> None:
    mirror.always[_path(PT_URL)] = damage
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, "pt", mirror=mirror)
    assert code == 1 and re.search(pattern, _failed_line(out, "pt"))
    assert not (root / "PT" / "file.pt").exists() and _lock_files(root) == {}


def test_download_server_digests_are_checked_and_recorded(tmp_path: Path, mirror, capsys) -> None:
    md5 = base64.b64encode(hashlib.md5(PT).digest()).decode()
    mirror.always[_path(PT_URL)] = {"headers": {"Content-MD5": md5}}
    root = tmp_path / "data"
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    checked = _lock_files(root)["PT/file.pt"]["checked"]
    assert "md5 stated by the server (Content-MD5)" in checked and "first use: sha256 pinned here" in checked


@pytest.mark.parametrize("target", ["tset", "zset", "splits"])
def test_download_published_checksum_mismatch_is_refused(tmp_path: Path, mirror, capsys, target: str) -> None:
    path = {"tset": _path(TGZ_URL), "zset": _path(ZIP_URL), "splits": _path(SPLIT_URL.format(name="b.txt"))}[target]
    body = mirror.files[path]
    mirror.files[path] = body[:-1] + bytes([body[-1] ^ 1])  # one bit changed, same size
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, target, mirror=mirror)
    what = {"tset": "md5", "zset": "sha256", "splits": "git blob id"}[target]
    assert code == 1 and f"({what} declared in the sources table given)" in out
    assert not list(root.rglob("tset.tar.gz")) and not list(root.rglob("zset.zip"))


def test_download_repinned_file_must_match_its_first_use(tmp_path: Path, mirror, capsys) -> None:
    root = tmp_path / "data"
    assert _download(capsys, root, "pt", mirror=mirror)[0] == 0
    (root / "PT" / "file.pt").unlink()
    mirror.files[_path(PT_URL)] = PT + b"changed"
    code, out, _ = _download(capsys, root, "pt", mirror=mirror)
    assert code == 1 and "recorded in" in _failed_line(out, "pt") and "remove its entry from the lock" in out
    assert not (root / "PT" / "file.pt").exists()


def _child_download(prelude: str, root: Path, mirror, table: Path) -> str:
    """The program of a child process that runs ``smarties data download pt`` after ``prelude`` (limits, user, ...)."""
    return (
        f"import sys\n{prelude}import smarties_terratorch.download as dl\n"
        f"sys.exit(dl.main(['download', 'pt', '--root', {str(root)!r}, '--mirror', {mirror.url!r}, "
        f"'--sources', {str(table)!r}]))"
    )


def test_download_full_disk_is_named_and_resumes(tmp_path: Path, mirror) -> None:
    root = tmp_path / "data"
    table = tmp_path / "sources.yaml"
    table.write_text(yaml.safe_dump(_sources()))
    # a file-size limit: the write crossing 4000 bytes is short, the next one fails (EFBIG), like a disk filling up
    code = _child_download(
        "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "import smarties_terratorch.fetch as fetch; fetch.CHUNK_SIZE = 1024; fetch.BACKOFF = 0\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n",
        root, mirror, table,
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("  failed pt: "))
    assert "disk full: writing" in line and ".file.pt.part" in line and "sha256" not in line
    assert "Traceback" not in proc.stdout + proc.stderr

    assert dl.main(["download", "pt", "--root", str(root), "--mirror", mirror.url], sources=_sources()) == 0
    assert mirror.gets(_path(PT_URL))[-1] == "bytes=4000-"  # resumed from what the full disk kept
    assert (root / "PT" / "file.pt").read_bytes() == PT


def test_download_gzip_content_encoding_keeps_the_stored_bytes(tmp_path: Path, mirror, capsys) -> None:
    mirror.always[_path(TGZ_URL)] = {"headers": {"Content-Encoding": "gzip", "Content-Type": "application/x-tar"}}
    root = tmp_path / "data"
    assert _download(capsys, root, "tset", mirror=mirror)[0] == 0
    assert (root / "tset" / "train" / "x.txt").read_bytes() == bytes(range(256)) * 30
    assert any(rng is None for rng in mirror.gets(_path(TGZ_URL)))


def test_download_transport_compression_of_a_plain_file_is_refused(tmp_path: Path, mirror, capsys) -> None:
    mirror.always[_path(PT_URL)] = {"body": gzip.compress(PT), "headers": {"Content-Encoding": "gzip"}}
    code, out, _ = _download(capsys, tmp_path / "data", "pt", mirror=mirror)
    assert code == 1 and "compressed for transport (Content-Encoding gzip)" in _failed_line(out, "pt")
    assert not (tmp_path / "data" / "PT" / "file.pt").exists()


# ---- item 6: one-line errors, no stuck states, a failed dataset never stops the others
def _bad_crc_zip() -> bytes:
    data = bytearray(_zip({"Zset/a/1.txt": b"one" * 100}))
    pos = data.index(b"Zset/a/1.txt") + len("Zset/a/1.txt")  # first byte of the member's compressed data
    data[pos + 3] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    "target, bad, pattern",
    [("tset", lambda: TGZ[: len(TGZ) // 2], "the archive is damaged"),
     ("zset", _bad_crc_zip, r"the archive is damaged \(Bad CRC-32 for file 'Zset/a/1.txt'\)"),
     ("zset", lambda: _zip({"Zset/a/zeros.bin": bytes(8 << 20)}), r"unpacks to more than \d+ bytes")],
    ids=["truncated-tar-gz", "bad-crc-zip", "zip-bomb"],
)
def test_download_bad_archive_is_one_line_and_not_pinned(tmp_path: Path, mirror, capsys, target: str, bad,
                                                         pattern: str) -> None:
    sources = _sources()
    path = _path(TGZ_URL if target == "tset" else ZIP_URL)
    good = mirror.files[path]
    mirror.files[path] = bad()
    spec = sources["datasets"][target]["files"][0]
    for key in ("md5", "sha256", "bytes"):  # a mirror whose table declares the bad file: only unpacking fails
        spec.pop(key, None)
    sources["datasets"][target]["splits"] = []
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, target, "pt", sources=sources, mirror=mirror)
    assert code == 1 and re.search(pattern, _failed_line(out, target)) and "re-run to fetch it again" in out
    assert (root / "PT" / "file.pt").read_bytes() == PT  # the next dataset of the run was not stopped
    assert set(_lock_files(root)) == {"PT/file.pt"}  # the bad archive is not pinned
    assert not (root / "downloads").exists() or not any((root / "downloads").iterdir())
    assert not [p for p in root.rglob(".*extract-*")]
    mirror.files[path] = good  # the mirror is fixed: the next run fetches it again
    assert hashlib.sha256(good).hexdigest()
    assert _download(capsys, root, target, sources=sources, mirror=mirror)[0] == 0


def test_download_layout_error_refetches_after_the_fix(tmp_path: Path, mirror, capsys) -> None:
    sources = _sources()
    del sources["datasets"]["tset"]["files"][0]["md5"], sources["datasets"]["tset"]["files"][0]["bytes"]
    mirror.files[_path(TGZ_URL)] = _targz({"training/x.txt": b"x"})  # not the declared layout
    root = tmp_path / "data"
    code, out, _ = _download(capsys, root, "tset", sources=sources, mirror=mirror)
    assert code == 1 and "is missing after extraction" in _failed_line(out, "tset")
    mirror.files[_path(TGZ_URL)] = TGZ
    assert _download(capsys, root, "tset", sources=sources, mirror=mirror)[0] == 0
    assert len(mirror.gets(_path(TGZ_URL))) == 2 and (root / "tset" / "train" / "x.txt").is_file()


def test_download_transient_errors_are_retried(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(fetch, "BACKOFF", 1.0)
    monkeypatch.setattr(fetch.time, "sleep", waits.append)
    mirror.crafted[_path(PT_URL)] = [{"status": 503}, {"status": 502}, {"status": 500}]
    code, out, _ = _download(capsys, tmp_path / "data", "pt", mirror=mirror)
    assert code == 0 and waits == [1.0, 2.0, 4.0] and len(mirror.gets(_path(PT_URL))) == 4
    assert "the server answered HTTP 503; retrying in 1 s" in out


def test_download_permanent_http_error_fails_fast(tmp_path: Path, mirror, capsys) -> None:
    mirror.always[_path(PT_URL)] = {"status": 403}
    code, out, _ = _download(capsys, tmp_path / "data", "pt", mirror=mirror)
    assert code == 1 and "(HTTP 403)" in _failed_line(out, "pt") and len(mirror.gets(_path(PT_URL))) == 1


def test_download_dns_failure_fails_fast(tmp_path: Path, capsys, monkeypatch) -> None:
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # no query leaves the machine: the name is refused here
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    monkeypatch.setattr(fetch, "BACKOFF", 10.0)  # a retry would show in the time taken
    start = time.monotonic()
    code = dl.main(["download", "pt", "--root", str(tmp_path), "--mirror", "http://mirror.invalid"],
                   sources=_sources())
    out = capsys.readouterr().out
    assert time.monotonic() - start < 5 and code == 1
    assert "cannot resolve host 'mirror.invalid'" in _failed_line(out, "pt") and "retrying" not in out


@pytest.mark.parametrize("value", ["127.0.0.1:8000", "ftp://mirror.example.org", "http://", "http://host:99999",
                                   "https://m.example.org/?x=1"])
def test_download_malformed_mirror(tmp_path: Path, capsys, value: str) -> None:
    code, _, err = _download(capsys, tmp_path / "data", "pt", mirror=type("M", (), {"url": value})())
    assert code == 2 and err.startswith(f"error: --mirror {value!r}: ") and len(err.strip().splitlines()) == 1


def test_download_root_naming_a_file(tmp_path: Path, capsys, frozen) -> None:
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    with frozen(tmp_path):
        code, _, err = _download(capsys, root, "pt")
    assert code == 2 and f"--root {root} is a file" in err and len(err.strip().splitlines()) == 1


def test_download_read_only_root(tmp_path: Path, mirror, capsys) -> None:
    if os.geteuid() != 0:
        root = tmp_path / "ro"
        root.mkdir()
        root.chmod(0o555)
        code, _, err = _download(capsys, root, "pt", mirror=mirror)
        root.chmod(0o755)
        assert code == 2 and f"cannot write in --root {root} (read-only)" in err
        return
    # root ignores permissions: run as an unprivileged user in a folder it can reach but not write
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        root = base / "ro"
        root.mkdir(mode=0o555)
        table = base / "sources.yaml"
        table.write_text(yaml.safe_dump(_sources()))
        code = _child_download(
            "import os, filelock, httpx, huggingface_hub\n"  # the interpreter's files may be root's only
            "import smarties_terratorch.download\n"
            "os.setgid(65534); os.setuid(65534)\n",
            root, mirror, table,
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"cannot write in --root {root} (read-only)" in proc.stderr and "Traceback" not in proc.stderr
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("content", ["[]", "{", '{"files": []}', '{"files": {"PT/file.pt": {"sha256": 1}}}'],
                         ids=["list", "truncated", "files-not-a-mapping", "bad-sha256"])
def test_download_misshaped_lock_file(tmp_path: Path, mirror, capsys, frozen, content: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / dl.LOCK_NAME).write_text(content)
    with frozen(root / dl.LOCK_NAME):
        code, _, err = _download(capsys, root, "pt", mirror=mirror)
    assert code == 2 and err.startswith(f"error: {root / dl.LOCK_NAME}: ") and "delete it" in err
    assert len(err.strip().splitlines()) == 1 and mirror.requests == []


def test_download_ctrl_c_is_one_line_and_resumes(tmp_path: Path, mirror) -> None:
    root = tmp_path / "data"
    table = tmp_path / "sources.yaml"
    table.write_text(yaml.safe_dump(_sources()))
    stall = threading.Event()
    mirror.cut[_path(PT_URL)] = (4096, stall)
    code = _child_download("import smarties_terratorch.fetch as fetch; fetch.CHUNK_SIZE = 1024\n", root, mirror, table)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a background shell's ignored SIGINT would be inherited: give the child Ctrl-C back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        _wait_for(lambda: (root / "PT" / ".file.pt.part").exists()
                  and (root / "PT" / ".file.pt.part").stat().st_size == 4096, 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        stall.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "interrupted: re-run the same command to continue (partial downloads resume where they stopped)."]

    assert dl.main(["download", "pt", "--root", str(root), "--mirror", mirror.url], sources=_sources()) == 0
    assert mirror.gets(_path(PT_URL)) == [None, "bytes=4096-"]
    assert (root / "PT" / "file.pt").read_bytes() == PT


@pytest.mark.parametrize("tamper", ["body", "etag"])
def test_download_hub_file_is_checked_against_the_hubs_sha256(tmp_path: Path, capsys, monkeypatch,
                                                              tamper: str) -> None:
    repo, file = "someone/data", "file.pt"
    srv = http_server.Server({}, hub={(repo, file): PT})
    path = f"/hub/datasets/{repo}/resolve/{http_server.HUB_COMMIT}/{file}"
    if tamper == "body":  # the bytes served differ from what the Hub states (HEAD and GET keep the good ETag)
        good = '"' + hashlib.sha256(PT).hexdigest() + '"'
        srv.always[path] = {"body": PT[:-1] + b"!", "headers": {"ETag": good}}
    else:
        srv.always[f"/hub/datasets/{repo}/resolve/main/{file}"] = {"headers": {"ETag": '"' + "0" * 64 + '"'}}
    http_server.use_hub(monkeypatch, srv.hub_url)
    sources = _sources()
    sources["datasets"] = {"hubset": {"title": "Hubset", "expect": ["H/file.pt"], "files": [
        {"hub": {"repo": repo, "file": file, "revision": "main"}, "save_as": "H/file.pt"}]}}
    try:
        code, out, _ = _download(capsys, tmp_path, "hubset", sources=sources)
    finally:
        srv.close()
    assert code == 1 and "(sha256 stated by the Hub (ETag))" in _failed_line(out, "hubset")
    assert not (tmp_path / "H" / "file.pt").exists() and _lock_files(tmp_path) == {}


def test_download_archive_larger_than_the_free_space(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    code, out, _ = _download(capsys, tmp_path / "data", "zset", mirror=mirror)
    assert code == 1 and re.search(r"disk full: \S+zset.zip unpacks to \d+ bytes but \S+ has 100 free", out)
    assert not (tmp_path / "data" / "Zset").exists()


def test_download_complete_dataset_folder_that_is_a_link_is_used(tmp_path: Path, mirror, capsys, frozen) -> None:
    outside = tmp_path / "elsewhere" / "Zset"
    (outside / "a").mkdir(parents=True)
    root = tmp_path / "data"
    root.mkdir()
    (root / "Zset").symlink_to(outside)  # placed by hand on another disk
    sources = _sources()
    sources["datasets"]["zset"]["splits"] = []
    with frozen(tmp_path / "elsewhere"):
        code, out, _ = _download(capsys, root, "zset", sources=sources, mirror=mirror)
    assert code == 0 and "up to date" in out and mirror.requests == []


def test_download_tar_using_most_of_the_free_space_is_unpacked(tmp_path: Path, mirror, capsys, monkeypatch) -> None:
    root = tmp_path / "data"
    size = len(bytes(range(256)) * 30) + len(b"y")  # the archive's members: exactly the free space

    def disk_usage(path: str) -> tuple[int, int, int]:  # the free space shrinks as members are unpacked
        used = sum(p.stat().st_size for p in root.glob("*tset*/**/*") if p.is_file())  # what is unpacked so far
        return collections.namedtuple("usage", "total used free")(10**9, used, size - used)

    monkeypatch.setattr(fetch.shutil, "disk_usage", disk_usage)
    assert _download(capsys, root, "tset", mirror=mirror)[0] == 0
    assert (root / "tset" / "val" / "y.txt").read_bytes() == b"y"


@pytest.mark.parametrize(
    "content",
    ["datasets: [", "- a\n- b\n", "datasets: {}\n",
     "splits: {url: u, commit: c, folder: f, files: {}}\ndatasets: {a: 1}\n"],
    ids=["bad-yaml", "a-list", "no-splits", "bad-dataset"],
)
def test_download_misshaped_sources_table(tmp_path: Path, capsys, content: str) -> None:
    table = tmp_path / "sources.yaml"
    table.write_text(content)
    code = dl.main(["download", "--root", str(tmp_path / "data"), "--sources", str(table)])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith(f"error: --sources {table}: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err and not (tmp_path / "data").exists()
