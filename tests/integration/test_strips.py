"""Strip processing: bit-for-bit equal to the whole-array result, in the service too."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import rasterio
import requests
from rasters import execute_bbox, read_url
from reference import aligned, expected_gradient
from wpsclient import bbox_input, exception_of, execute_body, literal, post, raw_output

from wps_app.core import filters as raster
from wps_app.core import strips


@pytest.mark.parametrize("rows", [1, 2, 7, 64, 500])
@pytest.mark.parametrize("method", ["sobel_x", "prewitt_y", "sobel_magnitude"])
def test_strips_equal_whole_array_bit_for_bit(rows, method):
    rng = np.random.default_rng(rows)
    bands = rng.integers(0, 256, size=(4, 131 + 2, 97 + 2), dtype=np.uint8)
    bands[3] = 255
    bands[3, 40:44, 10:60] = 0  # missing data crossing strip borders
    whole = raster.filter_bands(bands, method)
    stitched = np.empty_like(whole)
    for first, end, strip in strips.filter_in_strips(
        lambda a, b: bands[:, a:b], 131, method, rows
    ):
        stitched[first:end] = strip
    np.testing.assert_array_equal(stitched, whole)  # NaNs at the same places too


def test_strip_ranges_cover_every_row_once():
    covered = [r for a, b in strips.strip_ranges(1000, 64) for r in range(a, b)]
    assert covered == list(range(1000))


def test_service_in_strips_equals_in_memory_and_the_kernel(strip_wps, wps, sample):
    """Through 64-row strips and 64-pixel WMS blocks: the same GeoTIFF, bit for bit, as
    the in-memory path, and the kernel applied by hand."""
    window = (1500, 1300, 200, 150)
    bounds = aligned(sample, *window)
    streamed = read_url(execute_bbox(strip_wps, bounds, 200, 150, "sobel_magnitude")["geotiff"])
    in_memory = read_url(execute_bbox(wps, bounds, 200, 150, "sobel_magnitude")["geotiff"])
    np.testing.assert_array_equal(streamed[0], in_memory[0])
    assert streamed[1] == in_memory[1]  # transform
    np.testing.assert_allclose(streamed[0], expected_gradient(sample, "sobel_magnitude",
                                                              *window), atol=1e-3)


def test_streamed_png_is_georeferenced(strip_wps, sample, tmp_path):
    bounds = aligned(sample, 1000, 900, 160, 120)
    refs = execute_bbox(strip_wps, bounds, 160, 120, "sobel_x",
                        outputs=(("image", "image/png"), ("geotiff", "image/tiff")))
    for url, name in ((refs["image"], "s.png"), (refs["image"] + ".aux.xml", "s.png.aux.xml")):
        (tmp_path / name).write_bytes(requests.get(url, timeout=60).content)
    with rasterio.open(tmp_path / "s.png") as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.transform.almost_equals(read_url(refs["geotiff"])[1], precision=1e-12)
        assert ds.count == 2


def test_cog_when_asked(strip_wps, sample, tmp_path):
    bounds = aligned(sample, 2000, 2000, 300, 300)
    body = execute_body(
        [literal("wms", "sample_city"),
         bbox_input(f"{bounds[1]!r} {bounds[0]!r}", f"{bounds[3]!r} {bounds[2]!r}"),
         literal("width", 300), literal("height", 300), literal("cog", "true")],
        '<wps:ResponseDocument><wps:Output asReference="true"><ows:Identifier>geotiff'
        "</ows:Identifier></wps:Output></wps:ResponseDocument>")
    url = [u for u in __import__("wpsclient").references(post(strip_wps.url, body)).values()][0]
    content = requests.get(url, timeout=60).content
    with rasterio.open(io.BytesIO(content)) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1)
        assert ds.crs.to_epsg() == 4326


def test_large_raw_output_is_refused(strip_wps):
    """0.05 MB cap: a raw 200x150 GeoTIFF (120 kB) must be asked by reference."""
    body = execute_body([literal("wms", "sample_city"), literal("lat", 45.554),
                         literal("lon", -73.4935), literal("width", 200),
                         literal("height", 150)], raw_output("geotiff", "image/tiff"))
    answer = post(strip_wps.url, body)
    assert answer.status_code == 400
    code, locator, text = exception_of(answer)
    assert (code, locator) == ("InvalidParameterValue", "geotiff")
    assert "by reference" in text


def test_async_large_request_in_strips(strip_wps, sample):
    """An async job runs in a forked process: the strip path (threads) must work there."""
    from jobs import references_of, submit, wait_for_end

    url = submit(strip_wps, [literal("wms", "sample_city"), literal("lat", 45.554),
                             literal("lon", -73.4935), literal("width", 300),
                             literal("height", 200)])
    final = wait_for_end(url, 60)
    assert final[-1][0] == "ProcessSucceeded"
    assert read_url(references_of(final[-1][3])["geotiff"])[0].shape == (200, 300)


@pytest.mark.parametrize("method", ["sobel_y", "prewitt_x", "prewitt_magnitude"])
def test_tiled_filter_equals_whole_array_bit_for_bit(method, monkeypatch):
    """filter_strip's tiles on two threads, forced small on a small array so that missing
    data and uneven last tiles fall across tile borders both ways."""
    monkeypatch.setattr(strips, "SMALL_PX", 0)
    monkeypatch.setattr(strips, "TILE_ROWS", 64)
    monkeypatch.setattr(strips, "TILE_COLS", 48)
    rng = np.random.default_rng(9)
    bands = rng.integers(0, 256, size=(4, 300 + 2, 120 + 2), dtype=np.uint8)
    bands[3] = 255
    bands[3, 60:70, 40:50] = 0  # missing data across a row border (64) and a column one (48)
    tiled = strips.filter_strip(bands, method)
    assert tiled.dtype == np.float32 and tiled.shape == (300, 120)
    np.testing.assert_array_equal(tiled, raster.filter_bands(bands, method))
    # The hole is output rows 59-68, columns 39-48; NaN spreads to their 3x3 neighbours.
    assert np.isnan(tiled[58:70, 38:50]).all()
    assert not np.isnan(tiled[57, :]).any() and not np.isnan(tiled[70, :]).any()
    assert not np.isnan(tiled[:, 37]).any() and not np.isnan(tiled[:, 50]).any()


def test_default_tiles_equal_whole_array_bit_for_bit():
    rng = np.random.default_rng(10)
    big = rng.integers(0, 256, size=(3, 1100, 1100), dtype=np.uint8)
    np.testing.assert_array_equal(strips.filter_strip(big, "sobel_magnitude"),
                                  raster.filter_bands(big, "sobel_magnitude"))
    lum = raster.luminance(big)  # luminance given directly, as bench/core.py times it
    np.testing.assert_array_equal(strips.filter_strip(lum, "prewitt_y"),
                                  raster.filter_luminance(lum, "prewitt_y"))


def test_workspace_reused_across_shapes():
    """A thread's workspace serves a smaller tile after a larger one from the same memory
    and the results do not depend on what was left in it."""
    rng = np.random.default_rng(11)
    workspace = raster.Workspace()
    large = rng.integers(0, 256, size=(3, 40, 50), dtype=np.uint8)
    small = rng.integers(0, 256, size=(1, 12, 30), dtype=np.uint8)
    first = raster.filter_bands(large, "sobel_x", workspace=workspace)
    kept = workspace.arrays((40, 50), 4)[0].__array_interface__["data"][0]
    np.testing.assert_array_equal(raster.filter_bands(small, "prewitt_magnitude",
                                                      workspace=workspace),
                                  raster.filter_bands(small, "prewitt_magnitude"))
    assert workspace.arrays((12, 30), 4)[0].__array_interface__["data"][0] == kept
    np.testing.assert_array_equal(first, raster.filter_bands(large, "sobel_x"))


@pytest.mark.parametrize("small_px", [0, 1024 * 1024])
def test_filter_strip_splits_its_time_between_luminance_and_filter(small_px, monkeypatch):
    """Tiled (two threads) and in one tile, both stages get a share of the call's wall
    time, added to what is there, and together no more than it (which stage weighs more
    is a benchmark's question: bench/core.py)."""
    monkeypatch.setattr(strips, "SMALL_PX", small_px)
    monkeypatch.setattr(strips, "TILE_ROWS", 64)
    bands = np.random.default_rng(12).integers(0, 256, size=(3, 258, 302), dtype=np.uint8)
    timings = {"filter": 1.0}  # seconds add to what is there
    started = time.perf_counter()
    strips.filter_strip(bands, "sobel_magnitude", timings=timings)
    wall = time.perf_counter() - started
    assert timings["luminance"] > 0 and timings["filter"] > 1.0
    assert 0 < timings["luminance"] + timings["filter"] - 1.0 <= wall + 1e-9
