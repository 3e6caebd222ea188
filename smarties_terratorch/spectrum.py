"""SMARTIES' spectral ranges, sensor presets and the band resolver.

SMARTIES has one learned ``Linear(16*16 -> D)`` projection per *spectral range* (17 learned ranges), and
two ranges whose projection is a weighted average of two learned ones (Landsat-8 ``blue_2`` and
``thermal_infrared_1``). :func:`resolve_bands` is the single place where what a user writes (a range key,
a sensor band name, a TerraTorch ``HLSBands`` member or a wavelength) becomes the projection weights of
one input channel. It never zero-fills and never guesses silently: unknown, ambiguous or unsupported
bands raise :class:`ValueError` with the accepted alternatives.

The tables ship as package data: ``data/spectrum.csv`` (the released range table) and
``data/sensors.yaml`` (sensor presets).
"""

from __future__ import annotations

import csv
import difflib
import enum
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Union

import yaml

__all__ = [
    "NUM_LEARNED_RANGES",
    "WEIGHTINGS",
    "BandLike",
    "ResolvedBand",
    "ResolvedBands",
    "SensorPreset",
    "SpectralRange",
    "averaging_weights",
    "concat_bands",
    "get_sensor",
    "resolve_bands",
    "resolve_wavelength",
    "sensor_presets",
    "spectral_ranges",
]

#: Number of learned projections (indices 0-16) in the released checkpoints.
NUM_LEARNED_RANGES = 17
#: Weightings for averaged projections: ``released`` (weights proportional to the spectral distance, as in
#: the authors' code and the released model) and ``inverse_distance`` (the paper's interpolation).
WEIGHTINGS = ("released", "inverse_distance")
#: An interval query matches a learned range when their intersection-over-union reaches this value.
MATCH_IOU = 0.5

BandLike = Union[str, float, int, tuple[float, float], enum.Enum]


@dataclass(frozen=True)
class SpectralRange:
    """One row of ``spectrum.csv``."""

    key: str
    label: str
    min_nm: float
    max_nm: float
    projection_index: int
    averaged_from: tuple[int, ...]
    sensors: tuple[str, ...]

    @property
    def centre(self) -> float:
        return (self.min_nm + self.max_nm) / 2

    @property
    def learned(self) -> bool:
        return 0 <= self.projection_index < NUM_LEARNED_RANGES

    @property
    def averaged(self) -> bool:
        return bool(self.averaged_from)


@functools.cache
def spectral_ranges() -> dict[str, SpectralRange]:
    """The 20 spectral ranges of the released model, keyed by range key (``red_2``, ``microwave_1``, ...)."""
    text = resources.files("smarties_terratorch").joinpath("data/spectrum.csv").read_text()
    ranges = {}
    for row in csv.DictReader(text.splitlines()):
        avg = tuple(int(i) for i in row["averaged_from"].split(";") if int(i) >= 0)
        ranges[row["key"]] = SpectralRange(
            key=row["key"],
            label=row["label"],
            min_nm=float(row["min_nm"]),
            max_nm=float(row["max_nm"]),
            projection_index=int(row["projection_index"]),
            averaged_from=avg,
            sensors=tuple(row["sensors"].split(";")),
        )
    return ranges


@functools.cache
def _learned_by_index() -> tuple[SpectralRange, ...]:
    learned = sorted((r for r in spectral_ranges().values() if r.learned), key=lambda r: r.projection_index)
    assert [r.projection_index for r in learned] == list(range(NUM_LEARNED_RANGES))
    return tuple(learned)


@functools.cache
def _wavelength_candidates() -> tuple[SpectralRange, ...]:
    # The VHR RGB ranges model 8-bit commercial imagery, so a bare wavelength never picks them; they are
    # reached by name (sensor "RGB"). With this candidate set the wavelength rule reproduces both released
    # averaged ranges (blue_2 = aerosol/blue_1, thermal_infrared_1 = B12/VV).
    return tuple(r for r in _learned_by_index() if r.sensors != ("RGB",))


