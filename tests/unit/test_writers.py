"""Writers: GeoTIFF round trip, PNG scales and sidecars, atomic publishing."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_bounds

from wps_app.core import writers
from wps_app.core.errors import OutputError
from wps_app.core.types import Grid, Raster, RenderOptions


@pytest.fixture
def gradient() -> Raster:
    rng = np.random.default_rng(11)
    data = rng.normal(0, 300, size=(300, 280)).astype(np.float32)
    data[:4, :6] = np.nan
    return Raster(data, from_bounds(-73.4940, 45.5538, -73.4931, 45.5546, 280, 300))


def test_geotiff_round_trip(tmp_path, gradient):
    """CRS, exact transform, float32, NaN nodata, DEFLATE + predictor 3, tags, values."""
    path = writers.write_geotiff(gradient, tmp_path / "g.tif", {"METHOD": "sobel_x"})
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.transform == gradient.transform
        assert ds.dtypes == ("float32",)
        assert math.isnan(ds.nodata)
        assert ds.compression.name == "deflate"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
        assert ds.tags()["METHOD"] == "sobel_x"
        np.testing.assert_array_equal(ds.read(1), gradient.data)


def test_geotiff_zstd_is_a_configuration_choice(tmp_path, gradient):
    path = writers.write_geotiff(gradient, tmp_path / "z.tif", {},
                                  RenderOptions(geotiff_compress="ZSTD", geotiff_level=1))
    with rasterio.open(path) as ds:
        assert ds.compression.name == "zstd"
        np.testing.assert_array_equal(ds.read(1), gradient.data)


def test_signed_png_scale():
    """0 -> 128, +max -> 255, -max -> 1, half of max -> 128 + 63.5 rounded; NaN transparent."""
    g = np.array([[0.0, 1020.0, -1020.0, 510.0, np.nan, 5000.0]], dtype=np.float32)
    grey, alpha = writers.png_levels(g, "sobel_x", "signed")
    assert grey[0, :4].tolist() == [128, 255, 1, round(128 + 63.5)]
    assert grey[0, 5] == 255
    assert alpha[0].tolist() == [255, 255, 255, 255, 0, 255]


def test_absolute_png_scale_uses_the_same_range():
    g = np.array([[0.0, -765.0, 382.5, 765.0]], dtype=np.float32)
    grey, _ = writers.png_levels(g, "prewitt_y", "absolute")
    assert grey[0].tolist() == [0, 255, 128, 255]


def test_clip_png_scale_reproduces_the_tutorial():
    g = np.array([[-50.0, 0.0, 99.6, 300.0]], dtype=np.float32)
    grey, _ = writers.png_levels(g, "sobel_x", "clip")
    assert grey[0].tolist() == [0, 0, 100, 255]


def test_magnitude_signed_equals_absolute():
    g = np.abs(np.random.default_rng(1).normal(0, 400, (20, 20))).astype(np.float32)
    signed = writers.png_levels(g, "sobel_magnitude", "signed")
    absolute = writers.png_levels(g, "sobel_magnitude", "absolute")
    np.testing.assert_array_equal(signed, absolute)


def test_png_has_georeferencing_sidecars(tmp_path, gradient):
    """GDAL reads the PNG back at the same place, from its aux.xml; the world file agrees."""
    png, aux, world = writers.write_png(gradient, tmp_path / "g.png", "sobel_x", "signed")
    assert aux.name == "g.png.aux.xml" and world.name == "g.pgw"
    with rasterio.open(png) as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.transform.almost_equals(gradient.transform, precision=1e-12)
        assert ds.count == 2
        assert ds.read(2)[0, 0] == 0 and ds.read(2)[100, 100] == 255
    a, d, b, e, c, f = (float(v) for v in world.read_text().split())
    t = gradient.transform
    assert (a, d, b, e) == (t.a, t.d, t.b, t.e)
    assert c == pytest.approx(t.c + t.a / 2, abs=1e-12)
    assert f == pytest.approx(t.f + t.e / 2, abs=1e-12)


def test_publish_moves_everything_at_once(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    files = [work / "a.tif", work / "a.png"]
    for f in files:
        f.write_bytes(b"x")
    final = writers.publish(files, tmp_path / "out", "job-1")
    assert sorted(p.name for p in final.iterdir()) == ["a.png", "a.tif"]
    assert not any(p.name.startswith(".staging") for p in (tmp_path / "out").iterdir())


def test_publish_failure_leaves_nothing(tmp_path):
    """A missing file makes publishing fail and leaves no staging or final directory."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.tif").write_bytes(b"x")
    with pytest.raises(OutputError):
        writers.publish([work / "a.tif", work / "missing.png"], tmp_path / "out", "job-2")
    assert os.listdir(tmp_path / "out") == []


def test_publish_refuses_path_like_job_ids(tmp_path):
    with pytest.raises(OutputError):
        writers.publish([], tmp_path, "../x")


