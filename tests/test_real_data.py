"""End to end on real imagery: the six BigEarthNet v1.0 S2/S1 patch pairs shipped in ``bigearthnet-common``.

Read with rasterio, labels mapped to BigEarthNet-19, normalised with the released S2-L2A / S1-GRD statistics,
resized and encoded with a tiny SMARTIES encoder (S2, S1, early and late S1+S2 fusion).
"""

from __future__ import annotations

import ast
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

pytest.importorskip("bigearthnet_common")

from smarties_terratorch.datasets.bigearthnet import (  # noqa: E402
    BIGEARTHNET19_LABELS,
    BIGEARTHNET43_LABELS,
    BIGEARTHNET43_TO_19,
    S1_BANDS,
    S2_L2A_BANDS,
    read_bigearthnet_s1,
    read_bigearthnet_s2,
    read_labels,
    read_metadata,
    to_bigearthnet19,
)
from smarties_terratorch.fetch import extract_archive  # noqa: E402
from smarties_terratorch.models.vit import smarties_vit_tiny_patch16  # noqa: E402
from smarties_terratorch.normalization import SmartiesNormalize, normalization_stats, normalize, resize_to  # noqa: E402
from smarties_terratorch.sample_data import bigearthnet_examples  # noqa: E402

# On bigearthnet-common's own list of patches with seasonal snow: very bright, many values above p99.
SNOWY = "S2B_MSIL2A_20180204T94161_57_38"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smarties-cache")


@pytest.fixture(scope="module")
def examples(cache):
    # Through the environment variable, so the default cache location logic is exercised too.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMARTIES_CACHE", str(cache))
        return bigearthnet_examples()


@pytest.fixture(scope="module")
def arrays(examples):
    s2, s2_prof = zip(*(read_bigearthnet_s2(e.s2_dir) for e in examples))
    s1, s1_prof = zip(*(read_bigearthnet_s1(e.s1_dir) for e in examples))
    return np.stack(s2), np.stack(s1), s2_prof, s1_prof


@pytest.fixture(scope="module")
def model_inputs(arrays):
    s2, s1, _, _ = arrays
    x2 = resize_to(SmartiesNormalize.from_stats("S2-L2A")(torch.from_numpy(s2)), 224)
    x1 = resize_to(SmartiesNormalize.from_stats("S1-GRD")(torch.from_numpy(s1)), 224)
    return x2, x1


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return smarties_vit_tiny_patch16().eval()


# ---------------------------------------------------------------------------------------------- sample data
def test_six_pairs_extracted_into_env_cache(examples, cache):
    assert len(examples) == 6
    assert len({e.name for e in examples}) == 6
    for e in examples:
        assert e.s2_dir.is_relative_to(cache / "bigearthnet-examples") and e.s2_dir.name == e.name
        assert read_metadata(e.s1_dir)["corresponding_s2_patch"] == e.name
        assert e.s1_dir.name.startswith("S1") and e.name.startswith("S2")
        # The pair shares the footprint and labels (BigEarthNet-MM takes labels from S2).
        m1, m2 = read_metadata(e.s1_dir), read_metadata(e.s2_dir)
        assert m1["labels"] == m2["labels"]
        corner = ("ulx", "uly")  # the S1 JSON spells the lower-right key "lly", so compare the upper-left corner
        assert [m1["coordinates"][k] for k in corner] == [m2["coordinates"][k] for k in corner]
    # Extraction went through a temporary folder that is gone now.
    assert sorted(p.name for p in (cache / "bigearthnet-examples").iterdir()) == [
        "BigEarthNet-S1-Example",
        "BigEarthNet-S2-Example",
    ]


def test_extraction_is_idempotent(examples, cache):
    root = cache / "bigearthnet-examples"
    marker = root / "BigEarthNet-S2-Example" / "marker"
    marker.touch()  # a re-extraction would replace the folder and lose this file
    try:
        assert bigearthnet_examples(cache_dir=root) == examples
        assert marker.exists()
    finally:
        marker.unlink()


