"""Pair lists and view specs of paired multi-sensor pre-training data, and reading one view of an entry.

A *source* is a list file plus how to read its two views::

    # pairs list: one `first second` pair per line (the released format); relative paths are relative to the
    # list file; blank lines and `#` comments are skipped. A line with ONE path is a single-sensor sample:
    # both views are read from that image (e.g. its RGB bands paired with all its bands).
    S2A_MSIL2A_20170613T101031_87_48  S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48
    tiles/tile_00_03.tif

Each entry is either a multi-band raster (GeoTIFF; the view's ``channels`` pick 1-based band indexes, default
all) or a folder with one file per band, ``<folder>/*_<BAND>.tif`` (the BigEarthNet layout); bands of a folder
come at different resolutions (S2 10/20/60 m) and are resampled bilinearly on read to the finest band's grid.
Pixels are read through :mod:`smarties_terratorch.io` (nodata as NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds

from ..io import RasterReader, read_raster
from ..normalization import SmartiesNormalize
from ..spectrum import ResolvedBands, resolve_bands
from .utils import read_band_files

__all__ = ["SourceSpec", "ViewSpec", "check_overlap", "read_pairs_list", "read_view"]

PathType = str | PathLike


@dataclass
class ViewSpec:
    """How to read and normalise one view (sensor) of a source.

    Attributes:
        bands: SMARTIES band names, one per channel read (``"S2-L1C:B04"``, ``"S1:VV"``, wavelengths, ...).
        channels: 1-based band indexes of a multi-band file to read, in ``bands`` order (default: all bands).
            Ignored for folder entries, which are read band by band by name.
        statistics: normalisation table (``"S2-L1C"``, ``"S2-L2A"``, ``"S1-GRD"``, ``"RGB"``) or JSON/YAML
            statistics file, restricted to the view's bands by name (the part after ``SENSOR:``).
        mean, std, p1, p99: explicit statistics instead of a table (for sensors without released ones).
    """

    bands: list[str]
    channels: list[int] | None = None
    statistics: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    p1: list[float] | None = None
    p99: list[float] | None = None

    def __post_init__(self) -> None:
        self.bands = list(self.bands)
        if not self.bands:
            raise ValueError("A view needs at least one band name")
        if self.channels is not None and len(self.channels) != len(self.bands):
            raise ValueError(f"channels {self.channels} and bands {self.bands} must have the same length")
        self.resolved: ResolvedBands = resolve_bands(self.bands)  # raises a clear error on unknown bands

    @property
    def file_band_names(self) -> list[str]:
        """Band names without the sensor qualifier (``"S2-L1C:B04"`` -> ``"B04"``): file suffixes, table keys."""
        return [str(b).split(":", 1)[-1] for b in self.bands]

    def normalizer(self) -> SmartiesNormalize:
        """The view's normaliser (:meth:`SmartiesNormalize.from_spec`); NaN/nodata become 0, the band mean.

        Raises:
            FileNotFoundError, ValueError: statistics that are missing, unreadable or do not fit the view's bands;
                the message names the view and the table or file.
        """
        explicit = {k: v for k, v in (("mean", self.mean), ("std", self.std), ("p1", self.p1), ("p99", self.p99))}
        if self.statistics is None and None in explicit.values():
            raise ValueError(f"View {self.bands}: give statistics=<table name or file> or all of mean, std, p1, p99")
        spec = self.statistics if self.statistics is not None else explicit
        try:
            return SmartiesNormalize.from_spec(spec, bands=self.bands, nan_to=0.0)
        except (ValueError, FileNotFoundError) as err:
            raise type(err)(f"View {self.bands}: {err}") from None


@dataclass
class SourceSpec:
    """A list file and its two views.

    Attributes:
        list: pairs list file (``first second`` per line, or one path for a single-sensor sample).
        first: the view of the first path.
        second: the view of the second path (of the same image on one-path lines).
        repeat: how many times each sample appears per epoch (oversamples small sources).
        check_overlap: check that each pair's georeferenced footprints intersect.
    """

    list: str
    first: ViewSpec
    second: ViewSpec
    repeat: int = 1
    check_overlap: bool = True

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | SourceSpec) -> SourceSpec:
        if isinstance(spec, SourceSpec):
            return spec
        spec = dict(spec)
        missing = {"list", "first", "second"} - set(spec)
        if missing:
            raise ValueError(f"Source {spec} lacks {sorted(missing)}: give list, first and second")
        for key in ("first", "second"):
            if not isinstance(spec[key], ViewSpec):
                spec[key] = ViewSpec(**spec[key])
        return cls(**spec)


def read_pairs_list(path: PathType) -> list[tuple[Path, Path]]:
    """Parse a pairs list: ``[(first, second), ...]``; a one-path line gives ``(path, path)``.

    Raises:
        FileNotFoundError: the list, or any file it names (all missing ones are listed with their line numbers).
        ValueError: a line with more than two entries, or an empty list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Pairs list not found: {path}")
    pairs, missing = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise ValueError(f"{path}:{lineno}: expected 'first second' (or one path), got {len(parts)} entries")
        files = [p if p.is_absolute() else path.parent / p for p in map(Path, parts)]
        missing += [f"  line {lineno}: {f}" for f in files if not f.exists()]
        pairs.append((files[0], files[-1]))
    if missing:
        raise FileNotFoundError(
            f"{path} names {len(missing)} missing file(s):\n" + "\n".join(missing[:20]) + "\nFix or remove those lines."
        )
    if not pairs:
        raise ValueError(f"{path} lists no images")
    return pairs


