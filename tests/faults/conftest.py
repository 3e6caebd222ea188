"""Shared tools of the fault-injection suite.

Every fault test feeds one hostile or bad input to a public entry point (Python API, ``smarties`` CLI, TerraTorch,
PANGAEA) and asserts three things: the exception type (or CLI exit code), that the message names the offending
file or value, and that every input and earlier output is byte-identical afterwards (:func:`frozen`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


def _digest(root: Path) -> dict[str, str]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@contextmanager
def frozen_paths(*paths: Path | str) -> Iterator[None]:
    """Assert that the files (or every file under the folders) in ``paths`` are byte-identical afterwards and
    that no file was added or removed there (hidden temporary files included)."""
    roots = [Path(p) for p in paths]
    before = {str(r): _digest(r) if r.exists() else None for r in roots}
    yield
    after = {str(r): _digest(r) if r.exists() else None for r in roots}
    assert after == before, f"files changed: {[k for k in before if before[k] != after[k]]}"


ALIASES = ("same path", "hard link", "symlink")


def alias_of(path: Path, how: str, folder: Path) -> Path:
    """Another name for ``path`` (one of :data:`ALIASES`), created in ``folder``: what an output check must see
    through."""
    if how == "same path":
        return path
    alias = folder / f"{'link' if how == 'hard link' else 'sym'}{path.suffix}"
    if how == "hard link":
        os.link(path, alias)
    else:
        alias.symlink_to(path)
    return alias


@pytest.fixture
def frozen() -> object:
    """``with frozen(tmp_path): ...`` asserts that nothing under ``tmp_path`` changed."""
    return frozen_paths


class _Hostile:
    """Unpickling this object creates ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def write_hostile_checkpoint(path: Path, marker: Path, *, lightning: bool = False) -> Path:
    """A ``torch.save`` file with real tensors plus an object whose unpickling touches ``marker``.

    ``lightning=True`` nests it like a Lightning checkpoint (``state_dict`` + ``hyper_parameters``).
    """
    sd = {"cls_token": torch.zeros(1, 1, 8), "evil": _Hostile(str(marker))}
    obj = {"state_dict": sd, "hyper_parameters": {"model_args": {"x": _Hostile(str(marker))}}} if lightning else sd
    torch.save(obj, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    return path


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """``(checkpoint, marker)``: a Lightning-style hostile checkpoint and the marker file it must never create."""
    marker = tmp_path / "PWNED"
    return write_hostile_checkpoint(tmp_path / "evil.ckpt", marker, lightning=True), marker
