"""Scene catalogues: many scenes from paths, glob patterns or list files, split into shards for job arrays.

A catalogue entry is one of:

- a raster path (one multi-band scene);
- a glob pattern (``"tiles/*.tif"``, ``"**"`` recurses; quote it so the shell leaves it alone): one scene per
  matching file, in sorted order;
- ``@list.txt``: one scene per line; a line holding several comma-separated paths is one scene given as one file
  per band; blank lines and lines starting with ``#`` are skipped; relative paths are relative to the list file.

Each scene's outputs are named after it (:func:`scene_name`) in one output folder, and ``--shard i/n`` keeps
every n-th scene starting at the i-th (0-based), so ``n`` jobs of a scheduler array share a catalogue.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scene", "expand_scenes", "output_path", "parse_shard", "scene_name", "take_shard"]


@dataclass(frozen=True)
class Scene:
    """One scene: its name (for output files and messages) and its raster files (one, or one per band)."""

    name: str
    paths: tuple[Path, ...]


def scene_name(paths: Sequence[str | os.PathLike]) -> str:
    """A scene's name: the file name without suffix, or for per-band files the folder that holds the first one."""
    first = Path(paths[0])
    if len(paths) == 1:
        return first.name.split(".")[0] or first.name
    return first.resolve().parent.name


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _from_list(path: Path) -> list[Scene]:
    if not path.is_file():
        raise FileNotFoundError(f"Scene list {path} not found")
    scenes = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        files = [Path(p.strip()) for p in line.split(",") if p.strip()]
        files = tuple(f if f.is_absolute() else path.parent / f for f in files)
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{path}, line {number}: raster file(s) not found: {', '.join(missing)}")
        scenes.append(Scene(scene_name(files), files))
    if not scenes:
        raise ValueError(f"Scene list {path} names no scene (one raster path per line)")
    return scenes


def expand_scenes(specs: Sequence[str]) -> list[Scene]:
    """The scenes named by ``specs`` (paths, glob patterns, ``@list`` files), in order.

    Raises:
        FileNotFoundError: a path or list file that does not exist.
        ValueError: a pattern that matches no file, or two scenes that would get the same name.
    """
    scenes: list[Scene] = []
    for spec in specs:
        if spec.startswith("@"):
            scenes.extend(_from_list(Path(spec[1:])))
        elif _is_pattern(spec):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not matches:
                raise ValueError(f"The pattern {spec!r} matches no file")
            scenes.extend(Scene(scene_name([m]), (Path(m),)) for m in matches)
        else:
            if not Path(spec).is_file():
                raise FileNotFoundError(f"Raster file not found: {spec}")
            scenes.append(Scene(scene_name([spec]), (Path(spec),)))
    clashes = [name for name, n in Counter(s.name for s in scenes).items() if n > 1]
    if clashes:
        raise ValueError(
            f"Several scenes share the name(s) {', '.join(sorted(clashes))}, so their outputs would collide; "
            f"split the catalogue by folder and give each part its own --out-dir."
        )
    return scenes


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) as ``(i, n)``; ``None`` is ``(0, 1)``, every scene.

    Raises:
        ValueError: anything else, naming the value.
    """
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n (i is 0-based, e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return i, n


def take_shard(scenes: Sequence[Scene], shard: tuple[int, int]) -> list[Scene]:
    """Every ``n``-th scene starting at the ``i``-th: the shards of ``n`` jobs cover the catalogue exactly once."""
    i, n = shard
    return list(scenes[i::n])


def output_path(out_dir: str | os.PathLike, scene: Scene, suffix: str) -> Path:
    """``<out_dir>/<scene name><suffix>``, e.g. ``out/T32TQM_20240601_embed.tif``."""
    return Path(out_dir) / f"{scene.name}{suffix}"