def test_unsafe_archive_members_are_rejected(tmp_path):
    for bad in ("../escape.txt", "/tmp/abs.txt", "Top/../../escape.txt", "Other/file.txt"):
        archive = tmp_path / "bad.tar"
        with tarfile.open(archive, "w") as tar:
            info = tarfile.TarInfo(bad)  # built by hand: tar.add() would strip the leading '/'
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        dest = tmp_path / "dest"
        with pytest.raises(RuntimeError, match="unsafe"):
            extract_archive(archive, dest / "Top", member="Top", only_member=True)
        assert not (dest / "Top").exists() and not (tmp_path / "escape.txt").exists()
        assert list(dest.iterdir()) == []  # the temporary folder was cleaned up
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("Top/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(RuntimeError, match="not a regular file"):
        extract_archive(link, tmp_path / "dest2" / "Top", member="Top", only_member=True)


def test_missing_package_message(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bigearthnet_common" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install --no-deps bigearthnet-common==2\.8\.0"):
        bigearthnet_examples(cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------- reading
def test_s2_stack(arrays, examples):
    s2, _, profiles, _ = arrays
    assert s2.shape == (6, 12, 120, 120) and s2.dtype == np.float32
    assert np.isfinite(s2).all()
    assert s2.min() >= 0  # uint16 reflectance x 10000
    assert (s2 <= 10000).mean() > 0.99  # mostly within 0-10000 ...
    snowy = [i for i, e in enumerate(examples) if e.name == SNOWY]
    assert s2[snowy].max() > 10000  # ... but the snowy February patch exceeds 1.0 reflectance
    for p in profiles:
        assert p["count"] == 12 and (p["width"], p["height"]) == (120, 120) and p["transform"].a == 10.0


def test_s2_band_order_and_resampling(arrays, examples):
    s2 = arrays[0]
    e = examples[0]
    with rasterio.open(e.s2_dir / f"{e.name}_B04.tif") as src:  # a 10 m band comes through unchanged
        np.testing.assert_array_equal(s2[0, S2_L2A_BANDS.index("B04")], src.read(1).astype(np.float32))
    for band, native in (("B05", 60), ("B01", 20)):  # 20 m / 60 m bands are interpolated to 120 x 120
        with rasterio.open(e.s2_dir / f"{e.name}_{band}.tif") as src:
            raw = src.read(1).astype(np.float64)
        assert raw.shape == (native, native)
        up = s2[0, S2_L2A_BANDS.index(band)]
        assert abs(up.mean() - raw.mean()) < 0.02 * raw.mean()
        assert raw.min() <= up.min() and up.max() <= raw.max()  # bilinear never overshoots


def test_s1_stack(arrays):
    _, s1, _, profiles = arrays
    assert s1.shape == (6, 2, 120, 120) and s1.dtype == np.float32
    assert np.isfinite(s1).all()
    med = np.median(s1, axis=(2, 3))
    assert (med < 0).all()  # backscatter in dB
    assert (med[:, S1_BANDS.index("VH")] < med[:, S1_BANDS.index("VV")]).all()  # cross-pol is weaker
    assert (s1 < 0).mean() > 0.99  # a few bright scatterers reach positive dB
    for p in profiles:
        assert p["count"] == 2 and p["transform"].a == 10.0


def test_s1_and_s2_are_coregistered(arrays):
    _, _, p2, p1 = arrays
    for a, b in zip(p2, p1):
        assert a["crs"] == b["crs"] and a["transform"] == b["transform"]


def test_missing_band_file_is_named(examples, tmp_path):
    patch = tmp_path / examples[0].name
    shutil.copytree(examples[0].s2_dir, patch)
    (patch / f"{patch.name}_B8A.tif").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{patch.name}_B8A\.tif.*<patch>/<patch>_<band>\.tif"):
        read_bigearthnet_s2(patch)
    with pytest.raises(FileNotFoundError, match="patch folder not found"):
        read_bigearthnet_s1(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------- labels
def test_labels_to_bigearthnet19(examples):
    targets = np.stack([to_bigearthnet19(read_labels(e.s2_dir)) for e in examples])
    assert targets.shape == (6, 19) and set(np.unique(targets)) <= {0.0, 1.0}
    assert (targets.sum(axis=1) >= 1).all()  # every example keeps at least one 19-class label
    first = dict(zip((e.name for e in examples), targets))["S2A_MSIL2A_20170613T101031_87_48"]
    assert [BIGEARTHNET19_LABELS[i] for i in np.flatnonzero(first)] == [
        "Arable land",
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
    ]


def test_label_mapping_edge_cases():
    assert len(BIGEARTHNET43_LABELS) == 43 and len(BIGEARTHNET19_LABELS) == 19
    assert sum(v is None for v in BIGEARTHNET43_TO_19.values()) == 11
    assert to_bigearthnet19(["Airports", "Burnt areas"]).sum() == 0  # dropped classes give an empty target
    assert to_bigearthnet19(["peatbogs", "Inland marshes"]).tolist().count(1) == 1  # merged, case-insensitive
    with pytest.raises(ValueError, match="Did you mean 'Pastures'"):
        to_bigearthnet19(["Pasture"])


def test_label_mapping_matches_bigearthnet_common():
    # Cross-check our table against the package's constants without importing them (natsort/rich needed).
    import importlib.util

    origin = Path(importlib.util.find_spec("bigearthnet_common").origin).with_name("constants.py")
    found = {}
    for node in ast.parse(origin.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("OLD2NEW_LABELS_DICT", "NEW_LABELS_ORIGINAL_ORDER"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    assert tuple(found["NEW_LABELS_ORIGINAL_ORDER"]) == BIGEARTHNET19_LABELS
    theirs = found["OLD2NEW_LABELS_DICT"]
    assert tuple(theirs) == BIGEARTHNET43_LABELS
    assert {k: (None if v is None else BIGEARTHNET19_LABELS.index(v)) for k, v in theirs.items()} == BIGEARTHNET43_TO_19


# ---------------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(("index", "key"), [(0, "S2-L2A"), (1, "S1-GRD")])
def test_normalised_range(arrays, index, key):
    raw = arrays[index]
    stats = normalization_stats(key)
    y = SmartiesNormalize.from_stats(key)(torch.from_numpy(raw)).numpy()
    assert np.isfinite(y).all()
    lo = (-stats.mean / stats.std)[:, None, None]
    hi = ((1 - stats.mean) / stats.std)[:, None, None]
    assert (y >= lo - 1e-5).all() and (y <= hi + 1e-5).all()
    np.testing.assert_allclose(normalize(raw, stats), y, rtol=1e-6, atol=1e-6)
    assert 0 < np.mean((y > lo + 1e-5) & (y < hi - 1e-5))  # not everything clipped


def test_snowy_patch_saturates(arrays, examples):
    y = normalize(arrays[0], "S2-L2A")
    hi = ((1 - normalization_stats("S2-L2A").mean) / normalization_stats("S2-L2A").std)[:, None, None]
    clipped = np.isclose(y, hi, atol=1e-5).mean(axis=(1, 2, 3))
    names = [e.name for e in examples]
    assert clipped[names.index(SNOWY)] > 0.2 and clipped.max() == clipped[names.index(SNOWY)]


# ---------------------------------------------------------------------------------------------- encoding
def test_resized_inputs(model_inputs):
    x2, x1 = model_inputs
    assert x2.shape == (6, 12, 224, 224) and x1.shape == (6, 2, 224, 224)
    assert torch.isfinite(x2).all() and torch.isfinite(x1).all()


@torch.no_grad()
def test_encode_s2_and_s1(model, model_inputs):
    x2, x1 = model_inputs
    f2 = model(x2, sensor="S2-L2A")
    f1 = model(x1, sensor="S1")
    assert f2.shape == f1.shape == (6, 64)
    assert torch.isfinite(f2).all() and torch.isfinite(f1).all()
    assert not torch.allclose(f2[0], f2[1])  # different patches, different features
    # The statistics' band names drive the model just as well as the sensor preset.
    torch.testing.assert_close(model(x2, bands=normalization_stats("S2-L2A").bands), f2)


@torch.no_grad()
def test_encode_s1_s2_fusion(model, model_inputs):
    x2, x1 = model_inputs
    early = model.forward_multimodal({"S2": x2, "S1": x1}, fusion="early")
    late = model.forward_multimodal({"S2": x2, "S1": x1}, fusion="late")
    assert early.shape == (6, 64) and late.shape == (6, 128)
    assert torch.isfinite(early).all() and torch.isfinite(late).all()
    torch.testing.assert_close(late[:, :64], model(x2, sensor="S2-L2A"))  # late = per-source features side by side
    torch.testing.assert_close(late[:, 64:], model(x1, sensor="S1"))


@torch.no_grad()
def test_encode_at_128(model, arrays):
    x = resize_to(torch.from_numpy(normalize(arrays[0][:2], "S2-L2A")), 128)
    assert model(x, sensor="S2").shape == (2, 64)
