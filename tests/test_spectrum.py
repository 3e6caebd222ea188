"""Band resolver: presets, spellings, wavelengths, averaged weights and every error case."""

from __future__ import annotations

import pytest

from smarties_terratorch.spectrum import (
    averaging_weights,
    get_sensor,
    resolve_bands,
    resolve_wavelength,
    sensor_presets,
    spectral_ranges,
)

S2_L2A = [0, 1, 4, 6, 7, 8, 10, 9, 11, 12, 13, 14]


def test_catalogue_is_the_released_table() -> None:
    ranges = spectral_ranges()
    assert len(ranges) == 20
    assert sorted(r.projection_index for r in ranges.values()) == [-1, *range(19)]
    assert ranges["thermal_infrared_1"].averaged_from == (14, 15)
    assert ranges["blue_2"].averaged_from == (0, 1)
    assert ranges["microwave_1"].centre == 55_500_000


@pytest.mark.parametrize(
    ("sensor", "indices"),
    [
        ("S2-L2A", S2_L2A),
        ("S2", S2_L2A),
        ("S2-L1C", S2_L2A),
        ("S1", [15, 16]),
        ("S1-GRD", [15, 16]),
        ("RGB", [5, 3, 2]),
        ("HLS", [1, 4, 6, 11, 13, 14]),
        ("L8", [0, 18, 4, 6, 11, 13, 14, 17]),
        ("Landsat-9", [0, 18, 4, 6, 11, 13, 14, 17]),
        ("PlanetScope", [1, 4, 6, 9]),
    ],
)
def test_preset_defaults(sensor: str, indices: list[int]) -> None:
    assert resolve_bands(sensor=sensor).projection_indices == indices


def test_landsat7_reaches_smarties_by_wavelength() -> None:
    bands = resolve_bands(sensor="L7")
    assert bands.range_keys == [None, "green_2", "red_2", "near_infrared_1", "short_wave_infrared_3", "short_wave_infrared_4"]
    # B1 (450-515 nm) is not a learned range: aerosol/blue_1 average, like Landsat-8 B2.
    assert [k for k, _ in bands[0].sources] == [0, 1]


def test_spellings_and_enum_members() -> None:
    from terratorch.datasets.utils import HLSBands, SARBands

    assert resolve_bands(["B1", "b02", "B8a", "B08"]).range_keys == ["aerosol", "blue_1", "near_infrared_3", "near_infrared_1"]
    hls = resolve_bands([HLSBands.BLUE, HLSBands.NIR_NARROW, HLSBands.SWIR_2, SARBands.VV])
    assert hls.projection_indices == [1, 11, 14, 15]
    assert resolve_bands("B04, B03 ,B02").projection_indices == [6, 4, 1]
    assert resolve_bands(["R", "G", "B"], sensor="RGB").projection_indices == [5, 3, 2]
    assert resolve_bands(["red", "green", "blue"], sensor="RGB").projection_indices == [5, 3, 2]


def test_mixed_list_with_qualified_names_and_wavelengths() -> None:
    bands = resolve_bands(["B04", "VV", "RGB:G", "L8:B10", "red_edge_1", 2200, (845, 885)])
    assert bands.projection_indices == [6, 15, 3, 17, 7, 14, 11]


def test_released_averaging_weights() -> None:
    thermal, blue2 = resolve_bands(["thermal_infrared_1", "blue_2"])
    assert [k for k, _ in thermal.sources] == [14, 15]
    assert [w for _, w in thermal.sources] == pytest.approx([1.56871e-4, 0.999843], rel=1e-5)
    assert [w for _, w in blue2.sources] == pytest.approx([0.79, 0.21], rel=1e-12)
    inv = resolve_bands(["thermal_infrared_1", "blue_2"], weighting="inverse_distance")
    assert [w for _, w in inv[0].sources] == pytest.approx([0.999843, 1.56871e-4], rel=1e-5)
    assert [w for _, w in inv[1].sources] == pytest.approx([0.21, 0.79], rel=1e-12)
    assert averaging_weights(5.0, [4.0, 8.0], "released") == pytest.approx((0.25, 0.75))
    assert averaging_weights(5.0, [4.0, 8.0], "inverse_distance") == pytest.approx((0.75, 0.25))


def test_wavelength_rule_reproduces_released_averaged_ranges() -> None:
    assert resolve_wavelength((452, 512)).sources == resolve_bands(["blue_2"])[0].sources
    assert resolve_wavelength((10600, 11190)).sources == resolve_bands(["thermal_infrared_1"])[0].sources


@pytest.mark.parametrize(
    ("query", "key"),
    [(865, "near_infrared_3"), (560, "green_2"), ("665nm", "red_2"), ("0.49um", "blue_1"), ("1550-1750nm", "short_wave_infrared_3"), ((630, 680), "red_2")],
)
def test_wavelength_matches(query: object, key: str) -> None:
    assert resolve_bands([query]).range_keys == [key]


