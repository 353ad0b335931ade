"""The GDAL WMS reader against the real embedded MapServer, and its escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from rasterio.transform import from_bounds
from rasterio.windows import Window

from devtools.embedded_wms import free_port
from wps_app.core import wms
from wps_app.core.errors import WmsServiceException, WmsUnavailable
from wps_app.core.types import BBox


def aligned_bbox(sample, col: int, row: int, width: int, height: int) -> BBox:
    """The bbox of source pixels [col, col+width) x [row, row+height), EPSG:4326."""
    t = sample.transform
    west, north = t @ (col, row)
    east, south = t @ (col + width, row + height)
    return BBox(west, south, east, north)


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_read_with_halo_equals_source_pixels(wms_server, sample, version):
    """Both WMS versions (axis order!) give the source pixels, halo included, exactly."""
    source = wms.WmsSource(wms_server.url, version=version)
    col, row, width, height = 1500, 900, 200, 150
    bbox = aligned_bbox(sample, col, row, width, height)
    result = wms.read_with_halo(source, "sample_city", bbox, width, height)
    expected = sample.read(window=Window(col - 1, row - 1, width + 2, height + 2))
    assert result.data.shape == (4, height + 2, width + 2)
    np.testing.assert_array_equal(result.data[:3], expected)
    assert (result.data[3] == 255).all()


def test_read_carries_the_exact_transform(wms_server):
    bbox = BBox(-73.4939, 45.5539, -73.4934, 45.5544)
    result = wms.read_rgba(wms.WmsSource(wms_server.url), "sample_city", bbox, 64, 48)
    assert result.transform == from_bounds(*bbox.bounds, 64, 48)
    assert result.crs == "EPSG:4326"


def test_outside_the_data_is_transparent(wms_server, sample):
    """Alpha marks missing data: a bbox straddling the raster's west edge."""
    t = sample.transform
    bbox = BBox(t.c - 20 * t.a, t.f - 40 * t.a, t.c + 20 * t.a, t.f - 20 * t.a)
    result = wms.read_rgba(wms.WmsSource(wms_server.url), "sample_city", bbox, 40, 20)
    assert (result.data[3][:, :20] == 0).all()
    assert (result.data[3][:, 20:] == 255).all()


def test_layer_name_cannot_inject_query_parameters(wms_server):
    """'&LAYERS=' in a layer name reaches MapServer percent-encoded, as one unknown name."""
    bbox = BBox(-73.4939, 45.5539, -73.4934, 45.5544)
    with pytest.raises(WmsServiceException, match="LayerNotDefined"):
        wms.read_rgba(
            wms.WmsSource(wms_server.url), "nothing&LAYERS=sample_city", bbox, 16, 16
        )


def test_description_escapes_every_value():
    """XML metacharacters survive as text; the layer is percent-encoded."""
    source = wms.WmsSource("http://127.0.0.1:1/wms?map=<x>&a=1")
    xml = wms.gdal_wms_xml(source, "a<b>&c'\"", BBox(1.0, 2.0, 3.0, 4.0), 10, 20)
    root = ET.fromstring(xml)
    assert root.findtext("Service/ServerUrl") == "http://127.0.0.1:1/wms?map=<x>&a=1&"
    assert root.findtext("Service/Layers") == "a%3Cb%3E%26c%27%22"
    assert root.findtext("DataWindow/UpperLeftX") == "1.0"
    assert root.findtext("DataWindow/LowerRightY") == "2.0"
    assert root.find("Cache") is None


def test_version_130_swaps_axes_and_111_does_not():
    bbox = BBox(1.0, 2.0, 3.0, 4.0)
    new = ET.fromstring(wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/"), "l", bbox, 1, 1))
    old = ET.fromstring(
        wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/", version="1.1.1"), "l", bbox, 1, 1)
    )
    assert new.findtext("Service/BBoxOrder") == "yxYX"
    assert new.findtext("Service/CRS") == "EPSG:4326"
    assert old.find("Service/BBoxOrder") is None
    assert old.findtext("Service/SRS") == "EPSG:4326"


def test_unknown_layer_is_a_service_exception(wms_server):
    bbox = BBox(-73.4939, 45.5539, -73.4934, 45.5544)
    with pytest.raises(WmsServiceException, match="LayerNotDefined"):
        wms.read_rgba(wms.WmsSource(wms_server.url), "no_such_layer", bbox, 16, 16)


def test_server_down_is_unavailable():
    source = wms.WmsSource(f"http://127.0.0.1:{free_port()}/wms", timeout_s=2, retries=0)
    with pytest.raises(WmsUnavailable):
        wms.read_rgba(source, "sample_city", BBox(1.0, 2.0, 3.0, 4.0), 8, 8)


def test_catalog_lists_layers_with_titles(wms_server):
    layers = wms.LayerCatalog(wms.WmsSource(wms_server.url)).layers()
    assert layers["sample_city"].startswith("Synthetic city")


def test_gdal_errors_are_classified():
    assert isinstance(
        wms.classify_gdal_error("The server returned exception code 'X': y"),
        WmsServiceException,
    )
    assert "timeout" in str(wms.classify_gdal_error("Operation timed out after 2000 ms"))
    assert "500" in str(wms.classify_gdal_error("Unable to download: HTTP status code: 500"))


def test_gdal_reads_without_netrc_cache_or_retries():
    env = wms.gdal_env(wms.WmsSource("http://127.0.0.1:1/wms", timeout_s=3))
    assert env["GDAL_HTTP_NETRC"] == "NO"
    assert env["GDAL_HTTP_MAX_RETRY"] == "0"
    assert env["GDAL_HTTP_TIMEOUT"] == "3"


def test_configured_wms_url_must_be_http():
    from wps_app.settings import Settings, read_config

    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/",
                "/vsicurl/http://127.0.0.1/", "WMS:http://127.0.0.1/wms"):
        cfg = read_config([])
        cfg.read_dict({"wms": {"url": url}})
        with pytest.raises(ValueError):
            Settings.from_parser(cfg)
