"""SMARTIES input preprocessing: the released normalisation statistics, the two-step normalisation and resizing.

SMARTIES was pre-trained on inputs normalised per band in two steps (``data/normalization.yaml``):

1. percentile min-max: ``x <- clip((x - p1) / (p99 - p1), 0, 1)`` with ``p1``/``p99`` in raw file units;
2. standardisation: ``x <- (x - mean) / std`` with ``mean``/``std`` measured *after* step 1.

The authors report that plain mean/std standardisation alone costs some accuracy, so use both steps with the
statistics of the sensor or dataset at hand. Then resize to 224 x 224 (:func:`resize_to`).

Example::

    stats = normalization_stats("EuroSAT")          # 12 used bands (B10 dropped), file order
    x = stats.take(image)                           # [13, 64, 64] file -> [12, 64, 64]
    x = SmartiesNormalize.from_stats(stats)(x)      # or normalize(numpy_array, stats)
    x = resize_to(x, 224)                           # bicubic + anti-aliasing, as the authors
    feats = model(x[None], bands=stats.bands)

For TerraTorch's generic data modules, ``SmartiesAlbumentationsNormalize(statistics, bands=None, nan_to=None)`` is
the same normalisation as an albumentations transform on channels-last samples (``[H, W, C]`` or ``[T, H, W, C]``);
it is built on first access, so importing this module does not import albumentations.

Training augmentation of samples lives in :mod:`smarties_terratorch.augmentation`.
"""

from __future__ import annotations

import difflib
import functools
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from .spectrum import ResolvedBand, _norm_code, resolve_bands, sensor_presets

__all__ = [
    "NormalizationSpec",
    "SmartiesAlbumentationsNormalize",
    "SmartiesNormalize",
    "Stats",
    "NormalizedTwiceError",
    "UnitsWarning",
    "compute_statistics",
    "expected_units",
    "normalization_stats",
    "normalize",
    "resize_to",
    "stats_names",
    "units_mismatch",
]

ArrayLike = Union[Sequence[float], np.ndarray, torch.Tensor]


