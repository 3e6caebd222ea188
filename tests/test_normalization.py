"""SMARTIES normalisation statistics, the two-step normalisation and resizing."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from smarties_terratorch.normalization import (
    SmartiesNormalize,
    Stats,
    normalization_stats,
    normalize,
    resize_to,
    stats_names,
)

ALL_KEYS = ["RGB", "S2-L1C", "S2-L2A", "S1-GRD", "EuroSAT", "WHU-RS19", "UC-Merced", "RESISC45", "DFC2020"]
S2_L2A = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


# ---------------------------------------------------------------------------------------------- tables
def test_all_tables_present_and_consistent():
    assert stats_names() == ALL_KEYS
    for key in ALL_KEYS:
        full = normalization_stats(key, all_bands=True)
        used = normalization_stats(key)
        assert full.name == used.name == key
        assert len(full.file_bands) == len(full) and full.positions == tuple(range(len(full)))
        assert used.file_bands == full.file_bands
        assert np.all(full.p99 > full.p1) and np.all(full.std > 0)
        assert np.all((full.mean > 0) & (full.mean < 1)), "mean/std are in [0, 1] units (after the percentile step)"
        for i, pos in enumerate(used.positions):  # used rows are the file rows at those positions
            assert used.bands[i] == full.bands[pos] and used.p99[i] == full.p99[pos]


@pytest.mark.parametrize(
    ("key", "band", "expected"),
    [
        ("S2-L2A", "B04", (0.19835, 0.19246, 12.495, 2829.49)),
        ("S2-L2A", "B01", (0.11505, 0.14282, 1.0, 2811.45)),
        ("S2-L1C", "B12", (0.34670, 0.25318, 5.460, 4007.81)),
        ("S1-GRD", "VH", (0.60353, 0.22883, -33.421, -9.905)),
        ("RGB", "R", (0.39975, 0.27239, 2.2542, 254.825)),
        ("EuroSAT", "B8A", (0.47681, 0.23559, 119, 5312)),
        ("WHU-RS19", "B", (0.39491, 0.23854, 6.691, 249.438)),
        ("RESISC45", "G", (0.36609, 0.21009, 15.394, 238.422)),
        ("DFC2020", "B11", (0.4877, 0.1745, 0, 255)),
    ],
)
def test_released_numbers(key, band, expected):
    s = normalization_stats(key).select([band])
    assert (s.mean[0], s.std[0], s.p1[0], s.p99[0]) == expected  # copied exactly, no rounding


def test_uc_merced_reuses_rgb_mean_std_but_not_percentiles():
    ucm, rgb = normalization_stats("UC-Merced"), normalization_stats("RGB")
    np.testing.assert_array_equal(ucm.mean, rgb.mean)
    np.testing.assert_array_equal(ucm.std, rgb.std)
    assert not np.array_equal(ucm.p1, rgb.p1)


def test_aliases_and_case():
    assert normalization_stats("s2").name == "S2-L2A"
    assert normalization_stats("S1").name == "S1-GRD"
    assert normalization_stats("s1_grd").name == "S1-GRD"
    assert normalization_stats("eurosat").name == "EuroSAT"
    assert normalization_stats("BigEarthNet-S2").name == "S2-L2A"
    assert normalization_stats("S2-L2A").sensor == "S2-L2A" and normalization_stats("RESISC45").sensor == "RGB"


def test_unknown_name_lists_known_keys():
    with pytest.raises(ValueError, match="Known: RGB, S2-L1C, S2-L2A, S1-GRD, EuroSAT"):
        normalization_stats("Landsat-9")


def test_stats_are_read_only():
    s = normalization_stats("S2-L2A")
    with pytest.raises(ValueError):
        s.mean[0] = 0.5
    with pytest.raises(TypeError):
        s.info["units"] = "x"


# ---------------------------------------------------------------------------------------------- band positions
def test_eurosat_drops_b10_by_position():
    s = normalization_stats("EuroSAT")
    assert s.positions == (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12)
    assert "B10" not in s.bands and s.bands[-1] == "B8A"  # EuroSAT's file order keeps B8A last
    assert len(normalization_stats("EuroSAT", all_bands=True)) == 13
    # take() applies the same positions to a 13-channel file as to the statistics.
    image = np.broadcast_to(np.arange(13, dtype=np.float32)[:, None, None], (13, 4, 4))
    picked = s.take(image)
    assert picked.shape == (12, 4, 4)
    assert picked[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
    batch = torch.from_numpy(np.ascontiguousarray(image)).expand(2, 13, 4, 4)
    assert s.take(batch)[1, :, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
    with pytest.raises(ValueError, match="13 channels"):
        s.take(image[:12])


def test_l1c_and_dfc2020_positions():
    assert normalization_stats("S2-L1C").positions == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12)
    assert normalization_stats("S2-L1C").bands == S2_L2A
    dfc = normalization_stats("DFC2020")
    assert dfc.positions == tuple(range(12)) and dfc.bands == S2_L2A
    assert normalization_stats("DFC2020", all_bands=True).bands[-2:] == ("VV", "VH")


# ---------------------------------------------------------------------------------------------- selection
def test_select_by_name_in_given_order():
    s = normalization_stats("S2-L2A").select(["B04", "B03", "B02"])
    assert s.bands == ("B04", "B03", "B02") and s.positions == (3, 2, 1)
    np.testing.assert_array_equal(s.p99, [2829.49, 2580.36, 2604.77])
    np.testing.assert_array_equal(s.mean, [0.19835, 0.21661, 0.14821])


def test_select_accepts_unpadded_and_lowercase_codes():
    full = normalization_stats("S2-L2A")
    a = full.select(["B4", "b8a", "B08"])
    assert a.bands == ("B04", "B8A", "B08")
    assert full.select("B02, B03").bands == ("B02", "B03")


def test_select_unknown_band_names_available_ones():
    with pytest.raises(ValueError, match=r"Available bands: B01 \(= COASTAL_AEROSOL\), B02 \(= BLUE\).*B12"):
        normalization_stats("S2-L2A").select(["B13"])
    with pytest.raises(ValueError, match="does not use it"):
        normalization_stats("EuroSAT").select(["B10"])
    assert normalization_stats("EuroSAT", all_bands=True).select(["B10"]).positions == (9,)


# ---------------------------------------------------------------------------------------------- normalisation
def _b04() -> SmartiesNormalize:
    return SmartiesNormalize.from_stats("S2-L2A", bands=["B04"])


def test_matches_hand_computation():
    x = torch.tensor([1000.0, 12.495, 2829.49]).view(1, 3, 1)
    y = _b04()(x).flatten().tolist()
    assert y[0] == pytest.approx(0.7908273297772962, rel=1e-5)  # ((1000-12.495)/2816.995 - 0.19835) / 0.19246
    assert y[1] == pytest.approx(-0.19835 / 0.19246, rel=1e-5)
    assert y[2] == pytest.approx((1 - 0.19835) / 0.19246, rel=1e-5)
    # S1 (negative dB percentiles) and EuroSAT (integer percentiles)
    s1 = SmartiesNormalize.from_stats("S1-GRD", bands=["VV"])(torch.full((1, 1, 1), -20.0))
    assert s1.item() == pytest.approx(-1.4928072946814328, rel=1e-5)
    eu = SmartiesNormalize.from_stats("EuroSAT", bands=["B04"])(torch.full((1, 1, 1), 500.0))
    assert eu.item() == pytest.approx(-0.7710365763800878, rel=1e-5)


def test_clip_at_percentiles():
    lo, hi = -0.19835 / 0.19246, (1 - 0.19835) / 0.19246
    x = torch.tensor([-5.0, 0.0, 12.495, 2829.49, 2900.0, 65535.0, -math.inf, math.inf]).view(1, 1, 8)
    y = _b04()(x).flatten()
    torch.testing.assert_close(y[:3], torch.full((3,), lo))
    torch.testing.assert_close(y[3:6], torch.full((3,), hi))
    torch.testing.assert_close(y[6:], torch.tensor([lo, hi]))


def test_per_channel_and_shapes():
    norm = SmartiesNormalize.from_stats("S2-L2A")
    stats = normalization_stats("S2-L2A")
    x = torch.rand(2, 3, 12, 5, 5) * 4000  # [..., C, H, W] with two leading dims
    y = norm(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    torch.testing.assert_close(norm(x[0, 0]), y[0, 0])  # [C, H, W]
    torch.testing.assert_close(norm(x[0]), y[0])  # [B, C, H, W]
    c = 7  # each channel uses its own statistics
    expected = ((x[..., c, :, :] - stats.p1[c]) / (stats.p99[c] - stats.p1[c])).clamp(0, 1)
    torch.testing.assert_close(y[..., c, :, :], (expected - stats.mean[c]) / stats.std[c])
    with pytest.raises(ValueError, match="C = 12"):
        norm(torch.zeros(1, 3, 5, 5))


def test_integer_input_is_promoted():
    norm = SmartiesNormalize.from_stats("RGB")
    x = torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)
    y = norm(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, norm(x.float()))


def test_numpy_path_matches_module():
    rng = np.random.default_rng(0)
    x = rng.uniform(-40, 5, size=(4, 2, 8, 8)).astype(np.float32)
    y = normalize(x, "S1-GRD")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, SmartiesNormalize.from_stats("S1")(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=1e-6)
    sub = normalization_stats("S2-L2A").select(["B08"])
    np.testing.assert_allclose(normalize(np.full((1, 2, 2), 1.0), sub), (0.0 - 0.39942) / 0.24100, rtol=1e-6)


def test_nan_stays_nan_unless_nan_to():
    x = torch.tensor([float("nan"), 1000.0]).view(1, 1, 2)
    y = _b04()(x).flatten()
    assert torch.isnan(y[0]) and torch.isfinite(y[1])
    filled = SmartiesNormalize.from_stats("S2-L2A", bands=["B04"], nan_to=0.0)(x).flatten()
    assert filled[0].item() == 0.0 and filled[1].item() == pytest.approx(y[1].item())
    assert np.isnan(normalize(x.numpy(), normalization_stats("S2-L2A").select(["B04"]))[0, 0, 0])
    assert normalize(x.numpy(), normalization_stats("S2-L2A").select(["B04"]), nan_to=-9.0)[0, 0, 0] == -9.0


def test_explicit_arrays_buffers_and_device():
    norm = SmartiesNormalize([0.5, 0.5], [0.25, 0.5], [0.0, -10.0], [100.0, 10.0], bands=["a", "b"])
    assert {n for n, _ in norm.named_buffers()} == {"mean", "std", "p1", "p99"}
    assert norm.state_dict() == {}  # statistics come from config, not from checkpoints
    y = norm(torch.tensor([50.0, 0.0]).view(2, 1, 1)).flatten()
    torch.testing.assert_close(y, torch.tensor([0.0, 0.0]))
    meta = norm.to("meta")  # .to(device) moves the statistics with the module
    assert meta.p99.device.type == "meta"
    assert "bands=['a', 'b']" in repr(norm)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(mean=[0.5], std=[0.0], p1=[0.0], p99=[1.0]), "std must be > 0"),
        (dict(mean=[0.5], std=[0.1], p1=[5.0], p99=[5.0]), "p99 must be > p1"),
        (dict(mean=[0.5, 0.5], std=[0.1], p1=[0.0], p99=[1.0]), "same length"),
    ],
)
def test_invalid_statistics(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SmartiesNormalize(**kwargs)


def test_stats_dataclass_validates():
    with pytest.raises(ValueError, match="same length"):
        Stats("x", ("a",), [0.5], [0.1], [0.0], [1.0], positions=(0, 1), file_bands=("a", "b"))


# ---------------------------------------------------------------------------------------------- resize
def test_resize_to_shapes_and_constant():
    x = torch.full((12, 120, 120), 0.3)
    y = resize_to(x)
    assert y.shape == (12, 224, 224)
    torch.testing.assert_close(y, torch.full_like(y, 0.3))  # interpolation preserves a constant image
    assert resize_to(torch.rand(2, 3, 64, 64), (96, 128)).shape == (2, 3, 96, 128)
    assert resize_to(torch.zeros(3, 8, 8, dtype=torch.uint8), 16, mode="nearest").dtype == torch.float32
    same = torch.rand(1, 2, 224, 224)
    assert resize_to(same) is same
    with pytest.raises(ValueError, match="C, H, W"):
        resize_to(torch.zeros(8, 8))


def test_resize_to_antialias():
    noise = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    smooth = resize_to(noise, 16, antialias=True)
    aliased = resize_to(noise, 16, antialias=False)
    assert smooth.std() < 0.5 * aliased.std()  # anti-aliasing averages the fine noise out
    # In torch, antialias=True also switches bicubic to the PIL-style kernel, even when upsampling: small changes.
    up = torch.rand(1, 2, 12, 12, generator=torch.Generator().manual_seed(1))
    diff = (resize_to(up, 24, antialias=True) - resize_to(up, 24, antialias=False)).abs().max()
    assert 0 < diff < 0.2


def test_albumentations_transform_is_built_lazily_and_pickles():
    import pickle
    import subprocess
    import sys

    code = (
        "import sys, smarties_terratorch.normalization as t; assert 'albumentations' not in sys.modules; "
        "t.SmartiesAlbumentationsNormalize; assert 'albumentations' in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0
    from smarties_terratorch.normalization import SmartiesAlbumentationsNormalize

    t = SmartiesAlbumentationsNormalize({"mean": [0.5], "std": [0.25], "p1": [0.0], "p99": [10.0]})
    again = pickle.loads(pickle.dumps(t))  # DataLoader workers receive it pickled
    img = np.array([[[5.0], [20.0]]], dtype=np.float32)  # [H=1, W=2, C=1]
    assert again(image=img)["image"].ravel().tolist() == [0.0, 2.0]  # (0.5 - 0.5) / 0.25, (1 - 0.5) / 0.25
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        import smarties_terratorch.normalization as mod

        mod.Nope  # noqa: B018


def test_normalize_in_place_path_equals_the_differentiable_one() -> None:
    """Inputs without grad are normalised in place on one temporary; the values equal the out-of-place steps."""
    norm = SmartiesNormalize.from_spec("S2-L2A")
    x = torch.rand(2, 12, 16, 16) * 12000
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[1, 2, 3, 4] = float("nan"), float("inf"), -float("inf")
    before = x.clone()
    fast = norm(x)
    slow = norm(x.clone().requires_grad_(True))
    assert torch.equal(x.nan_to_num(nan=123.0), before.nan_to_num(nan=123.0))  # the input is never modified
    assert torch.equal(torch.nan_to_num(fast, nan=123.0), torch.nan_to_num(slow.detach(), nan=123.0))


# ---------------------------------------------------------------------------------------------- one band vocabulary
@pytest.mark.parametrize("spelling", ["B02", "B2", "b02", "BLUE", "S2:B02", "S2-L2A:B2", "blue_1", 490, "490nm"])
def test_statistics_rows_by_any_band_spelling(spelling) -> None:
    assert normalization_stats("S2-L2A").select([spelling, "B04"]).bands == ("B02", "B04")


def test_statistics_rows_in_the_tables_sensor_vocabulary() -> None:
    assert normalization_stats("RGB").select(["RED", "G", "blue_3"]).bands == ("R", "G", "B")
    norm = SmartiesNormalize.from_spec("S2-L2A", bands=["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"])
    assert norm.bands == ("B02", "B03", "B04", "B8A", "B11", "B12")


def test_unknown_band_lists_the_accepted_names() -> None:
    with pytest.raises(ValueError, match=r"'NIRR' is not in the S2-L2A statistics.*Close matches.*B02 \(= BLUE\)"):
        normalization_stats("S2-L2A").select(["NIRR"])
    with pytest.raises(ValueError, match="CIRRUS.*no learned SMARTIES projection"):
        normalization_stats("S2-L1C").select(["CIRRUS"])
    with pytest.raises(ValueError, match="'B10' is a channel of the S2-L1C file but SMARTIES does not use it"):
        normalization_stats("S2-L1C").select(["B10"])


# ---------------------------------------------------------------------------------------------- units
from smarties_terratorch.normalization import UnitsWarning, expected_units  # noqa: E402

HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def test_expected_units_of_every_table() -> None:
    units = {key: normalization_stats(key).units for key in ALL_KEYS}
    assert units == {"RGB": "8bit", "S2-L1C": "dn", "S2-L2A": "dn", "S1-GRD": "db", "EuroSAT": "dn",
                     "WHU-RS19": "8bit", "UC-Merced": "8bit", "RESISC45": "8bit", "DFC2020": "8bit"}  # fmt: skip
    assert expected_units([0.001, 0.002], [0.4, 0.6]) == "unit"


def _dn(seed: int = 0, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 6, size, size, generator=g) * 3000 + 100).round()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("digital numbers", lambda: _dn()),
        ("dark water", lambda: _dn() / 20 + 20),
        ("bright clouds", lambda: _dn() + 5000),
        ("nodata zeros and NaN", lambda: torch.cat([_dn()[:, :, :32], torch.zeros(2, 6, 16, 64),
                                                    torch.full((2, 6, 16, 64), float("nan"))], dim=2)),
    ],
)  # fmt: skip
def test_correct_data_never_warns(name: str, make) -> None:
    norm = SmartiesNormalize.from_spec("S2-L2A", HLS, check_units=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)
        norm(make())
    assert norm.check_units(make()) == ""


@pytest.mark.parametrize(
    ("table", "x"),
    [
        ("S1-GRD", -torch.rand(2, 2, 32, 32) * 25 - 3),
        ("RGB", torch.rand(2, 3, 32, 32) * 255),
        ({"mean": [0.3] * 2, "std": [0.2] * 2, "p1": [0.01, 0.02], "p99": [0.4, 0.6]}, torch.rand(2, 2, 32, 32) * 0.5),
    ],
)  # fmt: skip
def test_correct_data_never_warns_in_other_units(table, x: torch.Tensor) -> None:
    assert SmartiesNormalize.from_spec(table, check_units=True).check_units(x) == ""


@pytest.mark.parametrize(
    ("table", "bands", "x", "fix"),
    [
        ("S2-L2A", HLS, _dn() / 10000, "constant_scale: 10000"),  # 0-1 reflectance for DN statistics
        ("S2-L2A", HLS, _dn() * 10000, "remove constant_scale: 10000"),  # DN scaled once more
        ("S2-L2A", HLS, None, "looks already normalised"),  # normalised twice
        ("RGB", None, torch.rand(2, 3, 32, 32), "multiply them by 255"),
        ("S1-GRD", None, torch.rand(2, 2, 32, 32) * 0.3, "10 \\* log10"),
        ({"bands": HLS, "mean": [0.3] * 6, "std": [0.2] * 6, "p1": [0.01] * 6, "p99": [0.4] * 6}, HLS, _dn(),
         "Remove constant_scale: 10000"),  # fmt: skip
    ],
)
def test_wrong_units_warn_once_with_the_fix(table, bands, x, fix: str) -> None:
    norm = SmartiesNormalize.from_spec(table, bands, check_units=True)
    if x is None:
        x = SmartiesNormalize.from_spec(table, bands)(_dn())
    with pytest.warns(UnitsWarning, match=fix):
        norm(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)
        norm(x)  # once


def test_units_are_not_checked_unless_asked() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitsWarning)
        SmartiesNormalize.from_spec("S2-L2A", HLS)(_dn() / 10000)


def test_missing_statistics_file_says_where_and_what_else(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"yaml not found \(relative to the working directory.*inline"):
        SmartiesNormalize.from_spec("nope/stats.yaml")
