"""The raster layer: one reader (:class:`RasterReader`, :func:`read_raster`) and atomic writers.

Everything the package reads from rasters goes through :mod:`.reader` (nodata as NaN, per-band files warped onto
one grid, windows); everything it writes goes through :mod:`.writer` (temporary file + rename, so a failed or
killed run never leaves a partial file or replaces an earlier output).
"""

from .reader import RasterError, RasterReader, read_raster, resampling_kernel
from .writer import BackgroundWriter, OutputError, atomic_path, check_output, grid_of, open_geotiff, write_bytes, write_text

__all__ = [
    "BackgroundWriter",
    "OutputError",
    "RasterError",
    "RasterReader",
    "atomic_path",
    "check_output",
    "grid_of",
    "open_geotiff",
    "read_raster",
    "resampling_kernel",
    "write_bytes",
    "write_text",
]