def _band_file(folder: Path, band: str) -> Path:
    matches = sorted(folder.glob(f"*_{band}.tif")) or sorted(folder.glob(f"{band}.tif"))
    if not matches:
        raise FileNotFoundError(f"No file for band {band} in {folder} (expected <folder>/*_{band}.tif)")
    return matches[0]


def _footprint(path: Path, view: ViewSpec) -> tuple[Any, tuple[float, float, float, float]] | None:
    file = _band_file(path, view.file_band_names[0]) if path.is_dir() else path
    with RasterReader(file, [1], gdal_cache_mb=16) as reader:
        if reader.crs is None:
            return None
        return reader.crs, array_bounds(reader.height, reader.width, reader.transform)


def read_view(path: PathType, view: ViewSpec) -> np.ndarray:
    """Raw ``[C, H, W]`` float32 of a view (nodata -> NaN); folder entries are resampled to the finest band grid."""
    path = Path(path)
    if not path.is_dir():
        image = read_raster(path, view.channels)
        if image.shape[0] != len(view.bands):
            raise ValueError(f"{path} has {image.shape[0]} bands but the view names {len(view.bands)}: {view.bands}")
        return image
    # Co-registered band files of one patch (S2 at 10/20/60 m): GDAL resamples the coarser ones bilinearly onto
    # the finest grid while reading.
    return read_band_files([_band_file(path, b) for b in view.file_band_names])


def check_overlap(source: SourceSpec, pairs: list[tuple[Path, Path]]) -> None:
    """Raise ``ValueError`` naming the first pair whose georeferenced footprints do not intersect (pairs without
    a CRS on either side, and one-path lines, are trusted)."""
    for first, second in pairs:
        if first == second:
            continue
        fa, fb = _footprint(first, source.first), _footprint(second, source.second)
        if fa is None or fb is None:
            continue
        (crs_a, box_a), (crs_b, box_b) = fa, fb
        box_b = transform_bounds(crs_b, crs_a, *box_b) if crs_b != crs_a else box_b
        if box_a[0] >= box_b[2] or box_b[0] >= box_a[2] or box_a[1] >= box_b[3] or box_b[1] >= box_a[3]:
            raise ValueError(
                f"{source.list}: {first} and {second} do not overlap (bounds {tuple(round(v) for v in box_a)} vs "
                f"{tuple(round(v) for v in box_b)} in {crs_a}); pairs must be co-registered images of one place."
            )
