"""Offline end to end: ``smarties data download --mirror`` then ``smarties bench run --weights hub`` on CPU.

A local HTTP server on 127.0.0.1 (:mod:`http_server`) plays every remote: tiny archives in each dataset's real
packing (EuroSAT's zip, HLS Burn Scars' tar.gz, made by the package's fixture generators) under
``<mirror>/<original host>/<original path>``, the authors' split files (tiny, so the test's sources table carries
their hashes, passed with ``--sources``), and the Hugging Face Hub (``HF_ENDPOINT``) with an official-layout
``smarties-v1-vitb.safetensors`` for ``gsumbul/SMARTIES-v1-ViT-B``. The file holds a tiny ViT (the real one is
330 MB), so the test's table maps ``vitb`` to the tiny architecture; everything else is the shipped table and the
package's configs. The results must carry the lock file's sha256 of every data file a row read, and the weights'
repo, commit (resolved, not pinned) and sha256.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from http_server import HUB_COMMIT, Server, targz_folders, use_hub, zip_folder

from smarties_terratorch import cli
from smarties_terratorch import download as dl
from smarties_terratorch import fetch, models  # noqa: F401 - models declares the encoders' weights (get_weights)
from smarties_terratorch.bench.table import DEFAULT_TABLE, PACKAGE
from smarties_terratorch.pretrained import save_weights
from smarties_terratorch.testing import burnscars, eurosat
from smarties_terratorch.weights import get_weights

VITB = get_weights("smarties-v1-vitb")
EUROSAT_ZIP = "/zenodo.org/records/7711810/files/EuroSAT_MS.zip"
BURN_TAR = "/huggingface.co/datasets/ibm-nasa-geospatial/hls_burn_scars/resolve/main/hls_burn_scars.tar.gz"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Served files, the test's sources table and benchmark table (files on disk), the checkpoint bytes."""
    import torch

    from smarties_terratorch.models.vit import smarties_vit_tiny_patch16

    tmp = tmp_path_factory.mktemp("site")
    eurosat.make(tmp / "eurosat", per_class=2)
    burnscars.make(tmp / "burn", size=32)
    split_table = dl.load_sources()["splits"]
    prefix = f"/raw.githubusercontent.com/gsumbul/SMARTIES/{split_table['commit']}/eval_splits"
    files = {
        EUROSAT_ZIP: zip_folder(tmp / "eurosat" / "EuroSAT_MS", "EuroSAT_MS"),
        BURN_TAR: targz_folders({"training": tmp / "burn" / "training", "validation": tmp / "burn" / "validation"}),
        f"{prefix}/EuroSAT-train.txt": (tmp / "eurosat" / "eval_splits" / "eurosat-train.txt").read_bytes(),
        f"{prefix}/EuroSAT-val.txt": (tmp / "eurosat" / "eval_splits" / "eurosat-val.txt").read_bytes(),
    }
    # The sources table of this test: the shipped one, with the published split hashes replaced by the tiny files'
    sources = copy.deepcopy(dl.load_sources())
    for name in ("EuroSAT-train.txt", "EuroSAT-val.txt"):
        sources["splits"]["files"][name]["sha256"] = hashlib.sha256(files[f"{prefix}/{name}"]).hexdigest()
    # ... and the published archive checksums and sizes replaced by the tiny archives'
    eurosat_spec = sources["datasets"]["eurosat"]["files"][0]
    eurosat_spec.update(md5=hashlib.md5(files[EUROSAT_ZIP]).hexdigest(), bytes=len(files[EUROSAT_ZIP]))
    sources["datasets"]["hls-burn-scars"]["files"][0]["sha256"] = hashlib.sha256(files[BURN_TAR]).hexdigest()
    (tmp / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False))

    # An official-layout checkpoint (unprefixed encoder keys), of the tiny architecture
    torch.manual_seed(0)
    ckpt = save_weights(smarties_vit_tiny_patch16(), tmp / "smarties-v1-vitb.safetensors").read_bytes()
    # The shipped table, with vitb built as the tiny architecture the served file holds; the burn-scars row reads a
    # copy of its config with a 32-pixel crop (the fixture's scenes are 32 x 32)
    table = yaml.safe_load(DEFAULT_TABLE.read_text())
    table["backbones"]["vitb"] = {**table["backbones"]["vitb"], "arch": "smarties_vit_tiny_patch16",
                                  "probe_indices": [0, 1, 1, 1]}  # fmt: skip
    burn = next(r for r in table["rows"] if r["id"] == "burnscars_upernet")
    config = yaml.safe_load((PACKAGE / burn["config"]).read_text())
    config["data"]["init_args"]["crop_size"] = 32
    config["model"]["init_args"]["model_args"]["decoder_channels"] = 32
    config["model"]["init_args"]["tiled_inference_parameters"].update(h_crop=32, w_crop=32, h_stride=24, w_stride=24)
    (tmp / "burnscars_tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    burn["config"] = "burnscars_tiny.yaml"  # relative to the table's folder
    (tmp / "table.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
    return {"files": files, "models": {(VITB.repo_id, VITB.filename): ckpt}, "tmp": tmp}


@pytest.fixture
def server(site: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server(site["files"], models=site["models"])
    use_hub(monkeypatch, srv.hub_url, cache=str(tmp_path / "hub-cache"))
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield srv
    srv.close()


def _download(site: dict[str, Any], root: Path, server: Server, *names: str) -> int:
    sources = str(site["tmp"] / "sources.yaml")
    return cli.main(["data", "download", *names, "--root", str(root), "--mirror", server.url, "--sources", sources])


def _lock(root: Path) -> dict[str, Any]:
    return json.loads((root / dl.LOCK_NAME).read_text())["files"]


def _check_result(result: dict[str, Any], root: Path, site: dict[str, Any], used: list[str]) -> None:
    """The result carries the lock's sha256 of each data file the row read and the weights' repo, commit, sha256."""
    assert result["status"] == "ok", result.get("reason")
    lock = _lock(root)
    assert sorted(result["data"]["files"]) == sorted(used)
    for rel, rec in result["data"]["files"].items():
        assert rec["sha256"] == lock[rel]["sha256"] and rec["url"] == lock[rel]["url"]
    weights = result["weights"]
    assert weights["repo_id"] == VITB.repo_id and weights["revision"] == HUB_COMMIT and weights["pinned"] is False
    assert weights["sha256"] == hashlib.sha256(site["models"][(VITB.repo_id, VITB.filename)]).hexdigest()


def test_download_then_bench_with_hub_weights(
    site: dict[str, Any], server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, fast_fetch: None,
) -> None:  # fmt: skip
    root, out = tmp_path / "data", tmp_path / "results"
    # the connection drops half-way through the archive: the download resumes from the partial file (HTTP Range)
    # (a killed process resuming on the next run: the slow test below)
    half = len(site["files"][EUROSAT_ZIP]) // 2 // 1024 * 1024  # whole chunks: the resume point is exact
    server.cut[EUROSAT_ZIP] = (half, None)
    assert _download(site, root, server, "eurosat", "burnscars") == 0
    assert server.gets(EUROSAT_ZIP) == [None, f"bytes={half}-"]
    lock = _lock(root)
    assert lock["downloads/EuroSAT_MS.zip"]["sha256"] == hashlib.sha256(site["files"][EUROSAT_ZIP]).hexdigest()
    assert lock["downloads/EuroSAT_MS.zip"]["extracted_to"] == "EuroSAT/EuroSAT_MS"
    # the split hashes came from the test's table, and the lock says so (not "published for the authors' commit")
    assert lock["eval_splits/EuroSAT-train.txt"]["checked"].startswith("sha256 declared in the sources table given")
    assert (root / "EuroSAT/EuroSAT_MS/Forest/Forest_1.tif").is_file() and (root / "hls_burn_scars/training").is_dir()
    # a second download is a no-op: nothing is requested, the lock is unchanged
    before, text = len(server.requests), (root / dl.LOCK_NAME).read_text()
    assert _download(site, root, server, "eurosat", "burnscars") == 0
    assert server.requests[before:] == [] and (root / dl.LOCK_NAME).read_text() == text

    # the paper-table row from another working directory, the weights from the Hub-like endpoint
    monkeypatch.chdir(tmp_path)
    argv = ["bench", "run", "--rows", "eurosat_knn", "--backbone", "vitb", "--weights", "hub", "--data-root", str(root),
            "--out", str(out), "--table", str(site["tmp"] / "table.yaml"), "--trainer.accelerator", "cpu"]  # fmt: skip
    with caplog.at_level("WARNING", logger="smarties_terratorch.hub"):
        assert cli.main(argv) == 0
    assert f"{VITB.repo_id} at commit {HUB_COMMIT} (not pinned by this package)" in caplog.text
    assert ("GET", f"/hub/api/models/{VITB.repo_id}", None) in server.requests
    result = json.loads((out / "real" / "results" / "eurosat_knn__vitb.json").read_text())
    used = ["downloads/EuroSAT_MS.zip", "eval_splits/EuroSAT-train.txt", "eval_splits/EuroSAT-val.txt"]
    _check_result(result, root, site, used)
    assert result["config_file"] == "configs/eurosat_knn.yaml"  # the package's config, named without a path
    assert 0 <= result["value"] <= 100
    # the report carries the commit and the sha256 too
    assert cli.main(["bench", "report", "--out", str(out)]) == 0
    flat = json.loads((out / "report" / "results.json").read_text())
    assert flat[0]["weights_revision"] == HUB_COMMIT and flat[0]["weights_sha256"] == result["weights"]["sha256"]


@pytest.mark.slow
def test_e2e_in_subprocesses_with_a_killed_download(site: dict[str, Any], server: Server, tmp_path: Path) -> None:
    """The installed console script, HF_ENDPOINT in the environment, a SIGKILLed download, a segmentation row."""
    root, out = tmp_path / "data", tmp_path / "results"
    smarties = Path(sys.executable).with_name("smarties")
    env = {**os.environ, "HF_ENDPOINT": server.hub_url, "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    env.pop("HF_HUB_OFFLINE", None)
    sources = str(site["tmp"] / "sources.yaml")
    download = [str(smarties), "data", "download", "eurosat", "burnscars", "--root", str(root),
                "--mirror", server.url, "--sources", sources]  # fmt: skip

    # killed mid-way: the server stalls after part of the archive, the process is SIGKILLed, the next run resumes
    event = threading.Event()
    body = site["files"][BURN_TAR]
    server.cut[BURN_TAR] = (len(body) // 2, event)
    code = (  # the console script's entry point, writing what arrives (the default chunk is 1 MiB)
        "import sys, smarties_terratorch.fetch as fetch; fetch.CHUNK_SIZE = 1024\n"
        f"from smarties_terratorch.cli import main; sys.exit(main({download[1:]!r}))"
    )
    cmd = [sys.executable, "-c", code]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = root / "downloads" / ".hls_burn_scars.tar.gz.part"
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size >= len(body) // 4) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    event.set()
    size = part.stat().st_size
    assert 0 < size < len(body)
    done = subprocess.run(download, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.gets(BURN_TAR) == [None, f"bytes={size}-"]
    before = len(server.requests)
    again = subprocess.run(download, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("up to date") == 2, again.stdout  # a no-op
    assert server.requests[before:] == []

    run = [str(smarties), "bench", "run", "--rows", "eurosat_knn", "burnscars_upernet", "--backbone", "vitb",
           "--weights", "hub", "--data-root", str(root), "--out", str(out), "--table", str(site["tmp"] / "table.yaml"),
           "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1"]  # fmt: skip
    bench_run = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert bench_run.returncode == 0, bench_run.stdout[-3000:] + bench_run.stderr[-3000:]
    assert f"{VITB.repo_id} at commit {HUB_COMMIT} (not pinned by this package)" in bench_run.stderr
    knn = json.loads((out / "real" / "results" / "eurosat_knn__vitb.json").read_text())
    _check_result(knn, root, site, ["downloads/EuroSAT_MS.zip", "eval_splits/EuroSAT-train.txt",
                                    "eval_splits/EuroSAT-val.txt"])  # fmt: skip
    burn = json.loads((out / "real" / "results" / "burnscars_upernet__vitb.json").read_text())
    _check_result(burn, root, site, ["downloads/hls_burn_scars.tar.gz"])
    assert burn["config_file"].endswith("burnscars_tiny.yaml")