def _as_vector(values: Any, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.array(values, dtype=np.float64).reshape(-1)
    arr.setflags(write=False)  # Stats are shared through a cache: nobody may edit them in place
    return arr


def _validate(mean: np.ndarray, std: np.ndarray, p1: np.ndarray, p99: np.ndarray, where: str) -> None:
    n = len(mean)
    if n == 0 or not len(std) == len(p1) == len(p99) == n:
        raise ValueError(
            f"{where}: mean, std, p1 and p99 need one value per band and the same length, got lengths "
            f"{len(mean)}, {len(std)}, {len(p1)}, {len(p99)}"
        )
    if not np.all(np.isfinite(np.stack([mean, std, p1, p99]))):
        raise ValueError(f"{where}: statistics must be finite")
    if np.any(std <= 0):
        raise ValueError(f"{where}: std must be > 0, got {std.tolist()}")
    if np.any(p99 <= p1):
        raise ValueError(f"{where}: p99 must be > p1 for every band, got p1={p1.tolist()}, p99={p99.tolist()}")


def _range_of(band: Any, sensor: str | None) -> Any:
    """The spectral range ``band`` names (in ``sensor``'s vocabulary for bare names), or ``None``."""
    try:
        return resolve_bands([band], sensor=sensor)[0].spectrum
    except (ValueError, TypeError):
        return None


def _unresolved_hint(band: Any, sensor: str | None) -> str:
    try:
        resolve_bands([band], sensor=sensor)
    except (ValueError, TypeError) as err:
        return f" {str(err).split(' Accepted: ')[0]}"  # the table's own rows are listed next
    return ""


@functools.cache
def _other_names(range_key: str) -> tuple[str, ...]:
    """Other spellings of a range in the common vocabularies (S2 codes, TerraTorch names), for error messages."""
    names = []
    for preset in ("S2-L2A", "HLS"):
        names += [b for b, rule in sensor_presets()[preset].bands.items() if rule == range_key]
    return tuple(dict.fromkeys(names))


def _with_aliases(band: str, sensor: str | None) -> str:
    key = _range_of(band, sensor)
    others = [n for n in _other_names(key) if _norm_code(n) != _norm_code(band)] if isinstance(key, str) else []
    return f"{band} (= {', '.join(others)})" if others else band


@dataclass(frozen=True, eq=False)
class Stats:
    """Normalisation statistics of some bands of one sensor or dataset.

    Attributes:
        name: the table's key in ``normalization.yaml`` (``"S2-L2A"``, ``"EuroSAT"``, ...).
        bands: band names, in channel order.
        mean: per-band mean after the percentile step (``[0, 1]`` units).
        std: per-band standard deviation after the percentile step.
        p1: per-band 1st percentile in raw file units.
        p99: per-band 99th percentile in raw file units.
        positions: position of each band in the source file, for slicing raw images (:meth:`take`).
        file_bands: every channel of the source file, in file order (including bands SMARTIES does not use).
        sensor: the ``sensors.yaml`` preset the band names belong to (pass it as ``sensor=`` to the model).
    """

    name: str
    bands: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    p1: np.ndarray
    p99: np.ndarray
    positions: tuple[int, ...]
    file_bands: tuple[str, ...]
    sensor: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for attr in ("mean", "std", "p1", "p99"):
            object.__setattr__(self, attr, _as_vector(getattr(self, attr), attr))
        object.__setattr__(self, "bands", tuple(self.bands))
        object.__setattr__(self, "positions", tuple(int(p) for p in self.positions))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        _validate(self.mean, self.std, self.p1, self.p99, f"Stats {self.name!r}")
        if not len(self.bands) == len(self.positions) == len(self.mean):
            raise ValueError(f"Stats {self.name!r}: bands, positions and statistics must have the same length")

    def __len__(self) -> int:
        return len(self.bands)

    @property
    def units(self) -> str:
        """The raw units ``p1``/``p99`` are in (:func:`expected_units`): ``"dn"``, ``"unit"``, ``"8bit"``,
        ``"db"`` or ``"other"``."""
        return expected_units(self.p1, self.p99)

    def select(self, bands: Sequence[Any] | str) -> Stats:
        """The statistics of ``bands``, in the given order.

        Bands are matched through :func:`~smarties_terratorch.spectrum.resolve_bands` (one vocabulary for the
        model and the statistics): ``B02``, ``B2``, ``BLUE``, ``S2:B02``, ``blue_1`` and ``490`` (nm) all pick a
        table's ``B02`` row. Bare names are read in the table's sensor vocabulary (``R`` is ``red_1`` in the
        ``RGB`` table). A :class:`~smarties_terratorch.spectrum.ResolvedBands` is matched by its ranges.

        Raises:
            ValueError: a band is not among :attr:`bands`; the message lists the available ones and their
                other names.
        """
        if isinstance(bands, str):
            bands = [b.strip() for b in bands.split(",") if b.strip()]
        if not bands:
            raise ValueError("select() needs at least one band name")
        picks = [self._index_of(band) for band in bands]
        return Stats(
            name=self.name,
            bands=tuple(self.bands[i] for i in picks),
            mean=self.mean[picks],
            std=self.std[picks],
            p1=self.p1[picks],
            p99=self.p99[picks],
            positions=tuple(self.positions[i] for i in picks),
            file_bands=self.file_bands,
            sensor=self.sensor,
            info=self.info,
        )

    @functools.cached_property
    def _range_index(self) -> dict[Any, int]:
        """Spectral range (or wavelength sources) of each row -> row; rows that name no known band are left out."""
        index: dict[Any, int] = {}
        for i, band in enumerate(self.bands):
            key = _range_of(band, self.sensor)
            if key is not None:
                index.setdefault(key, i)
        return index

    def _index_of(self, band: Any) -> int:
        codes = {_norm_code(b): i for i, b in enumerate(self.bands)}
        name = band.name if isinstance(band, ResolvedBand) else band
        resolved = isinstance(band, ResolvedBand)
        key = band.spectrum if resolved else _range_of(band, self.sensor)
        # A resolved band is matched by its range first (a band map may say PlanetScope "B5" is NIR); a name by
        # the table's own codes first.
        for how in ("range", "code") if resolved else ("code", "range"):
            if how == "code" and isinstance(name, str) and _norm_code(name) in codes:
                return codes[_norm_code(name)]
            if how == "range" and key is not None and key in self._range_index:
                return self._range_index[key]
        dropped = [
            b
            for b in self.file_bands
            if b not in self.bands
            and ((key is not None and _range_of(b, self.sensor) == key) or _norm_code(b) == _norm_code(str(name)))
        ]
        if dropped:
            why = (
                f" {dropped[0]!r} is a channel of the {self.name} file but SMARTIES does not use it "
                f"(normalization_stats({self.name!r}, all_bands=True) has its statistics)."
            )
        else:
            why = "" if key is not None else _unresolved_hint(band, self.sensor)
        raise ValueError(
            f"Band {name!r} is not in the {self.name} statistics.{why} Available bands: "
            f"{', '.join(_with_aliases(b, self.sensor) for b in self.bands)}."
        )

    def take(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Pick this object's bands from a raw image holding **all** file channels (``[..., C_file, H, W]``).

        This applies the same positions to the image as to the statistics, e.g. drops EuroSAT's B10.
        """
        if x.ndim < 3 or x.shape[-3] != len(self.file_bands):
            raise ValueError(
                f"take() expects the full {self.name} file with {len(self.file_bands)} channels "
                f"({', '.join(self.file_bands)}) on axis -3, got shape {tuple(x.shape)}"
            )
        idx = list(self.positions)
        if isinstance(x, torch.Tensor):
            return x.index_select(-3, torch.as_tensor(idx, device=x.device))
        return np.take(x, idx, axis=-3)


@functools.cache
def _tables() -> dict[str, dict[str, Any]]:
    text = resources.files("smarties_terratorch").joinpath("data/normalization.yaml").read_text()
    return yaml.safe_load(text)


def _canonical(name: str) -> str:
    return str(name).strip().upper().replace("_", "-")


@functools.cache
def _name_index() -> dict[str, str]:
    index = {}
    for key, spec in _tables().items():
        for alias in (key, *spec.get("aliases", ())):
            index[_canonical(alias)] = key
    return index


def stats_names() -> list[str]:
    """Keys of all statistics tables (``RGB``, ``S2-L1C``, ``S2-L2A``, ``S1-GRD``, ``EuroSAT``, ...)."""
    return list(_tables())


@functools.cache
def normalization_stats(name: str, all_bands: bool = False) -> Stats:
    """The released statistics of a pre-training sensor or evaluation dataset.

    Args:
        name: a key of ``normalization.yaml`` or an alias, case-insensitive (``"S2-L2A"``/``"S2"``,
            ``"S1-GRD"``/``"S1"``, ``"S2-L1C"``, ``"RGB"``, ``"EuroSAT"``, ``"WHU-RS19"``, ``"UC-Merced"``,
            ``"RESISC45"``, ``"DFC2020"``).
        all_bands: include the file channels SMARTIES does not use (S2-L1C/EuroSAT ``B10``, DFC2020 ``VV``/``VH``).

    Returns:
        Stats of the used bands in file order; :attr:`Stats.positions` are their file positions.

    Raises:
        ValueError: unknown name; the message lists the known keys.
    """
    key = _name_index().get(_canonical(name))
    if key is None:
        close = difflib.get_close_matches(_canonical(name), list(_name_index()), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(_name_index()[c]) for c in close)}?" if close else ""
        raise ValueError(f"Unknown statistics {name!r}.{hint} Known: {', '.join(stats_names())}.")
    spec = _tables()[key]
    rows = spec["bands"]
    positions = list(range(len(rows))) if all_bands else list(spec.get("used", range(len(rows))))
    picked = [rows[i] for i in positions]
    info = {k: v for k, v in spec.items() if k not in ("bands", "used", "aliases", "sensor")}
    return Stats(
        name=key,
        bands=tuple(str(r["name"]) for r in picked),
        mean=[r["mean"] for r in picked],
        std=[r["std"] for r in picked],
        p1=[r["p1"] for r in picked],
        p99=[r["p99"] for r in picked],
        positions=tuple(positions),
        file_bands=tuple(str(r["name"]) for r in rows),
        sensor=spec.get("sensor"),
        info=info,
    )


def _looks_like_file(spec: str | os.PathLike) -> bool:
    return isinstance(spec, os.PathLike) or Path(str(spec)).suffix.lower() in (".json", ".yaml", ".yml")


def _stats_from_mapping(spec: Mapping[str, Any], source: str) -> Stats:
    missing = [k for k in ("mean", "std", "p1", "p99") if k not in spec]
    if missing:
        raise ValueError(f"{source} lacks {', '.join(missing)}: give per-band lists mean, std, p1, p99 (raw units)")
    n = len(np.atleast_1d(np.asarray(spec["mean"], dtype=object)))
    bands = spec.get("bands")
    try:
        return Stats(
            name=str(spec.get("name", "custom")) if bands is not None else f"<{source}>",
            bands=tuple(str(b) for b in bands) if bands is not None else tuple(f"channel {i}" for i in range(n)),
            mean=spec["mean"], std=spec["std"], p1=spec["p1"], p99=spec["p99"],
            positions=tuple(range(n)),
            file_bands=tuple(str(b) for b in bands) if bands is not None else tuple(f"channel {i}" for i in range(n)),
            sensor=spec.get("sensor"),
        )  # fmt: skip
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from None


NormalizationSpec = Union[str, os.PathLike, Mapping[str, Any], Stats]


def _check_channels(shape: Sequence[int], n: int) -> None:
    if len(shape) < 3 or shape[-3] != n:
        raise ValueError(
            f"Expected an image [..., C, H, W] with C = {n} channels (one per statistics band), "
            f"got shape {tuple(shape)}"
        )


#: The diagnosis of :func:`units_mismatch` that a normalising model refuses instead of warning about.
_NORMALIZED_TWICE = "looks already normalised"


class NormalizedTwiceError(ValueError):
    """A model that normalises its own input was given input that was already normalised."""


class UnitsWarning(UserWarning):
    """Input values that do not fit the units of the normalisation statistics (see :func:`units_mismatch`)."""


#: What each :func:`expected_units` kind means, for messages.
UNITS = {
    "dn": "reflectance x 10000 digital numbers, roughly 0-10000",
    "unit": "reflectance 0-1",
    "8bit": "8-bit values 0-255",
    "db": "SAR backscatter in dB, roughly -35 to 0",
    "other": "the statistics' own units",
}
_UNITS_SAMPLE = 4096  # values per band looked at
_MIN_VALID = 256  # fewer valid values than this: undecided, look at the next batch
_MAX_UNITS_TRIES = 8


def expected_units(p1: ArrayLike, p99: ArrayLike) -> str:
    """The raw units statistics expect, read from their percentiles: ``"db"`` (negative p1, p99 <= 10: SAR in dB),
    ``"unit"`` (p99 <= 2: reflectance 0-1), ``"8bit"`` (p99 <= 300), ``"dn"`` (p99 >= 500: reflectance x 10000)
    or ``"other"``."""
    lo, hi = _as_vector(p1, "p1"), _as_vector(p99, "p99")
    if np.all(lo < 0) and np.all(hi <= 10):
        return "db"
    top = float(np.max(hi))
    if top <= 2:
        return "unit"
    if top <= 300:
        return "8bit"
    return "dn" if top >= 500 and np.all(lo > -100) else "other"


def units_mismatch(x: torch.Tensor, p1: torch.Tensor, p99: torch.Tensor, units: str, source: str) -> str | None:
    """Whether a raw batch ``[..., C, H, W]`` fits statistics with percentiles ``p1``/``p99`` (per band).

    A batch is flagged only when most of its valid values (finite, non-zero) would be clipped by the percentile
    step **and** they show a known mistake: already-normalised input (values around 0, many negative), 0-1
    reflectance given to statistics in reflectance x 10000 (median off by ~10^4) or the reverse (TerraTorch's
    ``constant_scale``), linear SAR for dB statistics. Bright (cloudy) or dark (water) scenes in the right units
    are not flagged.

    Returns:
        ``""`` if the batch fits, the message (cause and fix) if not, ``None`` if it has fewer than 256 valid
        values to judge.
    """
    with torch.no_grad():
        v = x.detach().movedim(-3, 0).reshape(x.shape[-3], -1)
        v = v[:, :: max(1, v.shape[1] // _UNITS_SAMPLE)].float().cpu()
        lo, hi = p1.detach().float().cpu()[:, None], p99.detach().float().cpu()[:, None]
        valid = torch.isfinite(v) & (v != 0)
        n = int(valid.sum())
        if n < _MIN_VALID:
            return None
        clipped = float((((v < lo) | (v > hi)) & valid).sum()) / n
        vals = v[valid]
        median = float(vals.abs().median())
        ratio = median / float(torch.maximum(lo.abs(), hi.abs()).median())
        negative = float((vals < 0).float().mean())
        largest = float(vals.abs().max())
    if clipped < 0.5:
        return ""
    head = (
        f"{100 * clipped:.0f} % of the input values lie outside the p1-p99 range of {source}, which expects "
        f"{UNITS[units]} (median |value| here: {median:.4g}), so the normalised input is nearly constant"
    )
    if units in ("dn", "8bit", "unit") and negative > 0.2 and largest < 50:
        return (
            f"{head}: the input {_NORMALIZED_TWICE} ({100 * negative:.0f} % negative values). Normalise once: "
            f"a model built with stats (backbone_stats) normalises its raw input itself, so drop the other "
            f"normalisation (SmartiesAlbumentationsNormalize, the data module's means/stds, smarties --stats) or "
            f"backbone_stats; for data that is already normalised, use no statistics (smarties --stats none)."
        )
    if units == "dn" and ratio < 1e-3 and largest <= 2:
        return (
            f"{head}: the values look like 0-1 reflectance. Scale them by 10000 (TerraTorch's generic data modules: "
            f"constant_scale: 10000), or compute statistics of your data (smarties stats)."
        )
    if units == "8bit" and ratio < 0.05 and largest <= 2:
        return f"{head}: the values look like 0-1 floats; multiply them by 255 (constant_scale: 255)."
    if units in ("dn", "8bit") and ratio > 100:
        return (
            f"{head}: the values are ~{ratio:.0e} times too large; if the files already hold digital numbers, "
            f"remove constant_scale: 10000 (or the scaling you apply)."
        )
    if units == "unit" and ratio > 100:
        return (
            f"{head}: the values look like digital numbers (reflectance x 10000). Remove constant_scale: 10000 or "
            f"use constant_scale: 0.0001, or use statistics in digital numbers (e.g. S2-L2A)."
        )
    if units == "db" and negative < 0.2:
        return f"{head}: the values are not negative like dB; convert linear backscatter with 10 * log10(x)."
    if clipped > 0.9 and not 1e-3 <= ratio <= 100:
        return f"{head}: check that the statistics match the data and its scaling (constant_scale)."
    return ""


class SmartiesNormalize(nn.Module):
    """SMARTIES' two-step per-band normalisation for tensors ``[..., C, H, W]``.

    ``y = (clip((x - p1) / (p99 - p1), 0, 1) - mean) / std``, so outputs lie in ``[-mean/std, (1-mean)/std]``.

    NaN: by default a NaN input stays NaN in the output (clipping does not hide it), so missing data are
    not silently turned into plausible-looking values; pass ``nan_to=v`` to write ``v`` into the *normalised*
    output wherever the result is NaN (``nan_to=0.0`` is the band mean, a neutral fill). Infinite inputs are
    clipped like any other out-of-range value.

    Args:
        mean: per-band mean after the percentile step.
        std: per-band standard deviation after the percentile step.
        p1: per-band 1st percentile, raw units.
        p99: per-band 99th percentile, raw units.
        nan_to: replacement for NaN in the output, or ``None`` to keep NaN.
        bands: optional band names, only for ``repr`` and bookkeeping.
        check_units: look at the first batches and warn once (:class:`UnitsWarning`) when their values do not fit
            the units the statistics expect (:func:`expected_units`): e.g. 0-1 reflectance given to statistics in
            reflectance x 10000, or data that was already normalised. Correct data never warn.
        source: what the statistics are, for messages (e.g. ``"statistics table 'S2-L2A'"``).
        refuse_normalized: with ``check_units``, raise :class:`NormalizedTwiceError` instead of warning when the
            input looks already normalised (models that normalise their own input and the scene tools' ``--stats``:
            normalising twice gives a nearly constant input and silently wrong outputs).
    """

    mean: torch.Tensor
    std: torch.Tensor
    p1: torch.Tensor
    p99: torch.Tensor

    def __init__(
        self,
        mean: ArrayLike,
        std: ArrayLike,
        p1: ArrayLike,
        p99: ArrayLike,
        *,
        nan_to: float | None = None,
        bands: Sequence[str] | None = None,
        check_units: bool = False,
        source: str | None = None,
        refuse_normalized: bool = False,
    ) -> None:
        super().__init__()
        arrays = [_as_vector(v, n) for v, n in ((mean, "mean"), (std, "std"), (p1, "p1"), (p99, "p99"))]
        _validate(*arrays, where="SmartiesNormalize")
        if bands is not None and len(bands) != len(arrays[0]):
            raise ValueError(f"SmartiesNormalize: {len(bands)} band names for {len(arrays[0])} statistics")
        for name, arr in zip(("mean", "std", "p1", "p99"), arrays):
            # Non-persistent: the statistics come from the config, they should not leak into checkpoints.
            self.register_buffer(name, torch.tensor(arr, dtype=torch.float32), persistent=False)
        self.nan_to = nan_to
        self.bands = tuple(bands) if bands is not None else None
        self.units = expected_units(arrays[2], arrays[3])
        self.source = source or "the SMARTIES statistics"
        # Checked on the first batches with enough valid values, then never again (see check_units()).
        self.check_units_pending = bool(check_units)
        self._units_tries = 0
        self.refuse_normalized = bool(refuse_normalized)

    @classmethod
    def from_stats(
        cls, stats: Stats | str, bands: Sequence[str] | None = None, *, nan_to: float | None = None
    ) -> SmartiesNormalize:
        """Build from a :class:`Stats` or a table name, optionally restricted to ``bands`` (by name, in order).

        Example: ``SmartiesNormalize.from_stats("S2-L2A", bands=["B04", "B03", "B02"])``.
        """
        if isinstance(stats, str):
            stats = normalization_stats(stats)
        if bands is not None:
            stats = stats.select(bands)
        return cls(stats.mean, stats.std, stats.p1, stats.p99, nan_to=nan_to, bands=stats.bands)

    @classmethod
    def from_spec(
        cls,
        spec: NormalizationSpec,
        bands: Sequence[str] | None = None,
        *,
        channels: int | None = None,
        nan_to: float | None = None,
        all_bands: bool = False,
        check_units: bool = False,
        refuse_normalized: bool = False,
    ) -> SmartiesNormalize:
        """The one way to build a normaliser from what a user or a config gives.

        Args:
            spec: a statistics table name (``"S2-L2A"``, ``"EuroSAT"``, ...: :func:`normalization_stats`), a
                :class:`Stats`, a mapping with ``mean``/``std``/``p1``/``p99`` lists (and optionally ``bands``), or
                the path of a JSON/YAML file holding such a mapping (what ``smarties stats`` writes).
            bands: the band names of the channels, in order. A table (or a mapping/file that names its bands) is
                restricted to them through the band vocabulary of :meth:`Stats.select` (``BLUE``, ``B02``,
                ``S2:B02`` and ``490`` are the same band); for unnamed values they only set the expected channel
                count.
            channels: the expected channel count (checked as well when ``bands`` is given).
            nan_to: see :class:`SmartiesNormalize`.
            all_bands: for a table, include the file channels SMARTIES does not use (e.g. DFC2020's VV/VH).
            check_units, refuse_normalized: see :class:`SmartiesNormalize`.

        Raises:
            FileNotFoundError: a statistics file that does not exist.
            ValueError: an unknown table, a malformed mapping/file, or a channel count other than expected; the
                message names the table or file.
        """
        names = [getattr(b, "name", b) if isinstance(b, ResolvedBand) else str(b) for b in bands] if bands else None
        source: str
        if isinstance(spec, Stats):
            stats, source = spec, f"statistics {spec.name!r}"
        elif isinstance(spec, Mapping):
            stats, source = _stats_from_mapping(spec, "explicit statistics"), "the explicit statistics"
        elif isinstance(spec, (str, os.PathLike)) and _looks_like_file(spec):
            path = Path(spec)
            source = f"statistics file {path}"
            if not path.is_file():
                where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
                raise FileNotFoundError(
                    f"Statistics file {path} not found{where}; a model saved with it needs it there, or the same "
                    f"statistics written inline (the mapping the file holds)."
                )
            try:
                loaded = yaml.safe_load(path.read_text())  # JSON is YAML
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise ValueError(f"{source} is not valid JSON/YAML: {err}") from None
            if not isinstance(loaded, Mapping):
                raise ValueError(f"{source} must hold a mapping with mean, std, p1 and p99 lists")
            stats = _stats_from_mapping(loaded, source)
        elif isinstance(spec, str):
            stats, source = normalization_stats(spec, all_bands=all_bands), f"statistics table {spec!r}"
        else:
            raise TypeError(
                f"Normalisation statistics must be a table name, a mapping or a file path, got {type(spec).__name__}"
            )
        named = not stats.name.startswith("<")
        if bands is not None and named:
            stats = stats.select(list(bands))
        # Both counts are checked: band names that match the statistics still must match the data's channels.
        for expected, what in ((len(names) if names is not None else None, "bands"), (channels, "channels")):
            if expected is not None and len(stats) != expected:
                listed = f" ({', '.join(names)})" if what == "bands" and names else ""
                raise ValueError(
                    f"{source} has {len(stats)} values per statistic but the data has {expected} {what}{listed}: "
                    f"give one mean/std/p1/p99 value per band, in band order."
                )
        return cls(
            stats.mean, stats.std, stats.p1, stats.p99, nan_to=nan_to, bands=stats.bands if named else names,
            check_units=check_units, source=source, refuse_normalized=refuse_normalized,
        )  # fmt: skip

    @property
    def num_channels(self) -> int:
        return self.mean.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape ``[..., C, H, W]``; integer inputs are promoted to float32."""
        _check_channels(x.shape, self.num_channels)
        if self.check_units_pending:
            self.check_units(x)
        if not torch.is_floating_point(x):
            x = x.to(torch.float32)
        shape = (-1, 1, 1)
        p1, p99 = self.p1.to(x.dtype).view(shape), self.p99.to(x.dtype).view(shape)
        mean, std = self.mean.to(x.dtype).view(shape), self.std.to(x.dtype).view(shape)
        if x.requires_grad:
            y = ((x - p1) / (p99 - p1)).clamp(0.0, 1.0)  # clamp keeps NaN, maps +-inf to 1/0
            y = (y - mean) / std
        else:  # the same steps in place on one temporary: a scene's batches are large (~20 % less CPU)
            y = x - p1
            y.div_(p99 - p1).clamp_(0.0, 1.0).sub_(mean).div_(std)
        if self.nan_to is not None:
            y = torch.where(torch.isnan(y), torch.full_like(y, float(self.nan_to)), y)
        return y

    def check_units(self, x: torch.Tensor) -> str | None:
        """Compare a raw batch ``[..., C, H, W]`` with the units of the statistics; warn once if they do not fit.

        Returns the warning text, ``""`` when the batch fits, or ``None`` when the batch has too few valid
        values to tell (NaN and exact zeros, the usual nodata fill, are left out); the check then runs again on
        the next batch, up to a few times.
        """
        verdict = units_mismatch(x, self.p1, self.p99, self.units, self.source)
        self._units_tries += 1
        if verdict is not None or self._units_tries >= _MAX_UNITS_TRIES:
            self.check_units_pending = False
        if verdict and self.refuse_normalized and _NORMALIZED_TWICE in verdict:
            self.check_units_pending = True  # the next batch is checked again
            raise NormalizedTwiceError(verdict)
        if verdict:
            warnings.warn(verdict, UnitsWarning, stacklevel=3)
        return verdict

    def extra_repr(self) -> str:
        bands = f"bands={list(self.bands)}" if self.bands is not None else f"channels={self.num_channels}"
        return f"{bands}, nan_to={self.nan_to}"


def __getattr__(name: str) -> Any:
    # The albumentations transform is built on first use: importing albumentations costs seconds, and only
    # TerraTorch data modules (which import it anyway) need it.
    if name == "SmartiesAlbumentationsNormalize":
        return _albumentations_normalize()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _albumentations_normalize() -> type:
    import albumentations as A

    class SmartiesAlbumentationsNormalize(A.ImageOnlyTransform):
        """SMARTIES' two-step normalisation as an albumentations transform, for TerraTorch's generic data modules.

        Put it first in ``train_transform``/``val_transform``/``test_transform`` (before any resize, before
        ``FlattenTemporalIntoChannels`` and ``ToTensorV2``) and switch the data module's own standardisation off:
        leave ``means``/``stds`` out of ``GenericNonGeoSegmentationDataModule``, and give
        ``GenericNonGeoClassificationDataModule`` (which requires them) ``means: [0]`` and ``stds: [1]``. The
        output is then exactly :class:`SmartiesNormalize`'s: ``(clip((x - p1) / (p99 - p1), 0, 1) - mean) / std``.

        Works on channels-last samples as the data modules pass them: ``[H, W, C]``, or ``[T, H, W, C]`` for
        multi-temporal data (``expand_temporal_dimension: true``); integer pixels become float32.

        Args:
            statistics: anything :meth:`SmartiesNormalize.from_spec` accepts: a released table name (``"S2-L2A"``,
                ``"S1-GRD"``, ``"RGB"``, ...), a mapping with ``mean``/``std``/``p1``/``p99`` lists, or the path of
                a statistics file written by ``smarties stats``.
            bands: the statistics rows to use, one per channel, in the data's channel order, in any spelling of the
                band vocabulary (e.g. ``[BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]`` or
                ``[B02, B03, B04, B8A, B11, B12]`` for HLS data with the S2-L2A table); default: all rows.
            nan_to: value written where the normalised output is NaN (``0.0`` = the band mean); default keeps NaN.
            p: albumentations' probability; keep 1.
        """

        def __init__(
            self,
            statistics: NormalizationSpec,
            bands: Sequence[str] | None = None,
            nan_to: float | None = None,
            p: float = 1.0,
        ) -> None:
            super().__init__(p=p)
            self.statistics = statistics if isinstance(statistics, (str, Stats)) else dict(statistics)
            self.bands = list(bands) if bands is not None else None
            self.nan_to = nan_to
            # Units checked on the first samples: a wrong constant_scale otherwise trains on near-constant inputs.
            self.normalize = SmartiesNormalize.from_spec(statistics, self.bands, nan_to=nan_to, check_units=True)

        def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
            n = self.normalize.num_channels
            if isinstance(img, torch.Tensor) or img.ndim not in (3, 4) or img.shape[-1] != n:
                raise ValueError(
                    f"SmartiesAlbumentationsNormalize expects channels-last [H, W, {n}] or [T, H, W, {n}] samples, got "
                    f"{type(img).__name__} {tuple(img.shape)}: put it first in the transform list (before "
                    f"FlattenTemporalIntoChannels and ToTensorV2) and give one statistics band per channel."
                )
            x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(img, -1, -3)))  # [..., C, H, W]
            with torch.no_grad():
                return np.ascontiguousarray(np.moveaxis(self.normalize(x).numpy(), -3, -1))

        def get_transform_init_args_names(self) -> tuple[str, ...]:
            return ("statistics", "bands", "nan_to")

    # Picklable by name (DataLoader workers), through this module's __getattr__.
    SmartiesAlbumentationsNormalize.__module__ = __name__
    SmartiesAlbumentationsNormalize.__qualname__ = "SmartiesAlbumentationsNormalize"
    return SmartiesAlbumentationsNormalize


def normalize(array: np.ndarray, stats: Stats | str, *, nan_to: float | None = None) -> np.ndarray:
    """NumPy version of :class:`SmartiesNormalize`: ``array`` is ``[..., C, H, W]`` with ``C = len(stats)``.

    Returns float32. NaN handling as in :class:`SmartiesNormalize`.
    """
    if isinstance(stats, str):
        stats = normalization_stats(stats)
    array = np.asarray(array)
    _check_channels(array.shape, len(stats))
    x = array.astype(np.float32, copy=False)
    col = (slice(None), None, None)
    p1, p99 = stats.p1[col].astype(np.float32), stats.p99[col].astype(np.float32)
    mean, std = stats.mean[col].astype(np.float32), stats.std[col].astype(np.float32)
    y = np.clip((x - p1) / (p99 - p1), 0.0, 1.0)
    y = (y - mean) / std
    if nan_to is not None:
        y = np.where(np.isnan(y), np.float32(nan_to), y)
    return y.astype(np.float32, copy=False)


def resize_to(
    x: torch.Tensor,
    size: int | tuple[int, int] = 224,
    mode: str = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Resize ``[C, H, W]`` or ``[B, C, H, W]`` to the model input size (224 x 224 by default).

    The authors resize with bicubic interpolation and anti-aliasing (scikit-image ``resize(order=3,
    anti_aliasing=True)``) after normalising; WHU-RS19 is their one bilinear exception (see
    ``normalization.yaml``). This is close to, not identical with, their pixels: scikit-image's order 3 is a
    cubic spline and its anti-aliasing a Gaussian pre-filter (which does nothing when upsampling, as for
    EuroSAT 64, BigEarthNet 120 and DFC2020 96 -> 224). Note that in torch ``antialias=True`` changes the
    bicubic kernel itself (PIL-style, a = -0.5, weights renormalised at the borders) even when upsampling,
    so both settings give slightly different images at any scale. Bicubic can overshoot the input range a little.

    Args:
        x: image or batch; integer tensors are promoted to float32.
        size: output side, or ``(height, width)``.
        mode: ``torch.nn.functional.interpolate`` mode (``"bicubic"``, ``"bilinear"``, ``"nearest"``, ...).
        antialias: anti-alias when downsampling (only used by ``"bilinear"`` and ``"bicubic"``).
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"resize_to expects [C, H, W] or [B, C, H, W], got shape {tuple(x.shape)}")
    out_size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if tuple(x.shape[-2:]) == out_size:
        return x
    batch = x if x.ndim == 4 else x.unsqueeze(0)
    kwargs: dict[str, Any] = {}
    if mode in ("bilinear", "bicubic"):
        kwargs.update(align_corners=False, antialias=antialias)
    out = F.interpolate(batch, size=out_size, mode=mode, **kwargs)
    return out if x.ndim == 4 else out.squeeze(0)


def compute_statistics(
    images: Iterable[np.ndarray],
    percentiles: tuple[float, float] = (1.0, 99.0),
    max_pixels_per_image: int | None = 65536,
    seed: int = 0,
    band_names: Sequence[str] | None = None,
) -> dict[str, list[float]]:
    """SMARTIES normalisation statistics of a dataset, with the authors' two-step rule.

    ``p1``/``p99`` are the per-band 1st/99th percentiles of the raw values; ``mean``/``std`` are measured *after*
    the percentile step ``clip((x - p1) / (p99 - p1), 0, 1)``, so they are in ``[0, 1]`` units, like the released
    tables. Pixels with a NaN in any band are left out. Each image contributes at most ``max_pixels_per_image``
    random pixels (seeded; ``None`` = all), so the percentiles are estimates on a subsample: compute them on the
    training split.

    Args:
        images: raw ``[C, ...]`` arrays (any trailing dims: ``[C, H, W]`` or ``[C, T, H, W]``), same ``C``.
        percentiles: the clip percentiles (SMARTIES uses 1 and 99).
        max_pixels_per_image: subsample size per image.
        seed: subsampling seed.
        band_names: only used in error messages.

    Returns:
        ``{"mean": [...], "std": [...], "p1": [...], "p99": [...]}`` (plain floats, YAML-friendly).

    Raises:
        ValueError: no valid pixels, inconsistent channel counts, or a constant band (p99 == p1).
    """
    rng = np.random.default_rng(seed)
    pools: list[np.ndarray] = []
    channels: int | None = None
    for img in images:
        arr = np.asarray(img, dtype=np.float64)
        flat = arr.reshape(arr.shape[0], -1)
        if channels is None:
            channels = flat.shape[0]
        elif flat.shape[0] != channels:
            raise ValueError(f"compute_statistics: images have {channels} and {flat.shape[0]} channels")
        flat = flat[:, np.isfinite(flat).all(axis=0)]
        if max_pixels_per_image is not None and flat.shape[1] > max_pixels_per_image:
            flat = flat[:, rng.choice(flat.shape[1], max_pixels_per_image, replace=False)]
        if flat.shape[1]:
            pools.append(flat)
    if not pools:
        raise ValueError("compute_statistics: no valid (finite, non-nodata) pixels in the given images")
    x = np.concatenate(pools, axis=1)
    p1, p99 = np.percentile(x, percentiles, axis=1)
    names = list(band_names) if band_names is not None else [f"channel {i}" for i in range(x.shape[0])]
    flat_bands = [names[i] for i in np.flatnonzero(p99 <= p1)]
    if flat_bands:
        raise ValueError(
            f"compute_statistics: {', '.join(flat_bands)} are constant on the sampled pixels (p99 == p1); "
            f"SMARTIES' percentile step needs a spread. Use more samples or drop the band."
        )
    y = np.clip((x - p1[:, None]) / (p99 - p1)[:, None], 0.0, 1.0)
    mean, std = y.mean(axis=1), y.std(axis=1)
    std = np.where(std > 0, std, 1e-6)
    return {k: [float(v) for v in arr] for k, arr in (("mean", mean), ("std", std), ("p1", p1), ("p99", p99))}
