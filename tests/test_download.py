"""``smarties data download`` against a local HTTP server that plays every source.

The server (:mod:`http_server`) serves tiny archives in each dataset's real packing, made from the package's fixture
generators, under ``<mirror>/<original host>/<original path>``, and answers like the Hugging Face Hub under ``/hub``.
It honours ``Range`` requests and records every request, so the tests can assert what was (not) asked for.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from http_server import HUB_COMMIT, Server, targz_folders, use_hub, zip_folder

from smarties_terratorch import download as dl
from smarties_terratorch import fetch
from smarties_terratorch.testing import bigearthnet, burnscars, dfc2020, eurosat, resisc45, ucmerced, whurs19

RESISC45_URL = (  # what torchgeo's RESISC45 class declares (checked in the last test)
    "https://hf.co/datasets/isaaccorley/resisc45/resolve/883edc0eee77b2c84225472f10f126e3ed83fa6e/NWPU-RESISC45.zip"
)
DFC_PATH = "/huggingface.co/datasets/antofuller/CROMA_benchmarks/resolve/main/DFC_preprocessed.pt"


# ------------------------------------------------------------------------------------------------ archives


def _split_lines(tmp: Path) -> dict[str, bytes]:
    """Content of every declared split file, from the fixtures' own lists where they exist."""
    generated = {p.name.lower(): p.read_bytes() for p in tmp.rglob("eval_splits/*.txt")}
    aliases = {"uc-merced": "ucmerced", "whu-rs19": "whurs19"}
    out = {}
    for name in dl.load_sources()["splits"]["files"]:
        stem = re.sub(r"(train|val)\d*(prcnt)?\.txt$", r"\1.txt", name.lower())
        for long, short in aliases.items():
            stem = stem.replace(long, short)
        out[name] = generated.get(stem, f"# {name}\n".encode())
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Mirror files (path -> bytes), Hub files and the sources table with the split files' test hashes."""
    tmp = tmp_path_factory.mktemp("site")
    eurosat.make(tmp / "eurosat", per_class=1)
    whurs19.make(tmp / "whu", per_class=2, size=32)
    ucmerced.make(tmp / "uc", per_class=2, size=32)
    resisc45.make(tmp / "resisc", per_class=2, num_classes=3)
    bigearthnet.make(tmp / "ben", patches=2, val=1)
    burnscars.make(tmp / "burn", size=16)
    dfc = dfc2020.make(tmp / "dfc", size=8)

    sources = copy.deepcopy(dl.load_sources())
    split_table = sources["splits"]
    commit = split_table["commit"]
    files: dict[str, bytes] = {}
    for name, body in _split_lines(tmp).items():
        files[f"/raw.githubusercontent.com/gsumbul/SMARTIES/{commit}/eval_splits/{name}"] = body
        entry = split_table["files"][name]  # the published checksums cannot match generated files
        if entry.get("sha256"):
            entry["sha256"] = hashlib.sha256(body).hexdigest()
        if entry.get("git_blob"):
            entry["git_blob"] = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
    # RESISC45: torchgeo's address, with a checksum of our fixture's archive instead of torchgeo's md5
    sources["datasets"]["resisc45"]["files"][0] = {"url": RESISC45_URL, **sources["datasets"]["resisc45"]["files"][0]}
    del sources["datasets"]["resisc45"]["files"][0]["torchgeo"]
    resisc_zip = zip_folder(tmp / "resisc" / "RESISC45", "NWPU-RESISC45")
    sources["datasets"]["resisc45"]["files"][0]["md5"] = hashlib.md5(resisc_zip).hexdigest()

    burn_tar = targz_folders({"training": tmp / "burn" / "training", "validation": tmp / "burn" / "validation"})
    dfc_bytes = dfc.read_bytes()
    files.update({
        "/zenodo.org/records/7711810/files/EuroSAT_MS.zip": zip_folder(tmp / "eurosat" / "EuroSAT_MS", "EuroSAT_MS"),
        "/github.com/CAPTAIN-WHU/BED4RS/raw/main/datasets/WHU-RS19.zip": zip_folder(tmp / "whu" / "WHU-RS19", "WHU-RS19"),
        "/weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip": zip_folder(tmp / "uc" / "UCMerced", "UCMerced_LandUse"),
        "/" + RESISC45_URL.split("://", 1)[1]: resisc_zip,
        "/zenodo.org/records/12687186/files/BigEarthNet-S2-v1.0.tar.gz":
            targz_folders({"BigEarthNet-v1.0": tmp / "ben" / "BigEarthNet-v1.0"}),
        "/zenodo.org/records/12687186/files/BigEarthNet-S1-v1.0.tar.gz":
            targz_folders({"BigEarthNet-S1-v1.0": tmp / "ben" / "BigEarthNet-S1-v1.0"}),
        DFC_PATH: dfc_bytes,
        "/huggingface.co/datasets/ibm-nasa-geospatial/hls_burn_scars/resolve/main/hls_burn_scars.tar.gz": burn_tar,
    })  # fmt: skip
    for entry in sources["datasets"].values():  # the published checksums and sizes, of the generated archives
        for spec in entry.get("files", []):
            if "torchgeo" in spec:
                continue
            url = spec.get("url") or dl._hub_url(spec["hub"]["repo"], spec["hub"]["file"], spec["hub"]["revision"])
            body = files["/" + url.split("://", 1)[1]]
            for key, fn in (("md5", hashlib.md5), ("sha256", hashlib.sha256)):
                if key in spec:
                    spec[key] = fn(body).hexdigest()
            if "bytes" in spec:
                spec["bytes"] = len(body)
    hub = {
        ("antofuller/CROMA_benchmarks", "DFC_preprocessed.pt"): dfc_bytes,
        ("ibm-nasa-geospatial/hls_burn_scars", "hls_burn_scars.tar.gz"): burn_tar,
    }
    return {"files": files, "hub": hub, "sources": sources}


