"""Writers: GeoTIFF round trip, PNG scales and sidecars, atomic publishing."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds

from wps_app.core import writers
from wps_app.core.errors import OutputError
from wps_app.core.types import Raster, RenderOptions


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
