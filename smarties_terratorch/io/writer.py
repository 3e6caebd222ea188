"""Atomic writes: every file the package produces appears complete under its final name, or not at all.

A file is written under a hidden temporary name in the target folder (``.<name>.<random>.partial<suffix>``) and
renamed over the final name only once it is complete, so a failed, interrupted or killed run never leaves a
half-written file, and never replaces an earlier output with one. :func:`check_output` refuses an output that is
one of the inputs, or that exists already unless the caller allows overwriting.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

__all__ = [
    "BackgroundWriter",
    "OutputError",
    "atomic_path",
    "check_output",
    "final_mode",
    "grid_of",
    "open_geotiff",
    "temp_dir",
    "write_bytes",
    "write_text",
]

PathType = str | os.PathLike


class OutputError(OSError):
    """An output that cannot be written as asked; the message names the path and the fix."""


def _describe_os_error(path: Path, err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return f"Writing {path} failed: no space left on the device; free space or write elsewhere. Nothing was written."
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Writing {path} failed: no permission to write in {path.parent}. Nothing was written."
    return f"Writing {path} failed ({err.strerror or err}). Nothing was written."


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (``os.umask`` can only swap it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def final_mode(path: PathType) -> int:
    """Permission bits a file written to ``path`` gets: an existing file's, else ``0o666`` minus the umask.

    ``tempfile.mkstemp`` creates its file with mode 0600 whatever the umask says; renamed into place as it is, every
    output would be private to its owner, unlike a file that ``open()`` creates.
    """
    try:
        return Path(path).stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def temp_dir(parent: PathType, prefix: str) -> Path:
    """A new hidden folder in ``parent`` for a folder renamed into place later, with the mode ``mkdir`` would give
    (``tempfile.mkdtemp`` makes it 0700 whatever the umask says)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


@contextlib.contextmanager
def atomic_path(path: PathType) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any failure removed.

    The temporary file keeps ``path``'s suffix (drivers that go by the suffix still pick the right format).
    Interrupts (``KeyboardInterrupt``, ``SystemExit``) count as failures. A process killed outright leaves at most
    the hidden temporary file, never a partial file under the final name.

    Raises:
        OutputError: the folder cannot be created or written, or the device is full (the path is named).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".partial{path.suffix}")
        os.close(fd)
    except OSError as err:
        raise OutputError(_describe_os_error(path, err)) from err
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # Flush to disk before the rename, so a crash cannot leave a renamed but empty file.
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, final_mode(path))  # the mode a plain open() would give, not mkstemp's 0600
            os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, OutputError):
            raise
        raise OutputError(_describe_os_error(path, err)) from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: PathType, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathType, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode(encoding))


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links and other aliases of one inode
    except OSError:
        return False


def check_output(out: PathType, inputs: Iterable[PathType] = (), *, overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """Refuse an output path that is one of the inputs (same path or same file) or exists without ``overwrite``.

    Args:
        out: the output path.
        inputs: every file the run reads (scenes, checkpoints, statistics...).
        overwrite: allow replacing an existing ``out`` (it is still replaced only once the new file is complete).
        flag: the option that sets ``overwrite``, named in the error.

    Raises:
        ValueError: ``out`` is one of the inputs.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    out = Path(out)
    for src in inputs:
        if _same_file(out, Path(src)):
            raise ValueError(f"The output {out} is an input of this run ({src}); write the output elsewhere.")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass {flag} to replace it (it is replaced only once the new file is complete).")
    if out.exists() and out.is_dir():
        raise FileExistsError(f"{out} is a folder; give a file name for the output.")
    return out


@contextlib.contextmanager
def open_geotiff(
    path: PathType,
    *,
    height: int,
    width: int,
    count: int,
    dtype: str,
    crs: CRS | None,
    transform: Affine,
    nodata: float | None = None,
    **options: Any,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Open a GeoTIFF for writing under a temporary name; it takes ``path``'s name only once closed without error.

    Deflate-compressed, tiled 256 x 256 when large enough, BigTIFF when needed; ``options`` override the profile.
    """
    profile: dict[str, Any] = {
        "driver": "GTiff", "height": height, "width": width, "count": count, "dtype": dtype, "crs": crs,
        "transform": transform, "nodata": nodata, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if count > 1:
        profile["interleave"] = "pixel" if count <= 4 else "band"
    profile.update(options)
    with atomic_path(path) as tmp:
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                yield dst
        except rasterio.errors.RasterioIOError as err:
            # GDAL reports a full disk as an I/O error; say what happened to which file.
            raise OutputError(f"Writing {path} failed: {err}. Nothing was written.") from err


def grid_of(reader: Any, scale: int = 1) -> dict[str, Any]:
    """``height``/``width``/``crs``/``transform`` of ``reader``'s grid coarsened ``scale`` times (same origin)."""
    return {
        "height": math.ceil(reader.height / scale),
        "width": math.ceil(reader.width / scale),
        "crs": reader.crs,
        "transform": reader.transform @ Affine.scale(scale),
    }



class BackgroundWriter:
    """Windowed writes to an open rasterio dataset on one background thread, so compression overlaps compute.

    GDAL compresses a block when it is written, on the calling thread and with the GIL released; on the model's
    thread that time is lost to the model. At most ``depth`` writes wait at a time (each holds its array), so
    memory stays bounded. An error of a write is raised by the next :meth:`write`, by :meth:`flush` or on leaving
    the ``with`` block, inside the caller's :func:`open_geotiff`, so the output is discarded as for a direct write.
    Leave this ``with`` block before the dataset's: the dataset must not close while a write runs.

    Args:
        dst: a dataset open for writing (e.g. from :func:`open_geotiff`), used by no other thread meanwhile.
        depth: writes that may be pending before :meth:`write` waits for the oldest.
    """

    def __init__(self, dst: Any, depth: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.dst, self.depth = dst, depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raster-writer")
        self._pending: deque[Future] = deque()

    def write(self, array: Any, window: Window) -> None:
        """Queue ``dst.write(array, window=window)``; ``array`` must not change until the write is done."""
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self.dst.write, array, window=window))

    def flush(self) -> None:
        """Wait for every queued write; raise the first error."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            for fut in self._pending:  # an error already propagates: drop what has not started, wait for the rest
                fut.cancel()
            self._pool.shutdown(wait=True)
            self._pending.clear()
