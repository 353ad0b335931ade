"""Requests read in many row windows, through the real service: the same outputs as in one
window, the PNG's alpha rule, COG, raw-size refusal, async. (The window loop itself is
tested in-process in tests/unit/test_pipeline.py.)"""

from __future__ import annotations

import io

import numpy as np
import rasterio
import requests
from rasters import execute_bbox, read_url
from reference import aligned, expected_gradient
from wpsclient import bbox_input, exception_of, execute_body, literal, post, raw_output


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


def _png_and_geotiff(wps, bounds, width, height, folder):
    """The PNG (with its aux.xml beside it) and the GeoTIFF of one request, opened."""
    refs = execute_bbox(wps, bounds, width, height, "sobel_x",
                        outputs=(("image", "image/png"), ("geotiff", "image/tiff")))
    for url, name in ((refs["image"], "s.png"), (refs["image"] + ".aux.xml", "s.png.aux.xml")):
        (folder / name).write_bytes(requests.get(url, timeout=60).content)
    return rasterio.open(folder / "s.png"), read_url(refs["geotiff"])


def test_streamed_png_is_georeferenced_and_grey_without_nodata(strip_wps, sample, tmp_path):
    """Inside the sample there is no nodata: one grey band, as in one window."""
    png, (gradient, transform, _, _) = _png_and_geotiff(
        strip_wps, aligned(sample, 1000, 900, 160, 120), 160, 120, tmp_path)
    with png:
        assert png.crs.to_epsg() == 4326
        assert png.transform.almost_equals(transform, precision=1e-12)
        assert png.count == 1
        assert np.isfinite(gradient).all()


def test_streamed_png_has_alpha_where_nodata(strip_wps, sample, tmp_path):
    """Over the sample's western edge the WMS is transparent: grey + alpha, alpha 0
    exactly where the GeoTIFF is NaN."""
    bounds = aligned(sample, -80, 900, 160, 120)
    png, (gradient, _, _, _) = _png_and_geotiff(strip_wps, bounds, 160, 120, tmp_path)
    with png:
        assert png.count == 2
        np.testing.assert_array_equal(png.read(2) == 0, np.isnan(gradient))
    assert np.isnan(gradient[:, :80]).all() and np.isfinite(gradient[:, 81:]).all()


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
