"""Real Sentinel-1/Sentinel-2 sample patches for examples and tests, taken from installed packages.

The ``bigearthnet-common`` wheel (Apache-2.0 code; BigEarthNet data under its own terms) ships six genuine
BigEarthNet v1.0 patches as two small archives, each S2 L2A patch with its S1 GRD partner and 43-class labels.
:func:`bigearthnet_examples` unpacks them once into a cache folder; nothing is downloaded.
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

__all__ = ["BigEarthNetExample", "bigearthnet_examples", "cache_root"]

PathType = Union[str, PathLike]

#: Environment variable overriding the package cache root (default ``~/.cache/smarties_terratorch``).
CACHE_ENV = "SMARTIES_CACHE"
_INSTALL_HINT = "pip install --no-deps bigearthnet-common==2.8.0"
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
