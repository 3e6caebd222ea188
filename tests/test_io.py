"""The raster layer (``smarties_terratorch.io``): the one reader and the atomic writers."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

from smarties_terratorch.io import (
    BackgroundWriter,
    OutputError,
    RasterError,
    RasterReader,
    atomic_path,
    check_output,
    grid_of,
    open_geotiff,
    read_raster,
    resampling_kernel,
    write_bytes,
    write_text,
)

CRS = "EPSG:32632"
X0, Y0 = 500_000.0, 5_000_000.0


def _tif(path: Path, data: np.ndarray, res: float = 10.0, origin: tuple[float, float] = (X0, Y0), crs=CRS,
         nodata: float | None = None) -> Path:  # fmt: skip
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
        dtype=data.dtype.name, crs=crs, transform=from_origin(*origin, res, res), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data)
    return path


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------------------ reader
def test_multiband_read_nodata_and_nan_become_nan(tmp_path: Path) -> None:
    data = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) + 1
    data[0, 1, 2] = -9999
    data[2, 3, 4] = np.nan
    path = _tif(tmp_path / "a.tif", data, nodata=-9999)
    image = read_raster(path)
    assert image.dtype == np.float32 and image.shape == (3, 4, 5)
    assert np.isnan(image[0, 1, 2]) and np.isnan(image[2, 3, 4]) and np.isnan(image).sum() == 2
    np.testing.assert_array_equal(image[1], data[1])
    np.testing.assert_array_equal(read_raster(path, indexes=[2, 1])[0], data[1])  # 1-based, in the given order
    with RasterReader(path) as reader:
        assert reader.shape == (4, 5) and reader.count == 3 and reader.nodata == [-9999.0] * 3
        assert str(reader.crs) == CRS and reader.transform == from_origin(X0, Y0, 10, 10)


def test_integer_nodata_is_nan_too(tmp_path: Path) -> None:
    data = np.full((4, 4), 7, dtype=np.uint16)
    data[0, 0] = 0
    image = read_raster(_tif(tmp_path / "u.tif", data, nodata=0))
    assert np.isnan(image[0, 0, 0]) and (image[0].ravel()[1:] == 7).all()


def test_windows_may_reach_past_the_edges(tmp_path: Path) -> None:
    data = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    with RasterReader(_tif(tmp_path / "w.tif", data)) as reader:
        inside = reader.read(1, 2, 3, 3)
        np.testing.assert_array_equal(inside[0], data[0, 1:4, 2:5])
        edge = reader.read(-2, 4, 4, 4)  # 2 rows above, 2 columns right of the raster
        assert edge.shape == (1, 4, 4)
        assert np.isnan(edge[0, :2]).all() and np.isnan(edge[0, :, 2:]).all()
        np.testing.assert_array_equal(edge[0, 2:, :2], data[0, :2, 4:6])
        assert np.isnan(reader.read(10, 10, 2, 2)).all()  # entirely outside


def test_out_shape_resamples_on_read(tmp_path: Path) -> None:
    data = np.repeat(np.repeat(np.arange(4, dtype=np.float32).reshape(2, 2), 4, 0), 4, 1)[None]  # 8 x 8 blocks
    path = _tif(tmp_path / "o.tif", data)
    small = read_raster(path, out_shape=(2, 2), resampling="nearest")
    np.testing.assert_array_equal(small[0], [[0, 1], [2, 3]])
    assert read_raster(path, out_shape=(16, 16)).shape == (1, 16, 16)
    with RasterReader(path) as reader, pytest.raises(ValueError, match="inside the raster"):
        reader.read(-1, 0, 4, 4, out_shape=(2, 2))


def test_per_band_files_at_mixed_resolutions_land_on_the_finest_grid(tmp_path: Path) -> None:
    fine = _tif(tmp_path / "b10.tif", np.ones((8, 8), np.float32))
    coarse_values = np.arange(16, dtype=np.float32).reshape(4, 4)
    coarse = _tif(tmp_path / "b20.tif", coarse_values, res=20.0)
    with RasterReader([coarse, fine], resampling="nearest") as reader:
        assert reader.shape == (8, 8) and reader.count == 2 and reader.transform.a == 10.0  # the finest file's grid
        image = reader.read()
    np.testing.assert_array_equal(image[0], np.repeat(np.repeat(coarse_values, 2, 0), 2, 1))
    assert (image[1] == 1).all()


def test_band_file_in_another_crs_is_warped(tmp_path: Path) -> None:
    ref = _tif(tmp_path / "utm.tif", np.ones((20, 20), np.float32))
    # The same area in EPSG:32631 (one UTM zone west): only warping puts it onto the reference grid.
    with rasterio.open(ref) as src:
        from rasterio.warp import transform_bounds

        left, bottom, right, top = transform_bounds(src.crs, "EPSG:32631", *src.bounds)
    other = tmp_path / "west.tif"
    res = (right - left) / 10
    _tif(other, np.full((12, 12), 5, np.float32), res=res, origin=(left - res, top + res), crs="EPSG:32631")
    image = read_raster([ref, other])
    assert image.shape == (2, 20, 20)
    assert np.nanmean(image[1]) == pytest.approx(5.0) and np.isfinite(image[1]).mean() > 0.9


def test_band_file_covering_part_of_the_grid_is_nan_outside(tmp_path: Path) -> None:
    ref = _tif(tmp_path / "full.tif", np.ones((8, 8), np.float32))
    half = _tif(tmp_path / "half.tif", np.full((8, 4), 3, np.float32))  # the western half only
    image = read_raster([ref, half], resampling="nearest")
    assert (image[1, :, :4] == 3).all() and np.isnan(image[1, :, 4:]).all()


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    ok = _tif(tmp_path / "ok.tif", np.ones((4, 4), np.float32))
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        RasterReader(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(RasterError, match=r"junk\.tif is not a readable raster"):
        RasterReader(junk)
    multi = _tif(tmp_path / "multi.tif", np.ones((2, 4, 4), np.float32))
    with pytest.raises(RasterError, match=r"multi\.tif has more"):
        RasterReader([ok, multi])
    with pytest.raises(RasterError, match=r"multi\.tif has 2 band\(s\); band index\(es\) \[3\]"):
        RasterReader(multi, indexes=[3])
    far = _tif(tmp_path / "far.tif", np.ones((4, 4), np.float32), origin=(X0 + 1e5, Y0))
    with pytest.raises(RasterError, match=r"far\.tif does not overlap .*ok\.tif"):
        RasterReader([ok, far])
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", driver="GTiff", height=4, width=4, count=1, dtype="float32",
                       transform=from_origin(0, 4, 2, 2)) as dst:  # fmt: skip
        dst.write(np.ones((1, 4, 4), np.float32))
    with pytest.raises(RasterError, match="only one of them has a CRS"):
        RasterReader([ok, bare])
    with pytest.raises(ValueError, match="Unknown resampling 'sharp'.*bilinear"):
        RasterReader(ok, resampling="sharp")
    with pytest.raises(ValueError, match="at least one"):
        RasterReader([])
    assert resampling_kernel("CUBIC").name == "cubic"


def test_reader_closes_its_files(tmp_path: Path) -> None:
    path = _tif(tmp_path / "c.tif", np.ones((4, 4), np.float32))
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        read_raster(path)
    assert len(os.listdir("/proc/self/fd")) <= fds + 1


# ------------------------------------------------------------------------------------------------------ writers
def test_atomic_path_renames_on_success_only(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.txt"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".out.txt.") and tmp.suffix == ".txt"
        tmp.write_text("new")
        assert not out.exists()  # nothing under the final name before the rename
    assert out.read_text() == "new" and _hidden(out.parent) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(1)])
def test_atomic_path_cleans_up_and_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    out = write_text(tmp_path / "out.txt", "old")
    with pytest.raises(type(error)):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise error
    assert out.read_text() == "old" and _hidden(tmp_path) == []


def test_full_disk_and_permission_errors_name_the_path(tmp_path: Path) -> None:
    out = write_bytes(tmp_path / "o.bin", b"old")
    with pytest.raises(OutputError, match=rf"Writing {out} failed: no space left on the device"):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputError, match=rf"Writing {out} failed: no permission to write in {tmp_path}"):
        with atomic_path(out):
            raise PermissionError(errno.EACCES, "Permission denied")
    assert out.read_bytes() == b"old" and _hidden(tmp_path) == []


def test_check_output(tmp_path: Path) -> None:
    scene = write_bytes(tmp_path / "scene.tif", b"x")
    with pytest.raises(ValueError, match=r"output .*scene\.tif is an input"):
        check_output(tmp_path / "." / "scene.tif", [scene])
    link = tmp_path / "link.tif"
    os.link(scene, link)
    with pytest.raises(ValueError, match=r"link\.tif is an input of this run \(.*scene\.tif\)"):
        check_output(link, [scene])  # the same file under another name
    with pytest.raises(FileExistsError, match=r"link\.tif exists; pass --force"):
        check_output(link, [], flag="--force")
    assert check_output(link, [], overwrite=True) == link
    assert check_output(tmp_path / "new.tif", [scene]) == tmp_path / "new.tif"
    with pytest.raises(FileExistsError, match="is a folder"):
        check_output(tmp_path, [], overwrite=True)


def test_open_geotiff_writes_atomically(tmp_path: Path) -> None:
    out = tmp_path / "g.tif"
    data = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    transform = from_origin(X0, Y0, 10, 10)
    with open_geotiff(out, height=5, width=6, count=2, dtype="float32", crs=CRS, transform=transform,
                      nodata=float("nan")) as dst:  # fmt: skip
        dst.write(data)
        assert not out.exists()
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert str(src.crs) == CRS and src.transform == transform and np.isnan(src.nodata)
    before = out.read_bytes()
    with pytest.raises(RuntimeError), open_geotiff(out, height=5, width=6, count=2, dtype="float32", crs=CRS,
                                                    transform=transform) as dst:  # fmt: skip
        dst.write(data[:, :2], window=rasterio.windows.Window(0, 0, 6, 2))
        raise RuntimeError("killed half-way")
    assert out.read_bytes() == before and _hidden(tmp_path) == []


def test_background_writer_writes_every_window_and_raises_write_errors(tmp_path: Path) -> None:
    out = tmp_path / "bg.tif"
    data = np.random.default_rng(0).normal(size=(3, 10, 6)).astype(np.float32)
    kwargs = {"height": 10, "width": 6, "count": 3, "dtype": "float32", "crs": CRS,
              "transform": from_origin(X0, Y0, 10, 10)}  # fmt: skip
    with open_geotiff(out, **kwargs) as dst, BackgroundWriter(dst, depth=2) as writer:
        for r in range(0, 10, 3):
            writer.write(data[:, r : r + 3].copy(), window=rasterio.windows.Window(0, r, 6, min(3, 10 - r)))
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), data)
    before = out.read_bytes()

    class Failing:  # a write that fails in the background thread fails the caller's block, so no output
        def write(self, array: np.ndarray, window: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="no space left"), open_geotiff(out, **kwargs):
        with BackgroundWriter(Failing()) as writer:
            writer.write(data, window=rasterio.windows.Window(0, 0, 6, 10))
    assert out.read_bytes() == before and _hidden(tmp_path) == []
    with pytest.raises(ValueError, match="depth"):
        BackgroundWriter(Failing(), depth=0)


def test_grid_of_coarsens_the_reader_grid(tmp_path: Path) -> None:
    with RasterReader(_tif(tmp_path / "g.tif", np.ones((10, 9), np.float32))) as reader:
        grid = grid_of(reader, 4)
    assert (grid["height"], grid["width"]) == (3, 3)
    assert grid["transform"] == from_origin(X0, Y0, 10, 10) * Affine.scale(4)