@pytest.fixture
def server(site: dict[str, Any]) -> Iterator[Server]:
    srv = Server(site["files"], site["hub"])
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _run(args: list[str], site: dict[str, Any]) -> int:
    return dl.main(["download", *args], sources=site["sources"])


def _lock(root: Path) -> dict[str, Any]:
    return json.loads((root / dl.LOCK_NAME).read_text())["files"]


# ------------------------------------------------------------------------------------------------ tests


def test_full_download_via_mirror_then_nothing_to_do(
    tmp_path: Path, server: Server, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    assert _run(["--root", str(root), "--mirror", server.url + "/"], site) == 1  # manual datasets stay missing
    out = capsys.readouterr().out
    # the folders the paper-table configs read
    for rel in (
        "EuroSAT/EuroSAT_MS/Forest/Forest_1.tif",
        "WHU-RS19/Airport",
        "UCMerced/Images/agricultural",
        "RESISC45/airplane/airplane_001.jpg",
        "BigEarthNet-v1/S2/S2A_MSIL2A_20170613T101031_40_50",
        "BigEarthNet-v1/S1/S1A_IW_GRDH_1SDV_20170613T165043_33UUP_40_50",
        "DFC2020/DFC_preprocessed.pt",
        "hls_burn_scars/training",
        "hls_burn_scars/validation",
        "eval_splits/EuroSAT-train.txt",
        "eval_splits/RESISC45-val.txt",
        "eval_splits/WHU-RS19-train.txt",
        "eval_splits/UC-Merced-val.txt",
        "eval_splits/BigEarthNet-MM-val.txt",
    ):
        assert (root / rel).exists(), rel
    assert (root / "DFC2020" / "DFC_preprocessed.pt").read_bytes() == site["hub"][
        ("antofuller/CROMA_benchmarks", "DFC_preprocessed.pt")]
    # archives are removed after extraction; no temporary files are left
    assert not (root / "downloads").exists() or not any((root / "downloads").iterdir())
    assert not [p for p in root.rglob(".*") if p.name not in (dl.LOCK_NAME, dl.RUN_LOCK_NAME)]
    # the lock: every fetched file with its original URL and the sha256 of the bytes served
    lock = _lock(root)
    assert len(lock) == 8 + 17  # 8 data files (SpaceNet7 is a manual step only), 17 split files
    served = {url: hashlib.sha256(body).hexdigest() for url, body in site["files"].items()}
    for rel, rec in lock.items():
        assert rec["complete"], rel
        assert served["/" + rec["url"].split("://", 1)[1]] == rec["sha256"], rel
    assert lock["downloads/EuroSAT_MS.zip"]["extracted_to"] == "EuroSAT/EuroSAT_MS"
    assert lock["DFC2020/DFC_preprocessed.pt"]["dataset"] == "dfc2020"
    assert "needs manual steps" in out and "1BADSEjxYKFZZlM-tEkRUfHvHi5XdaVV9" in out
    assert "summary: present:" in out and "missing: spacenet7, dynamicearthnet, sickle" in out

    # a second run: everything present is checked locally, nothing is requested
    before = len(server.requests)
    assert _run(["--root", str(root), "--mirror", server.url], site) == 1
    out = capsys.readouterr().out
    assert len(server.requests) == before
    assert out.count("up to date") == 9  # 8 datasets + the split files; the three manual ones stay missing
    assert _run(["eurosat", "splits", "--root", str(root), "--mirror", server.url], site) == 0
    assert len(server.requests) == before


def test_mirror_from_environment_and_names(
    tmp_path: Path, server: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    assert _run(["EuroSAT_MS", "WHURS19", "--root", str(tmp_path)], site) == 0
    assert (tmp_path / "EuroSAT/EuroSAT_MS").is_dir() and (tmp_path / "WHU-RS19").is_dir()
    for name in ("EuroSAT-val.txt", "WHU-RS19-val.txt"):
        assert (tmp_path / "eval_splits" / name).is_file()
    splits = f"/raw.githubusercontent.com/gsumbul/SMARTIES/{site['sources']['splits']['commit']}/eval_splits"
    assert sorted(p for _, p, _ in server.requests) == sorted([
        "/zenodo.org/records/7711810/files/EuroSAT_MS.zip",
        "/github.com/CAPTAIN-WHU/BED4RS/raw/main/datasets/WHU-RS19.zip",
        *(f"{splits}/{n}" for n in ("EuroSAT-train.txt", "EuroSAT-val.txt", "WHU-RS19-train.txt", "WHU-RS19-val.txt")),
    ])  # fmt: skip
    assert _run(["no-such-set", "--root", str(tmp_path)], site) == 2


def test_kept_archives_are_checked_and_reused(
    tmp_path: Path, server: Server, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["uc-merced", "--root", str(tmp_path), "--mirror", server.url, "--keep-archives"]
    assert _run(args, site) == 0
    archive = tmp_path / "downloads/UCMerced_LandUse.zip"
    assert archive.is_file()
    before = len(server.requests)
    shutil.rmtree(tmp_path / "UCMerced")  # re-extracted from the kept archive, no request
    assert _run(args, site) == 0 and (tmp_path / "UCMerced/Images").is_dir()
    archive.write_bytes(archive.read_bytes() + b"x")
    capsys.readouterr()
    assert _run(args, site) == 1
    assert f"{archive}: sha256 is" in capsys.readouterr().out
    assert len(server.requests) == before


def test_resume_after_connection_drop(tmp_path: Path, server: Server, site: dict[str, Any], fast_fetch: None) -> None:
    server.cut[DFC_PATH] = (4096, None)  # the first response ends after 4096 bytes
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    assert server.gets(DFC_PATH) == [None, "bytes=4096-"]
    assert (tmp_path / "DFC2020/DFC_preprocessed.pt").read_bytes() == site["files"][DFC_PATH]


def _interrupted_run(tmp_path: Path, server: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                     sent: int) -> Path:
    """A run whose only attempt is cut after ``sent`` bytes; returns the partial file it leaves."""
    monkeypatch.setattr(fetch, "CHUNK_SIZE", 1024)
    monkeypatch.setattr(fetch, "RETRIES", 0)
    server.cut[DFC_PATH] = (sent, None)
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 1
    monkeypatch.setattr(fetch, "RETRIES", 3)
    part = tmp_path / "DFC2020" / ".DFC_preprocessed.pt.part"
    assert part.stat().st_size == sent
    return part


def test_resume_from_partial_file_of_a_stopped_run(
    tmp_path: Path, server: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = site["files"][DFC_PATH]
    part = _interrupted_run(tmp_path, server, site, monkeypatch, 5120)
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    assert server.gets(DFC_PATH) == [None, "bytes=5120-"]
    assert (tmp_path / "DFC2020/DFC_preprocessed.pt").read_bytes() == body
    assert not part.exists() and not list(part.parent.glob(".*"))


def test_partial_file_of_unknown_origin_is_not_resumed(tmp_path: Path, server: Server, site: dict[str, Any]) -> None:
    body = site["files"][DFC_PATH]
    part = tmp_path / "DFC2020" / ".DFC_preprocessed.pt.part"  # no record of which file and version it was
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    assert server.gets(DFC_PATH) == [None]
    assert (tmp_path / "DFC2020/DFC_preprocessed.pt").read_bytes() == body


def test_partial_file_that_is_already_complete(
    tmp_path: Path, server: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = site["files"][DFC_PATH]
    part = _interrupted_run(tmp_path, server, site, monkeypatch, 5120)
    part.write_bytes(body)  # stopped after the last byte, before the rename
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    assert server.gets(DFC_PATH) == [None, f"bytes={len(body)}-"]  # answered 416 with the same size
    assert (tmp_path / "DFC2020/DFC_preprocessed.pt").read_bytes() == body


@pytest.mark.slow
def test_sigkilled_download_resumes(tmp_path: Path, server: Server, site: dict[str, Any]) -> None:
    event = threading.Event()
    server.cut[DFC_PATH] = (20000, event)  # send 20000 bytes, then stall until the client is gone
    code = (
        "import sys, smarties_terratorch.fetch as fetch; fetch.CHUNK_SIZE = 1024\n"
        "from smarties_terratorch.download import main\n"
        f"sys.exit(main(['download', 'dfc2020', '--root', {str(tmp_path)!r}, '--mirror', {server.url!r}]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = tmp_path / "DFC2020" / ".DFC_preprocessed.pt.part"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= 16384) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    event.set()
    size = part.stat().st_size
    assert 0 < size < len(site["files"][DFC_PATH])
    assert _run(["dfc2020", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    assert server.gets(DFC_PATH) == [None, f"bytes={size}-"]
    assert (tmp_path / "DFC2020/DFC_preprocessed.pt").read_bytes() == site["files"][DFC_PATH]


def test_tampered_file_is_detected(
    tmp_path: Path, server: Server, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["dfc2020", "uc-merced", "--root", str(tmp_path), "--mirror", server.url], site) == 0
    pt = tmp_path / "DFC2020/DFC_preprocessed.pt"
    expected = _lock(tmp_path)["DFC2020/DFC_preprocessed.pt"]["sha256"]
    data = bytearray(pt.read_bytes())
    data[100] ^= 0xFF  # same size, one byte changed
    pt.write_bytes(bytes(data))
    split = tmp_path / "eval_splits/UC-Merced-val.txt"
    split.write_text("./tampered/file.tif\n")
    capsys.readouterr()
    before = len(server.requests)
    assert _run(["dfc2020", "uc-merced", "--root", str(tmp_path), "--mirror", server.url], site) == 1
    out = capsys.readouterr().out
    actual = hashlib.sha256(pt.read_bytes()).hexdigest()
    assert f"{pt}: sha256 is {actual}, expected {expected}" in out and f"delete {pt} and re-run" in out
    assert f"{split}: sha256 is" in out
    assert len(server.requests) == before
    pt.unlink()  # the fix the message names
    split.unlink()
    assert _run(["dfc2020", "uc-merced", "--root", str(tmp_path), "--mirror", server.url], site) == 0


def test_wrong_split_hash_is_refused(
    tmp_path: Path, server: Server, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sources = copy.deepcopy(site["sources"])
    sources["splits"]["files"]["EuroSAT-val.txt"]["sha256"] = "0" * 64
    assert dl.main(["download", "splits", "--root", str(tmp_path), "--mirror", server.url], sources=sources) == 1
    out = capsys.readouterr().out
    assert "EuroSAT-val.txt: the file downloaded from" in out and "expected " + "0" * 64 in out
    assert not (tmp_path / "eval_splits/EuroSAT-val.txt").exists()
    assert not list((tmp_path / "eval_splits").glob(".*"))  # no partial file kept
    assert (tmp_path / "eval_splits/EuroSAT-train.txt").exists()  # the others are fine
    assert "EuroSAT-val.txt" not in json.dumps(_lock(tmp_path))


def test_torchgeo_md5_mismatch_keeps_nothing(
    tmp_path: Path, server: Server, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sources = copy.deepcopy(site["sources"])
    sources["datasets"]["resisc45"]["files"][0]["md5"] = "f" * 32
    sources["datasets"]["resisc45"]["splits"] = []
    assert dl.main(["download", "resisc45", "--root", str(tmp_path), "--mirror", server.url], sources=sources) == 1
    out = capsys.readouterr().out
    assert "expected " + "f" * 32 + " (md5 declared in the sources table given)" in out
    assert not (tmp_path / "RESISC45").exists() and not any((tmp_path / "downloads").iterdir())


def test_a_split_file_the_source_lacks_is_reported(
    tmp_path: Path, site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {p: b for p, b in site["files"].items() if not p.endswith("/BigEarthNet-S1-val.txt")}
    srv = Server(files)
    try:
        assert _run(["splits", "--root", str(tmp_path), "--mirror", srv.url], site) == 1
    finally:
        srv.close()
    out = capsys.readouterr().out
    assert re.search(r"BigEarthNet-S1-val.txt: download from http://\S+/BigEarthNet-S1-val.txt failed \(.*404", out)
    assert "missing: splits" in out
    assert len(list((tmp_path / "eval_splits").glob("*.txt"))) == 16 and not list(tmp_path.rglob(".*.part"))


def test_shipped_sources_declare_the_public_checksums() -> None:
    datasets = dl.load_sources()["datasets"]
    declared = {spec.get("url", spec.get("hub", {}).get("file", spec.get("torchgeo"))).rsplit("/", 1)[-1]:
                {k for k in ("sha256", "md5", "bytes") if spec.get(k)}
                for entry in datasets.values() for spec in entry.get("files", [])}
    assert declared == {
        "EuroSAT_MS.zip": {"md5", "bytes"},
        "WHU-RS19.zip": {"sha256", "bytes"},
        "UCMerced_LandUse.zip": {"md5"},
        "RESISC45": set(),  # torchgeo's md5, read from the installed torchgeo
        "BigEarthNet-S2-v1.0.tar.gz": {"md5"},
        "BigEarthNet-S1-v1.0.tar.gz": {"md5"},
        "DFC_preprocessed.pt": set(),  # the Hub's sha256, then first use
        "hls_burn_scars.tar.gz": {"sha256"},
    }  # SpaceNet7: nothing automatic (the rows read PANGAEA's copy, a manual step)
    assert datasets["eurosat"]["files"][0]["md5"] == "091174add3c8e680a49244acf185b9f0"
    splits = dl.load_sources()["splits"]["files"]
    assert splits["BigEarthNet-S1-val.txt"]["git_blob"] == "b5ba43a7e204c56d13f1d6431bea9ae4310db9d4"


def test_shipped_split_table_keeps_the_published_hashes() -> None:
    files = dl.load_sources()["splits"]["files"]
    assert files["EuroSAT-train.txt"]["sha256"] == "ccfe76d790dd3f37c33ba63a3c3bb283a61009ef02652a70071bd7584cd98a43"
    assert sum(1 for f in files.values() if f.get("sha256")) == 15
    assert all(f.get("sha256") or f.get("git_blob") for f in files.values())  # every split file is verified


def _check_hub_download(root: Path, server: Server) -> None:
    assert (root / "hls_burn_scars/training").is_dir()
    dfc = _lock(root)["DFC2020/DFC_preprocessed.pt"]
    assert dfc["commit"] == HUB_COMMIT and dfc["url"].startswith("https://huggingface.co/datasets/antofuller/")
    assert dfc["sha256"] == dfc["etag_sha256"]  # the Hub's ETag of an LFS file is its sha256
    paths = [(m, p) for m, p, _ in server.requests]
    assert ("HEAD", "/hub/datasets/antofuller/CROMA_benchmarks/resolve/main/DFC_preprocessed.pt") in paths
    assert ("GET", f"/hub/datasets/antofuller/CROMA_benchmarks/resolve/{HUB_COMMIT}/DFC_preprocessed.pt") in paths
    assert not list(root.rglob("*.hub"))


def test_hub_files_through_the_hub_endpoint(
    tmp_path: Path, server: Server, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_hub(monkeypatch, server.hub_url)
    assert _run(["dfc2020", "burnscars", "--root", str(tmp_path)], site) == 0
    _check_hub_download(tmp_path, server)


@pytest.mark.slow
def test_hub_files_through_hf_endpoint_variable(tmp_path: Path, server: Server, site: dict[str, Any]) -> None:
    import yaml

    table = tmp_path / "sources.yaml"  # the generated files' checksums
    table.write_text(yaml.safe_dump(site["sources"]))
    env = {**os.environ, "HF_ENDPOINT": server.url + "/hub", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop(dl.MIRROR_ENV, None)
    code = (
        "import sys; from smarties_terratorch.download import main\n"
        f"sys.exit(main(['download', 'dfc2020', 'burnscars', '--root', {str(tmp_path)!r}, "
        f"'--sources', {str(table)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_hub_download(tmp_path, server)


def test_manual_datasets_print_steps(tmp_path: Path, server: Server, site: dict[str, Any],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["DynamicEarthNet", "sickle", "--root", str(tmp_path), "--mirror", server.url], site) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/DynamicEarthNet/planet/" in out and "mediatum.ub.tum.de/1650201" in out
    assert f"{tmp_path}/sickle/" in out
    assert server.requests == []
    (tmp_path / "sickle").mkdir()  # placed by hand
    assert _run(["sickle", "--root", str(tmp_path)], site) == 0


def test_unsafe_archives_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("EuroSAT_MS/ok.txt", "ok")
        zf.writestr("../evil.txt", "evil")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    with pytest.raises(fetch.FetchError, match="refusing member '../evil.txt'"):
        fetch.extract_archive(tmp_path / "a.zip", tmp_path / "out" / "EuroSAT", member="EuroSAT_MS")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("train/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    (tmp_path / "b.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(fetch.FetchError, match="refusing member 'train/link'"):
        fetch.extract_archive(tmp_path / "b.tar.gz", tmp_path / "out" / "sn7")
    assert not (tmp_path / "evil.txt").exists() and sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_resisc45_source_is_read_from_torchgeo() -> None:
    from torchgeo.datasets import RESISC45

    spec = dl.load_sources()["datasets"]["resisc45"]["files"][0]
    remote = dl._remote(spec, None, None)
    assert remote.url == RESISC45.url == RESISC45_URL and remote.md5 == RESISC45.md5
    assert remote.hub == ("isaaccorley/resisc45", "NWPU-RESISC45.zip", RESISC45.url.split("/")[-2])
    assert dl.mirror_url(remote.url, "http://m/") == "http://m/hf.co" + urlsplit(RESISC45.url).path


def test_sources_file_option(tmp_path: Path, server: Server, site: dict[str, Any],
                             capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    table = tmp_path / "my_sources.yaml"
    table.write_text(yaml.safe_dump(site["sources"]))
    root = tmp_path / "data"
    assert dl.main(["download", "uc-merced", "--root", str(root), "--mirror", server.url, "--sources", str(table)]) == 0
    checked = _lock(root)["eval_splits/UC-Merced-train.txt"]["checked"]
    assert checked.startswith("sha256 declared in the sources table given")
    assert dl.main(["download", "--root", str(root), "--sources", str(tmp_path / "nope.yaml")]) == 2
    assert "--sources" in capsys.readouterr().err
