"""The GDAL WMS reader against the real embedded MapServer (what needs no server is in
tests/unit/test_wms.py)."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_bounds
from rasterio.windows import Window

from wps_app.core import wms
from wps_app.core.errors import WmsServiceException
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


def test_unknown_layer_is_a_service_exception(wms_server):
    bbox = BBox(-73.4939, 45.5539, -73.4934, 45.5544)
    with pytest.raises(WmsServiceException, match="LayerNotDefined"):
        wms.read_rgba(wms.WmsSource(wms_server.url), "no_such_layer", bbox, 16, 16)


def test_catalog_lists_layers_with_titles(wms_server):
    catalog = wms.LayerCatalog(wms.WmsSource(wms_server.url))
    assert catalog.refresh()
    layers = catalog.layers()
    assert catalog.extents()["sample_city"][0] < catalog.extents()["sample_city"][2]
    assert layers["sample_city"].startswith("Synthetic city")
