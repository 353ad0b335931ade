"""Reading the WMS in image/tiff and writing only the outputs a request returns change no
pixel: the service's answers equal a reference rendering by the path of before (GetMaps
in PNG, both outputs written) on the three kinds of data, at points off the source grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from wpsclient import execute_body, literal, post, raw_output

from wps_app.core import wms
from wps_app.core.pipeline import build_request, render
from wps_app.core.types import BBox, Limits, RenderOptions

LAYERS = ("sample_city", "sample_photo", "sample_flat")
# off the source grid (2^-20 degree pixels), as a client's points are
POINTS = ((45.55412345678, -73.49345678912), (45.5536789, -73.4941234))


def test_the_sample_wms_is_read_in_tiff(wms_server):
    """The sample WMS offers PNG and TIFF: the catalog picks the uncompressed TIFF."""
    catalog = wms.LayerCatalog(wms.WmsSource(wms_server.url))
    assert catalog.image_format() == "image/png"  # nothing known yet
    assert catalog.refresh()
    assert catalog.image_format() == "image/tiff"
    assert set(LAYERS) <= set(catalog.layers())


@pytest.mark.parametrize("layer", LAYERS)
def test_tiff_and_png_getmaps_give_the_same_bands(wms_server, layer):
    """The same grid read in either format: every band of every pixel equal."""
    lat, lon = POINTS[0]
    bbox = wms.grown_by_one_pixel(BBox.around(lat, lon, 0.0005), 512, 512)
    bands = {}
    for image_format in ("image/png", "image/tiff"):
        source = wms.WmsSource(wms_server.url, image_format=image_format)
        with wms.open_grid(source, layer, bbox, 514, 514) as read_rows:
            bands[image_format] = read_rows(0, 514)
    assert bands["image/png"].shape == (4, 514, 514)
    assert np.array_equal(bands["image/png"], bands["image/tiff"])
    assert len(np.unique(bands["image/tiff"][0])) > 1  # a tile with content


def _decoded(content: bytes) -> tuple[np.ndarray, object, object]:
    with rasterio.open(io.BytesIO(content)) as dataset:
        return dataset.read(), dataset.transform, dataset.crs


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("method", ["sobel_x", "prewitt_magnitude"])
def test_raw_outputs_equal_the_png_path(wps, wms_server, tmp_path, layer, method):
    """Raw PNG (written alone) and raw GeoTIFF (written alone) against the core run with
    PNG GetMaps writing both: pixels, transform and CRS equal."""
    for lat, lon in POINTS:
        inputs = [literal("wms", layer), literal("lat", repr(lat)), literal("lon", repr(lon)),
                  literal("method", method)]
        answers = {}
        for identifier, mime in (("image", "image/png"), ("geotiff", "image/tiff")):
            answer = post(wps.url, execute_body(inputs, raw_output(identifier, mime)))
            assert answer.status_code == 200, answer.text[:300]
            answers[identifier] = _decoded(answer.content)
        request = build_request(Limits(), {layer: layer}, layer=layer, lat=lat, lon=lon,
                                method=method)
        reference = render(request, wms.WmsSource(wms_server.url, image_format="image/png"),
                           RenderOptions(), tmp_path)
        png_pixels, _, _ = answers["image"]
        expected_png, _, _ = _decoded(reference.png.read_bytes())
        assert np.array_equal(png_pixels, expected_png)
        tif_pixels, tif_transform, tif_crs = answers["geotiff"]
        with rasterio.open(reference.geotiff) as expected:
            np.testing.assert_array_equal(tif_pixels, expected.read())
            assert tif_transform == expected.transform
            assert tif_crs == expected.crs and tif_crs.to_epsg() == 4326
        # the PNG's georeferencing travels in its sidecars, written from the same grid
        assert reference.png.with_suffix(".pgw").exists()