def test_png_without_nodata_is_single_band(tmp_path):
    data = np.linspace(-1020, 1020, 64 * 32, dtype=np.float32).reshape(32, 64)
    raster = Raster(data, from_bounds(-73.5, 45.5, -73.4, 45.6, 64, 32))
    png, *_ = writers.write_png(raster, tmp_path / "g.png", "sobel_x", "signed")
    with rasterio.open(png) as ds:
        assert ds.count == 1
        assert ds.crs.to_epsg() == 4326
        np.testing.assert_array_equal(ds.read(1), writers.png_levels(data, "sobel_x",
                                                                     "signed")[0])


# --- writers fed window by window ---------------------------------------------------

GRID = Grid(300, 280, from_bounds(-73.4940, 45.5538, -73.4931, 45.5546, 300, 280))


def signed_sobel_x_gradient(levels: np.ndarray) -> np.ndarray:
    """A sobel_x gradient whose signed PNG level is exactly `levels` (1..255), built from
    the scale's definition (level = 128 + g * 127 / 1020), away from rounding ties."""
    offset = np.random.default_rng(5).uniform(-0.3, 0.3, levels.shape)
    return ((levels - 128 + offset) * 1020.0 / 127.0).astype(np.float32)


@pytest.fixture
def levels() -> np.ndarray:
    return np.random.default_rng(6).integers(1, 256, size=(GRID.height, GRID.width))


def windows_of(height: int, rows: int):
    return [(first, min(height, first + rows)) for first in range(0, height, rows)]