def averaging_weights(centre: float, source_centres: Sequence[float], weighting: str = "released") -> tuple[float, ...]:
    """Weights of the learned projections that make up an averaged projection.

    With ``d_i = |centre - source_centres[i]|``:

    - ``released``: ``w_i = d_i / sum(d)``; the weight *grows* with spectral distance. This is what the
      authors' code computes and what the released numbers were produced with (parity default).
    - ``inverse_distance``: ``w_i = (1/d_i) / sum(1/d)``, i.e. linear interpolation between the two nearest
      learned centres, as the paper describes.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    d = [abs(centre - c) for c in source_centres]
    if weighting == "released":
        return tuple(di / sum(d) for di in d)
    if any(di == 0 for di in d):
        return tuple(float(di == 0) / sum(di == 0 for di in d) for di in d)
    inv = [1 / di for di in d]
    return tuple(i / sum(inv) for i in inv)


@dataclass(frozen=True)
class ResolvedBand:
    """How one input channel is projected.

    Attributes:
        name: the band as the user gave it.
        range_key: the spectral range of ``spectrum.csv``, or ``None`` for a free wavelength that is
            interpolated between two learned ranges.
        sources: ``(learned projection index, weight)`` pairs; one pair with weight 1 for learned ranges.
        rule: how the name was resolved, for logs and error reports.
    """

    name: str
    range_key: str | None
    sources: tuple[tuple[int, float], ...]
    rule: str

    @property
    def projection_index(self) -> int | None:
        """The released projection index (0-18), ``None`` for free wavelengths."""
        return None if self.range_key is None else spectral_ranges()[self.range_key].projection_index

    @property
    def spectrum(self) -> str | tuple[tuple[int, float], ...]:
        """What the band projects: its range, or the weighted learned ranges of a free wavelength. Every spelling
        of one band (``BLUE``, ``B02``, ``S2:B02``) has the same."""
        return self.range_key or self.sources


class ResolvedBands(tuple):
    """An immutable, hashable list of :class:`ResolvedBand`, one per input channel, in channel order."""

    @property
    def names(self) -> list[str]:
        return [b.name for b in self]

    @property
    def range_keys(self) -> list[str | None]:
        return [b.range_key for b in self]

    @property
    def projection_indices(self) -> list[int | None]:
        return [b.projection_index for b in self]

    @property
    def spectra(self) -> list[str | tuple[tuple[int, float], ...]]:
        """Each band's :attr:`ResolvedBand.spectrum`: equal lists mean the same bands in the same order."""
        return [b.spectrum for b in self]

    def describe(self) -> str:
        """A plain-text table of the resolution (position, given name, range, projections and weights)."""
        lines = ["pos  band                  range                  projection(s)"]
        for i, b in enumerate(self):
            src = " + ".join(f"{w:.6g}*P{k}" if len(b.sources) > 1 else f"P{k}" for k, w in b.sources)
            lines.append(f"{i:<4} {b.name:<21} {b.range_key or '(wavelength)':<22} {src}   [{b.rule}]")
        return "\n".join(lines)


@dataclass(frozen=True)
class SensorPreset:
    """A sensor's band vocabulary (``data/sensors.yaml``)."""

    name: str
    aliases: tuple[str, ...]
    description: str
    default: tuple[str, ...]
    bands: Mapping[str, Any]

    def lookup(self, band: str) -> Any:
        """The rule for ``band`` (a range key, ``{'wavelength': ...}`` or ``{'reject': ...}``), else ``None``."""
        return self._table.get(_norm_code(band))

    @functools.cached_property
    def _table(self) -> dict[str, Any]:
        return {_norm_code(k): v for k, v in self.bands.items()}


def _norm_code(name: str) -> str:
    """Case-fold and drop zero padding of band codes, so ``b1``, ``B01`` and ``B1`` compare equal."""
    return re.sub(r"^B0+(?=\d)", "B", name.strip().upper())


@functools.cache
def sensor_presets() -> dict[str, SensorPreset]:
    """All sensor presets, keyed by canonical name (``S2-L2A``, ``S2-L1C``, ``S1``, ``RGB``, ``HLS``, ...)."""
    text = resources.files("smarties_terratorch").joinpath("data/sensors.yaml").read_text()
    presets = {}
    for name, spec in yaml.safe_load(text).items():
        presets[name] = SensorPreset(
            name=name,
            aliases=tuple(spec.get("aliases", ())),
            description=spec["description"],
            default=tuple(spec["default"]),
            bands=dict(spec["bands"]),
        )
    return presets


@functools.cache
def _sensor_index() -> dict[str, str]:
    index = {}
    for preset in sensor_presets().values():
        for alias in (preset.name, *preset.aliases):
            index[alias.upper().replace("_", "-")] = preset.name
    return index