def test_wavelength_between_ranges_is_averaged_between_neighbours() -> None:
    (band,) = resolve_bands([1100])  # between B09 (943.5 nm) and B11 (1610 nm)
    assert band.range_key is None
    assert [k for k, _ in band.sources] == [12, 13]
    assert sum(w for _, w in band.sources) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("bands", "kwargs", "message"),
    [
        (["B10"], {}, "drop this band"),
        (["B01", "B10"], {"sensor": "S2-L1C"}, "cirrus"),
        (["CIRRUS"], {}, "drop this band"),
        (["short_wave_infrared_2"], {}, "no learned"),
        (["THERMAL_INFRARED_2"], {}, "11500, 12510"),
        (["L8:B9"], {}, "cirrus"),
        (["B13"], {}, "'B12'"),
        (["nir_narow"], {}, "Accepted"),
        (["red"], {}, "ambiguous"),
        (["NIR"], {}, "ambiguous"),
        (["B04", "red_2"], {}, "allow_duplicates"),
        ([], {}, "empty"),
        ([0.665], {}, "nanometres"),
        ([(700, 600)], {}, "min < max"),
        ([300], {}, "outside"),
        (["L9:B99"], {}, "L8"),
        (["XX:B1"], {}, "Unknown sensor"),
        (None, {}, "sensor="),
        (["B04"], {"weighting": "linear"}, "weighting"),
    ],
)
def test_errors(bands: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_bands(bands, **kwargs)


def test_unknown_sensor_suggests() -> None:
    with pytest.raises(ValueError, match="S2-L2A"):
        get_sensor("S2-L2")


def test_bad_type() -> None:
    with pytest.raises(TypeError, match="expected a name"):
        resolve_bands([{"B04": 1}])


def test_deliberate_duplicates() -> None:
    tiled = resolve_bands(["VV", "VH"] * 6, allow_duplicates=True)
    assert tiled.projection_indices == [15, 16] * 6


def test_dataset_override_for_misleading_names() -> None:
    # DynamicEarthNet calls Planet's NIR band "B5": without the override it would be S2 red-edge.
    assert resolve_bands(["B2", "B3", "B4", "B5"]).projection_indices[-1] == 7
    bands = resolve_bands(["B2", "B3", "B4", "B5"], overrides={"B5": "near_infrared_1"})
    assert bands.projection_indices == [1, 4, 6, 9]
    assert "override" in bands[3].rule


def test_describe_lists_every_band() -> None:
    text = resolve_bands(["B04", "L8:B2"]).describe()
    assert "red_2" in text and "0.79*P0 + 0.21*P1" in text


def test_every_preset_band_resolves_or_rejects_clearly() -> None:
    for preset in sensor_presets().values():
        for band, rule in preset.bands.items():
            if isinstance(rule, dict) and "reject" in rule:
                with pytest.raises(ValueError, match=band):
                    resolve_bands([f"{preset.name}:{band}"])
            else:
                assert len(resolve_bands([f"{preset.name}:{band}"])) == 1


def test_planetscope_one_letter_colour_names_resolve_with_the_sensor() -> None:
    """PlanetScope's bands are often written B, G, R, NIR: with sensor='PlanetScope' they are that preset's bands."""
    short = resolve_bands(["B", "G", "R", "NIR"], sensor="PlanetScope")
    full = resolve_bands(["BLUE", "GREEN", "RED", "NIR"], sensor="PlanetScope")
    assert short.projection_indices == full.projection_indices == [1, 4, 6, 9]
    assert "B = BLUE" in short[0].rule


@pytest.mark.parametrize(("bands", "sensor"), [(["B", "G", "R", "Y"], "PlanetScope"), (["NIR"], "RGB")])
def test_ambiguous_name_with_a_sensor_says_it_is_not_a_band_of_that_sensor(bands: list[str], sensor: str) -> None:
    with pytest.raises(ValueError, match=r"Unknown band '\w+' in sensor '\w+' \(bands: ") as info:
        resolve_bands(bands, sensor=sensor)
    assert "without a sensor" not in str(info.value)


def test_upper_case_red_is_terratorchs_name_and_lower_case_is_ambiguous() -> None:
    assert resolve_bands(["RED"]).range_keys == resolve_bands(["B04"]).range_keys == ["red_2"]
    for name in ("R", "red", "NIR"):
        with pytest.raises(ValueError, match="ambiguous without a sensor"):
            resolve_bands([name])


@pytest.mark.parametrize("spelling", ["BLUE", "B02", "B2", "S2:B02", "blue_1", 490, "490nm"])
def test_one_vocabulary_for_blue(spelling) -> None:
    assert resolve_bands([spelling]).range_keys == ["blue_1"]
