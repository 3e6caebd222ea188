"""``smarties stats``: SMARTIES normalisation statistics of your own rasters.

Reads the files through :func:`smarties_terratorch.io.read_raster` (nodata becomes NaN and is left out), computes
``p1``/``p99`` per band and the ``mean``/``std`` after the percentile step with
:func:`smarties_terratorch.normalization.compute_statistics`, and writes them atomically as YAML::

    smarties stats "data/train/*_merged.tif" --bands BLUE GREEN RED NIR_NARROW SWIR_1 SWIR_2 --out stats.yaml

The file loads with ``SmartiesNormalize.from_spec("stats.yaml")`` and with the TerraTorch transform
``smarties_terratorch.normalization.SmartiesAlbumentationsNormalize`` (``statistics: stats.yaml``). Compute it on the
training split only. As with the scene tools, ``--out`` may not be one of the input files, and an existing file is
replaced only with ``--overwrite`` (and only once the new one is complete).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml

from .io import check_output, read_raster, write_text
from .spectrum import get_sensor, resolve_bands
from .normalization import SmartiesNormalize, compute_statistics

__all__ = ["collect_files", "main", "raster_statistics"]


def collect_files(patterns: Sequence[str]) -> list[Path]:
    """Files named by ``patterns`` (paths or globs, ``**`` recursive), sorted, duplicates removed.

    Raises:
        FileNotFoundError: a pattern that matches no file (named in the message).
    """
    files: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        found = [Path(m) for m in matches if Path(m).is_file()]
        if not found:
            raise FileNotFoundError(f"{pattern!r} matches no file: give raster paths or a glob such as 'train/*.tif'")
        files.update(dict.fromkeys(found))
    return list(files)


def _images(files: Sequence[Path], bands: Sequence[str], temporal: bool) -> Iterator[np.ndarray]:
    n = len(bands)
    for path in files:
        image = read_raster(path)
        channels = image.shape[0]
        if temporal and channels % n == 0:
            # TerraTorch's expand_temporal_dimension layout: channels are (date, band) pairs, date-major.
            image = image.reshape(channels // n, n, *image.shape[1:]).swapaxes(0, 1)
        elif channels != n:
            hint = " (or pass --temporal if the file stacks dates)" if channels % n == 0 else ""
            raise ValueError(
                f"{path} has {channels} bands but --bands names {n} ({', '.join(bands)}): give one name per file "
                f"band{hint}."
            )
        yield image


def raster_statistics(
    files: Sequence[str | Path],
    bands: Sequence[str],
    *,
    temporal: bool = False,
    max_pixels_per_image: int | None = 65536,
    seed: int = 0,
) -> dict[str, object]:
    """SMARTIES statistics of ``files`` as the mapping ``smarties stats`` writes.

    Args:
        files: rasters with one band per name in ``bands`` (or ``dates x bands`` with ``temporal``).
        bands: band names, in file order.
        temporal: files stack several dates of ``bands`` (date-major, as TerraTorch's ``expand_temporal_dimension``).
        max_pixels_per_image: random pixels sampled per file for the percentiles (``None``: all).
        seed: sampling seed.

    Returns:
        ``{"name", "bands", "mean", "std", "p1", "p99", "files", "percentiles"}``.
    """
    paths = [Path(f) for f in files]
    stats = compute_statistics(
        _images(paths, list(bands), temporal),
        max_pixels_per_image=max_pixels_per_image,
        seed=seed,
        band_names=list(bands),
    )
    return {"name": "custom", "bands": [str(b) for b in bands], **stats, "files": len(paths), "percentiles": [1, 99]}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smarties stats",
        description="SMARTIES normalisation statistics (p1/p99, then mean/std after clipping) of your rasters.",
    )
    p.add_argument("files", nargs="+", help="raster files or globs (quote globs: 'train/*.tif'; ** is recursive)")
    p.add_argument("--bands", nargs="+", required=True, help="band names, in file order (e.g. B02 B03 B04 B08)")
    p.add_argument("--sensor", help="sensor preset for bare band names (e.g. RGB for R G B), saved in the file")
    p.add_argument("--out", required=True, type=Path, help="YAML file to write (e.g. stats.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (only once the new one is "
                   "complete)")  # fmt: skip
    p.add_argument("--temporal", action="store_true", help="files stack dates: bands = dates x --bands, date-major")
    p.add_argument("--samples", type=int, default=65536, help="random pixels per file (0 = all; default 65536)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    return p


def main(argv: list[str]) -> int:
    """``smarties stats``: compute the statistics and write them; 0 on success, 2 on a usage or data error."""
    args = _parser().parse_args(argv)
    try:
        # The one band vocabulary, checked before any file is read: the written names must find the model's bands.
        resolve_bands(args.bands, sensor=args.sensor, allow_duplicates=True)
        files = collect_files(args.files)
        check_output(args.out, files, overwrite=args.overwrite)  # before reading: never the input, never by surprise
        result = raster_statistics(
            files, args.bands, temporal=args.temporal, max_pixels_per_image=args.samples or None, seed=args.seed
        )
        if args.sensor is not None:
            result = {"name": result["name"], "sensor": get_sensor(args.sensor).name, **result}
        SmartiesNormalize.from_spec(result, args.bands)  # what we write must load: fail here, not in training
        header = f"# SMARTIES normalisation statistics of {len(files)} file(s), written by `smarties stats`.\n"
        write_text(args.out, header + yaml.safe_dump(result, sort_keys=False))
    except (ValueError, OSError) as err:
        print(f"smarties stats: error: {err}", file=sys.stderr)
        return 2
    print(f"smarties stats: {len(files)} file(s), {len(args.bands)} band(s) -> {args.out}")
    return 0


if __name__ == "__main__":  # python -m smarties_terratorch.stats ...
    sys.exit(main(sys.argv[1:]))
