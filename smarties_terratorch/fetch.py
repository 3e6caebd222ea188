"""Fetching, verifying and unpacking files: the one layer under ``smarties data download``, the weights loaders,
the paper-table runner and the example data.

Hashes are read in one pass per file (:func:`file_digests`); a file's sha256 is remembered per version (path, size,
modification time) for the life of the process, because the same weights file is often loaded several times in a
run (:func:`file_sha256`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["CHUNK_SIZE", "file_digests", "file_sha256"]

CHUNK_SIZE = 1 << 20

# The digests a sources table or a weights declaration may name; ``git_blob`` is git's object id of the file.
_ALGORITHMS = ("sha256", "md5", "git_blob")


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    """Hex digests of ``path`` for each of ``algorithms`` (``sha256``, ``md5``, ``git_blob``), in one read."""
    path = Path(path)
    hashers: dict[str, hashlib._Hash] = {}
    for name in algorithms:
        if name == "sha256":
            hashers[name] = hashlib.sha256()
        elif name == "md5":
            hashers[name] = hashlib.md5(usedforsecurity=False)
        elif name == "git_blob":
            hashers[name] = hashlib.sha1(b"blob %d\0" % path.stat().st_size, usedforsecurity=False)
        else:
            raise ValueError(f"unknown digest {name!r}; expected one of {', '.join(_ALGORITHMS)}")
    if len(hashers) == 1:  # the common case: hashlib's own loop (releases the GIL, no Python-level chunking)
        (name, hasher), = hashers.items()
        with open(path, "rb") as fh:
            return {name: hashlib.file_digest(fh, lambda: hasher).hexdigest()}
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file, computed once per file version (path, size, modification time) per process."""
    real = Path(path).resolve()
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        _SHA256[key] = file_digests(real)["sha256"]
    return _SHA256[key]