def get_sensor(name: str) -> SensorPreset:
    """A sensor preset by name or alias (case-insensitive); unknown names list the known sensors."""
    key = str(name).upper().replace("_", "-")
    if key in _sensor_index():
        return sensor_presets()[_sensor_index()[key]]
    close = difflib.get_close_matches(key, list(_sensor_index()), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown sensor {name!r}.{hint} Known sensors: {', '.join(sensor_presets())}.")


# Bare names whose meaning depends on the sensor (VHR RGB, PlanetScope, HLS): rejected without a sensor.
_AMBIGUOUS = {"R", "G", "B", "RED", "GREEN", "BLUE", "NIR"}
# One-letter and full colour names mean the same band of one sensor ("B" or "BLUE", whichever it uses).
_COLOUR_SYNONYMS = {"R": "RED", "G": "GREEN", "B": "BLUE", "RED": "R", "GREEN": "G", "BLUE": "B"}
_DEFAULT_SENSORS = ("S2-L2A", "S1")  # bare band codes without a sensor= argument
_WAVELENGTH_RE = re.compile(
    r"^\s*(?P<a>\d+(?:\.\d+)?)\s*(?:-\s*(?P<b>\d+(?:\.\d+)?)\s*)?(?P<unit>nm|um|µm)?\s*$", re.IGNORECASE
)


def _as_wavelength(item: Any) -> tuple[float, float] | float | None:
    """Parse a wavelength query in nm (number, ``(min, max)`` pair, ``"865nm"``, ``"845-885nm"``, ``"0.865um"``)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, float)):
        return float(item)
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in item
    ):
        return float(item[0]), float(item[1])
    if isinstance(item, str):
        m = _WAVELENGTH_RE.match(item)
        if m:
            scale = 1000.0 if (m["unit"] or "nm").lower() in ("um", "µm") else 1.0
            a = float(m["a"]) * scale
            return a if m["b"] is None else (a, float(m["b"]) * scale)
    return None


def _check_nm(value: float, given: Any) -> None:
    if not math.isfinite(value) or value < 100:
        raise ValueError(
            f"Band {given!r}: wavelengths are given in nanometres and must be >= 100 nm; {value:g} looks like "
            f"micrometres or a projection index. Write e.g. 665 or '0.665um' for red, or a range key such as 'red_2'."
        )


def _iou(lo: float, hi: float, r: SpectralRange) -> float:
    inter = max(0.0, min(hi, r.max_nm) - max(lo, r.min_nm))
    union = max(hi, r.max_nm) - min(lo, r.min_nm)
    return inter / union if union > 0 else 0.0


def resolve_wavelength(wavelength: float | tuple[float, float], weighting: str = "released") -> ResolvedBand:
    """Resolve a wavelength (nm) for a sensor SMARTIES has never seen.

    The rule (VHR RGB ranges excluded, see above):

    - an interval ``(min, max)`` matches the learned range with the largest intersection-over-union if it
      reaches 0.5; a single centre matches the learned range that contains it with the nearest centre;
    - otherwise the projection is averaged between the nearest learned centres below and above the query
      centre, with ``weighting`` (:func:`averaging_weights`). Ties go to the lower projection index.

    This reproduces the released averaged ranges: ``(452, 512)`` gives ``blue_2``'s aerosol/blue_1 average
    and ``(10600, 11190)`` gives ``thermal_infrared_1``'s B12/VV average (SAR pseudo-wavelengths sit at
    5.5e7 nm, so the thermal band is the SWIR-2 and VV projections mixed; it is zero-shot either way).
    """
    cands = _wavelength_candidates()
    if isinstance(wavelength, tuple):
        lo, hi = wavelength
        _check_nm(lo, wavelength)
        _check_nm(hi, wavelength)
        if not lo < hi:
            raise ValueError(f"Wavelength interval {wavelength!r} must be (min_nm, max_nm) with min < max.")
        centre = (lo + hi) / 2
        best = max(cands, key=lambda r: (_iou(lo, hi, r), -r.projection_index))
        if _iou(lo, hi, best) >= MATCH_IOU:
            return ResolvedBand(
                str(wavelength), best.key, ((best.projection_index, 1.0),), f"{lo:g}-{hi:g} nm matches {best.key}"
            )
        label = f"{lo:g}-{hi:g} nm"
    else:
        centre = wavelength
        _check_nm(centre, wavelength)
        containing = [r for r in cands if r.min_nm <= centre <= r.max_nm]
        if containing:
            best = min(containing, key=lambda r: (abs(r.centre - centre), r.projection_index))
            return ResolvedBand(
                str(wavelength), best.key, ((best.projection_index, 1.0),), f"{centre:g} nm lies in {best.key}"
            )
        label = f"{centre:g} nm"
    below = [r for r in cands if r.centre <= centre]
    above = [r for r in cands if r.centre >= centre]
    if not below or not above:
        nearest = min(cands, key=lambda r: abs(r.centre - centre))
        raise ValueError(
            f"Wavelength {label} lies outside SMARTIES' learned spectrum ({cands[0].min_nm:g} nm to the SAR "
            f"ranges); the nearest range is {nearest.key!r} ({nearest.min_nm:g}-{nearest.max_nm:g} nm). "
            f"Pass that range key explicitly if it is what you mean."
        )
    lo_r = max(below, key=lambda r: (r.centre, -r.projection_index))
    hi_r = min(above, key=lambda r: (r.centre, r.projection_index))
    if lo_r.centre == hi_r.centre:  # the query is centred on a learned range (an interval with IoU < MATCH_IOU)
        return ResolvedBand(
            str(wavelength), lo_r.key, ((lo_r.projection_index, 1.0),), f"{label} is centred on {lo_r.key}"
        )
    w = averaging_weights(centre, (lo_r.centre, hi_r.centre), weighting)
    return ResolvedBand(
        str(wavelength),
        None,
        ((lo_r.projection_index, w[0]), (hi_r.projection_index, w[1])),
        f"{label} averaged between {lo_r.key} and {hi_r.key} ({weighting})",
    )


def _from_range(name: str, r: SpectralRange, weighting: str, rule: str) -> ResolvedBand:
    if r.projection_index < 0:
        raise ValueError(
            f"Band {name!r} is range {r.key!r} ({r.label}, {r.min_nm:g}-{r.max_nm:g} nm), which has no learned "
            f"SMARTIES projection (projection index -1): drop this band (and its channel) from the input."
        )
    if r.averaged:
        by_index = _learned_by_index()
        w = averaging_weights(r.centre, [by_index[i].centre for i in r.averaged_from], weighting)
        srcs = tuple(zip(r.averaged_from, w))
        return ResolvedBand(name, r.key, srcs, f"{rule}; averaged range ({weighting})")
    return ResolvedBand(name, r.key, ((r.projection_index, 1.0),), rule)


def _from_rule(name: str, rule: Any, weighting: str, where: str) -> ResolvedBand:
    if isinstance(rule, str):
        return _from_range(name, spectral_ranges()[rule], weighting, where)
    if "reject" in rule:
        raise ValueError(f"Band {name!r} ({where}): {rule['reject']}.")
    band = resolve_wavelength(tuple(rule["wavelength"]), weighting)
    return ResolvedBand(name, band.range_key, band.sources, f"{where}; {band.rule}")


@functools.cache
def _vocabulary() -> list[str]:
    words = list(spectral_ranges())
    for preset in sensor_presets().values():
        words += [f"{preset.name}:{b}" for b in preset.bands]
        if preset.name in (*_DEFAULT_SENSORS, "HLS"):
            words += list(preset.bands)
    return sorted(set(words))


def _unknown(name: str, sensor: SensorPreset | None) -> ValueError:
    pool = _vocabulary() + ([*sensor.bands] if sensor else [])
    close = difflib.get_close_matches(name, pool, n=5, cutoff=0.6)
    close += [w for w in pool if w.upper() == name.upper() and w not in close]
    close = list(dict.fromkeys(close))  # a sensor's bands are in the vocabulary too
    hint = f" Close matches: {', '.join(repr(c) for c in close)}." if close else ""
    in_sensor = f" in sensor {sensor.name!r} (bands: {', '.join(sensor.bands)})" if sensor else ""
    return ValueError(
        f"Unknown band {name!r}{in_sensor}.{hint} Accepted: SMARTIES range keys ({', '.join(spectral_ranges())}); "
        f"Sentinel-2 codes (B01..B12, B8A, or B1..); Sentinel-1 VV/VH; TerraTorch HLSBands names (BLUE, NIR_NARROW, "
        f"SWIR_1, ...); 'SENSOR:BAND' with SENSOR one of {', '.join(sensor_presets())}; or a wavelength in nm "
        f"(665, (630, 680), '845-885nm')."
    )


def _resolve_name(name: str, sensor: SensorPreset | None, weighting: str) -> ResolvedBand:
    if ":" in name:
        sensor_name, band = name.split(":", 1)
        qualified = get_sensor(sensor_name)
        rule = qualified.lookup(band)
        if rule is None:
            raise _unknown(band, qualified)
        return _from_rule(name, rule, weighting, f"{qualified.name} preset")
    ranges = {k.lower(): r for k, r in spectral_ranges().items()}
    if sensor is not None and (rule := sensor.lookup(name)) is not None:
        return _from_rule(name, rule, weighting, f"{sensor.name} preset")
    if name.strip().lower() in ranges:
        return _from_range(name, ranges[name.strip().lower()], weighting, "range key")
    hls = sensor_presets()["HLS"]
    if name.strip() in hls.bands:  # TerraTorch names: exact upper case only (see _AMBIGUOUS)
        return _from_rule(name, hls.bands[name.strip()], weighting, "TerraTorch/HLS name")
    if sensor is not None and (synonym := _COLOUR_SYNONYMS.get(name.strip().upper())) is not None:
        if (rule := sensor.lookup(synonym)) is not None:  # "B" for a sensor whose band is called "BLUE", and back
            return _from_rule(name, rule, weighting, f"{sensor.name} preset, {name} = {synonym}")
    if name.strip().upper() in _AMBIGUOUS:
        if sensor is not None:  # a sensor was given: the name is simply not one of its bands
            raise _unknown(name, sensor)
        raise ValueError(
            f"Band {name!r} is ambiguous without a sensor: VHR 8-bit RGB (sensor='RGB': red_1/green_1/blue_3), "
            f"PlanetScope (sensor='PlanetScope'), or Sentinel-2-like reflectance (TerraTorch names 'RED', 'GREEN', "
            f"'BLUE', 'NIR_BROAD', 'NIR_NARROW'). Pass sensor=..., a qualified name such as 'RGB:{name}', or a range key."
        )
    for default in _DEFAULT_SENSORS:
        preset = sensor_presets()[default]
        if (rule := preset.lookup(name)) is not None:
            return _from_rule(name, rule, weighting, f"{default} band code")
    wavelength = _as_wavelength(name)
    if wavelength is not None:
        band = resolve_wavelength(wavelength, weighting)
        return ResolvedBand(name, band.range_key, band.sources, band.rule)
    raise _unknown(name, sensor)


def _hashable(item: Any) -> Any:
    if isinstance(item, enum.Enum):
        return item.value if isinstance(item.value, str) else item.name
    if isinstance(item, (list, tuple)):
        return tuple(_hashable(v) for v in item)
    if hasattr(item, "item") and callable(item.item):  # numpy / torch scalars
        return item.item()
    try:
        hash(item)
    except TypeError:
        raise TypeError(_BAD_TYPE.format(item=item, type=type(item).__name__)) from None
    return item


_BAD_TYPE = (
    "Band {item!r} has type {type}: expected a name (str), a TerraTorch band enum member, a wavelength in nm "
    "(number) or a (min_nm, max_nm) pair."
)


def resolve_bands(
    bands: Iterable[BandLike] | str | None = None,
    *,
    sensor: str | None = None,
    weighting: str = "released",
    allow_duplicates: bool = False,
    overrides: Mapping[str, BandLike] | None = None,
) -> ResolvedBands:
    """Turn band names, TerraTorch enum members or wavelengths into SMARTIES projections.

    Args:
        bands: one entry per input channel, in channel order. Entries can be mixed:

            - SMARTIES range keys: ``"red_2"``, ``"near_infrared_3"``, ``"microwave_1"``;
            - sensor band names: with ``sensor=`` (``"B04"``, ``"R"``, ``"NIR"``) or qualified as
              ``"SENSOR:BAND"`` (``"L8:B10"``, ``"RGB:R"``, ``"PlanetScope:NIR"``); without a sensor, bare
              Sentinel-2 codes (``B01``..``B12``, ``B8A``, also ``B1``), Sentinel-1 ``VV``/``VH`` and
              TerraTorch ``HLSBands``/``SARBands`` names and members (``BLUE``, ``NIR_NARROW``, ...);
            - wavelengths in nm for unseen sensors: ``865``, ``(845, 885)``, ``"845-885nm"``, ``"0.865um"``
              (see :func:`resolve_wavelength`).

            ``None`` with ``sensor`` gives the preset's default channel order (``sensor="S2"`` = S2-L2A's
            12 bands B01..B08, B8A, B09, B11, B12, like the HF interface's ``sensor_type='S2'``). A single
            string is split on commas.
        sensor: a preset name or alias (``"S2-L2A"``/``"S2"``, ``"S2-L1C"``, ``"S1"``, ``"RGB"``, ``"HLS"``,
            ``"L8"``, ``"L7"``, ``"PlanetScope"``) giving the vocabulary of bare names.
        weighting: ``"released"`` (default, parity with the released model) or ``"inverse_distance"`` (the
            paper's interpolation) for averaged projections (:func:`averaging_weights`).
        allow_duplicates: two channels with the same range count twice in SMARTIES' band mean, so this is
            an error unless deliberate (e.g. the released pretraining tiles RGB x4 and S1 x6 into 12 slots).
        overrides: per-dataset name map applied first, e.g. ``{"B5": "near_infrared_1"}`` for DynamicEarthNet,
            whose Planet NIR band is called ``B5``. Values are anything this function accepts.

    Returns:
        ResolvedBands: one :class:`ResolvedBand` per channel.

    Raises:
        ValueError: unknown, ambiguous or projection-less bands (S2 ``B10``/``CIRRUS``), bad wavelengths,
            unexpected duplicates, an empty list.
    """
    if isinstance(bands, str):
        bands = [b for b in (s.strip() for s in bands.split(",")) if b]
    if bands is None:
        if sensor is None:
            raise ValueError("Give bands=[...] or sensor=... (e.g. sensor='S2-L2A').")
        bands = get_sensor(sensor).default
    items = tuple(_hashable(b) for b in bands)
    over = tuple(sorted((str(k), _hashable(v)) for k, v in (overrides or {}).items()))
    return _resolve_cached(items, sensor, weighting, allow_duplicates, over)


@functools.lru_cache(maxsize=512)
def _resolve_cached(
    items: tuple[Any, ...], sensor: str | None, weighting: str, allow_duplicates: bool, overrides: tuple
) -> ResolvedBands:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if not items:
        raise ValueError("The band list is empty: SMARTIES needs at least one band.")
    preset = get_sensor(sensor) if sensor is not None else None
    over = dict(overrides)
    over_ci = {k.upper(): v for k, v in over.items()}
    resolved = []
    for item in items:
        if isinstance(item, str) and (item in over or item.upper() in over_ci):
            target = over.get(item, over_ci.get(item.upper()))
            band = _resolve_item(target, preset, weighting)
            resolved.append(ResolvedBand(item, band.range_key, band.sources, f"override -> {target!r}; {band.rule}"))
        else:
            resolved.append(_resolve_item(item, preset, weighting))
    return concat_bands(resolved, allow_duplicates=allow_duplicates)


def concat_bands(*band_lists: Iterable[ResolvedBand], allow_duplicates: bool = False) -> ResolvedBands:
    """Join resolved band lists (e.g. S2 then S1 for early fusion), checking for duplicated ranges.

    Raises:
        ValueError: two channels resolve to the same range and ``allow_duplicates`` is false.
    """
    joined = ResolvedBands(b for bands in band_lists for b in bands)
    if not allow_duplicates:
        seen: dict[Any, int] = {}
        for pos, band in enumerate(joined):
            key = band.range_key or band.sources
            if key in seen:
                first = joined[seen[key]]
                raise ValueError(
                    f"Bands {first.name!r} (channel {seen[key]}) and {band.name!r} (channel {pos}) both resolve to "
                    f"{band.range_key or band.rule}: the band would count twice in SMARTIES' band mean. Remove one, "
                    f"or pass allow_duplicates=True if this is deliberate (e.g. tiled band slots as in pretraining)."
                )
            seen[key] = pos
    return joined


def _resolve_item(item: Any, preset: SensorPreset | None, weighting: str) -> ResolvedBand:
    if isinstance(item, str):
        return _resolve_name(item, preset, weighting)
    wavelength = _as_wavelength(item)
    if wavelength is None:
        raise TypeError(_BAD_TYPE.format(item=item, type=type(item).__name__))
    return resolve_wavelength(wavelength, weighting)