def test_geotiff_written_in_windows_round_trips(tmp_path, gradient):
    """Four windows of 70 rows: the decoded file is the array, with tags and tiles."""
    tags = {"METHOD": "sobel_x", "BBOX": "1.0,2.0"}
    with writers.GeoTiffWriter(tmp_path / "g.tif", gradient.grid, tags) as writer:
        for first, end in windows_of(300, 70):
            writer.write(first, gradient.data[first:end])
    path = writer.finish()
    with rasterio.open(path) as ds:
        assert (ds.crs.to_epsg(), ds.transform) == (4326, gradient.transform)
        assert ds.block_shapes == [(256, 256)]
        assert ds.tags()["BBOX"] == "1.0,2.0"
        assert ds.descriptions == ("gradient (kernel units on 0-255 luminance)",)
        np.testing.assert_array_equal(ds.read(1), gradient.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.tif"]


def test_geotiff_narrower_than_a_tile_is_striped(tmp_path):
    data = np.arange(200 * 100, dtype=np.float32).reshape(100, 200)
    raster = Raster(data, from_bounds(0.0, 0.0, 2.0, 1.0, 200, 100))
    with rasterio.open(writers.write_geotiff(raster, tmp_path / "s.tif", {})) as ds:
        assert not ds.profile.get("tiled")
        np.testing.assert_array_equal(ds.read(1), data)


def test_cog_is_translated_from_the_windows(tmp_path, gradient):
    with writers.GeoTiffWriter(tmp_path / "c.tif", gradient.grid, {"METHOD": "sobel_x"},
                               cog=True) as writer:
        for first, end in windows_of(300, 128):
            writer.write(first, gradient.data[first:end])
    path = writer.finish()
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1)
        assert ds.tags()["METHOD"] == "sobel_x"
        assert (ds.crs.to_epsg(), ds.transform) == (4326, gradient.transform)
        np.testing.assert_array_equal(ds.read(1), gradient.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif"]


@pytest.mark.parametrize("rows", [280, 64, 1])
def test_png_without_nodata_is_grey_levels_only(tmp_path, levels, rows):
    """One window or many: one grey band holding exactly the levels."""
    data = signed_sobel_x_gradient(levels)
    with writers.PngWriter(tmp_path / "g.png", GRID, "sobel_x", "signed") as writer:
        for first, end in windows_of(GRID.height, rows):
            writer.write(first, data[first:end])
    files = writer.finish()
    assert [p.name for p in files] == ["g.png", "g.png.aux.xml", "g.pgw"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    with rasterio.open(files[0]) as ds:
        assert ds.count == 1 and ds.dtypes == ("uint8",)
        assert ds.crs.to_epsg() == 4326
        assert ds.transform.almost_equals(GRID.transform, precision=1e-12)
        np.testing.assert_array_equal(ds.read(1), levels)


@pytest.mark.parametrize("block_bytes", [4 * 1024 * 1024, 1000])
def test_png_alpha_appears_with_nodata_in_a_later_window(tmp_path, levels, block_bytes,
                                                         monkeypatch):
    """Nodata only in the fourth 64-row window: grey + alpha, alpha 0 exactly at NaN and
    255 everywhere else, the rows before it included (read back whole, or a few rows at a
    time)."""
    monkeypatch.setattr(writers, "ENCODE_BLOCK_BYTES", block_bytes)
    data = signed_sobel_x_gradient(levels)
    data[200:205, 10:20] = np.nan
    with writers.PngWriter(tmp_path / "g.png", GRID, "sobel_x", "signed") as writer:
        for first, end in windows_of(GRID.height, 64):
            writer.write(first, data[first:end])
    png, *_ = writer.finish()
    with rasterio.open(png) as ds:
        assert ds.count == 2
        grey, alpha = ds.read()
    expected = np.where(np.isnan(data), 0, levels)
    np.testing.assert_array_equal(grey, expected)
    np.testing.assert_array_equal(alpha, np.where(np.isnan(data), 0, 255))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pgw", "g.png", "g.png.aux.xml"]


def test_png_sidecars_hold_the_exact_georeferencing(tmp_path, levels):
    """The aux.xml holds the CRS and the geotransform in full precision, as does the world
    file (centre of the upper-left pixel)."""
    with writers.PngWriter(tmp_path / "g.png", GRID, "sobel_x", "signed") as writer:
        writer.write(0, signed_sobel_x_gradient(levels))
    _, aux, world = writer.finish()
    assert aux.read_text() == writers.aux_xml(GRID)
    assert ", ".join(repr(v) for v in GRID.transform.to_gdal()) in aux.read_text()
    assert world.read_text() == writers.world_file_lines(GRID.transform)


def test_a_failed_window_removes_what_was_written(tmp_path, gradient):
    with pytest.raises(RuntimeError):
        with writers.GeoTiffWriter(tmp_path / "g.tif", gradient.grid, {}) as tif, \
                writers.PngWriter(tmp_path / "g.png", gradient.grid, "sobel_x",
                                  "signed") as png:
            tif.write(0, gradient.data[:10])
            png.write(0, gradient.data[:10])
            raise RuntimeError("the WMS went away")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folders_are_output_errors(tmp_path, gradient):
    missing = tmp_path / "missing"
    with pytest.raises(OutputError, match="GeoTIFF"):
        writers.write_geotiff(gradient, missing / "g.tif", {})
    with pytest.raises(OutputError, match="PNG"):
        writers.write_png(gradient, missing / "g.png", "sobel_x", "signed")
    with pytest.raises(OutputError, match="PNG"):
        with writers.PngWriter(missing / "g.png", gradient.grid, "sobel_x", "signed"):
            pass


def test_png_windows_come_in_row_order(tmp_path, gradient):
    with pytest.raises(ValueError, match="row 0"):
        with writers.PngWriter(tmp_path / "g.png", gradient.grid, "sobel_x",
                               "signed") as writer:
            writer.write(64, gradient.data[64:128])
    with writers.PngWriter(tmp_path / "g.png", gradient.grid, "sobel_x", "signed") as writer:
        writer.write(0, gradient.data[:64])
    with pytest.raises(ValueError, match="64 of 300 rows"):
        writer.finish()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("with_alpha", [False, True])
def test_png_encoder_output_decodes_to_its_rows(tmp_path, with_alpha):
    """Blocks of 1, 3 and 6 rows of 7 pixels, extremes included: Pillow and GDAL (libpng,
    which checks every chunk's CRC) decode exactly the rows given."""
    rng = np.random.default_rng(8)
    grey = rng.integers(0, 256, size=(10, 7), dtype=np.uint8)
    grey[0, :2], grey[1, :2] = (0, 255), (255, 0)  # differences that wrap around
    alpha = np.where(rng.random((10, 7)) < 0.3, 0, 255).astype(np.uint8)
    path = tmp_path / "e.png"
    with open(path, "wb") as file:
        encoder = writers.PngEncoder(file, 7, 10, with_alpha, zlevel=9)
        for first, end in ((0, 1), (1, 4), (4, 10)):
            encoder.write(grey[first:end], alpha[first:end] if with_alpha else None)
        encoder.close()
    with Image.open(path) as image:
        assert image.mode == ("LA" if with_alpha else "L")
        decoded = np.asarray(image)
    expected = np.stack([grey, alpha], axis=-1) if with_alpha else grey
    np.testing.assert_array_equal(decoded, expected)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), np.moveaxis(np.atleast_3d(expected), -1, 0))


def test_unknown_stretch_is_refused():
    with pytest.raises(ValueError):
        writers.png_levels(np.zeros((2, 2), np.float32), "sobel_x", "loud")


def test_geotiff_profiles_are_copies_with_the_codec():
    zstd = writers.geotiff_profile("ZSTD", 9)
    assert (zstd["compress"], zstd["zstd_level"]) == ("zstd", 9) and "zlevel" not in zstd
    zstd["tiled"] = False
    assert writers.geotiff_profile()["tiled"] is True
    assert writers.geotiff_profile()["zlevel"] == 1


def test_directory_size_adds_up_the_files_below(tmp_path):
    """Bytes of every file under the folder, nested ones too; 0 for a missing folder."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1" * 1000)
    (tmp_path / "y").write_bytes(b"1" * 24)
    assert writers.directory_size(tmp_path) == 1024
    assert writers.directory_size(tmp_path / "missing") == 0
