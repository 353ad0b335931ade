"""BBox validation, axis-order rules and bbox <-> grid round trips."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasterio.transform import from_bounds

from wps_app.core.errors import InvalidInput
from wps_app.core.types import (
    BBox,
    Grid,
    Limits,
    Raster,
    RenderOptions,
    axis_order,
    bbox_from_corners,
)


@pytest.mark.parametrize(
    "corners",
    [
        (math.nan, 45.0, -73.0, 46.0),
        (-74.0, math.inf, -73.0, 46.0),
        (-181.0, 45.0, -73.0, 46.0),
        (-74.0, 45.0, -73.0, 90.5),
        (-73.0, 45.0, -74.0, 46.0),  # inverted
        (-74.0, 46.0, -73.0, 45.0),  # inverted
        (-74.0, 45.0, -74.0, 46.0),  # zero width
    ],
)
def test_bad_bboxes_are_refused_with_bbox_locator(corners):
    with pytest.raises(InvalidInput) as info:
        BBox(*corners)
    assert info.value.field == "bbox"


def test_around_point_is_a_centred_square():
    bbox = BBox.around(45.554, -73.4935, 0.0005)
    assert bbox.west == pytest.approx(-73.49375)
    assert bbox.east == pytest.approx(-73.49325)
    assert bbox.south == pytest.approx(45.55375)
    assert bbox.north == pytest.approx(45.55425)


@pytest.mark.parametrize(
    ("lat", "lon", "locator"),
    [(math.nan, 0.0, "lat"), (91.0, 0.0, "lat"), (0.0, 181.0, "lon"), (0.0, -math.inf, "lon")],
)
def test_bad_points_name_their_input(lat, lon, locator):
    with pytest.raises(InvalidInput) as info:
        BBox.around(lat, lon, 0.0005)
    assert info.value.field == locator


@pytest.mark.parametrize(
    ("crs", "order"),
    [
        (None, "latlon"),
        ("EPSG:4326", "latlon"),
        ("epsg:4326", "latlon"),
        ("urn:ogc:def:crs:EPSG::4326", "latlon"),
        ("urn:ogc:def:crs:EPSG:6.6:4326", "latlon"),
        ("http://www.opengis.net/def/crs/EPSG/0/4326", "latlon"),
        ("http://www.opengis.net/gml/srs/epsg.xml#4326", "latlon"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "lonlat"),
        ("urn:ogc:def:crs:OGC::CRS84", "lonlat"),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "lonlat"),
    ],
)
def test_axis_order_by_crs_spelling(crs, order):
    assert axis_order(crs) == order


@pytest.mark.parametrize(
    "crs", ["EPSG:3857", "EPSG:43260", "CRS84x", "urn:ogc:def:crs:EPSG::32618"]
)
def test_other_crs_is_refused(crs):
    with pytest.raises(InvalidInput) as info:
        axis_order(crs)
    assert info.value.field == "bbox"


def test_corners_follow_the_crs_axis_order():
    latlon = bbox_from_corners((45.5, -73.6), (45.6, -73.4), "EPSG:4326")
    lonlat = bbox_from_corners((-73.6, 45.5), (-73.4, 45.6), "urn:ogc:def:crs:OGC:1.3:CRS84")
    assert latlon == lonlat == BBox(-73.6, 45.5, -73.4, 45.6)


@given(
    west=st.floats(-179.0, 170.0),
    south=st.floats(-89.0, 80.0),
    span_x=st.floats(1e-6, 5.0),
    span_y=st.floats(1e-6, 5.0),
    width=st.integers(1, 20000),
    height=st.integers(1, 20000),
)
def test_bbox_to_grid_round_trip(west, south, span_x, span_y, width, height):
    """from_bounds maps pixel corners (0, 0) and (width, height) back onto the bbox."""
    bbox = BBox(west, south, west + span_x, south + span_y)
    transform = from_bounds(*bbox.bounds, width, height)
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    assert x0 == pytest.approx(bbox.west, abs=1e-9)
    assert y0 == pytest.approx(bbox.north, abs=1e-9)
    assert x1 == pytest.approx(bbox.east, abs=1e-9)
    assert y1 == pytest.approx(bbox.south, abs=1e-9)


def test_grid_of_a_bbox_is_rasterios_from_bounds():
    bbox = BBox(-73.4955, 45.552, -73.4915, 45.556)
    grid = Grid.from_bbox(bbox, 640, 480)
    assert grid.transform == from_bounds(-73.4955, 45.552, -73.4915, 45.556, 640, 480)
    assert (grid.width, grid.height, grid.crs) == (640, 480, "EPSG:4326")


def test_raster_knows_its_grid():
    transform = from_bounds(0.0, 0.0, 3.0, 2.0, 3, 2)
    raster = Raster(np.zeros((4, 2, 3), np.uint8), transform)
    assert (raster.height, raster.width) == (2, 3)
    assert raster.grid == Grid(3, 2, transform, "EPSG:4326")


def test_value_objects_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().max_pixels = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RenderOptions().png_zlevel = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields",
    [{"geotiff_compress": "JPEG"}, {"png_zlevel": 10}, {"png_zlevel": -1},
     {"stream_above_px": -1}],
)
def test_render_options_refuse_what_gdal_or_zlib_cannot_do(fields):
    with pytest.raises(ValueError):
        RenderOptions(**fields)


def test_bbox_spans_in_degrees():
    bbox = BBox(-74.0, 45.0, -73.5, 45.25)
    assert (bbox.width_deg, bbox.height_deg) == (0.5, 0.25)
    assert bbox.bounds == (-74.0, 45.0, -73.5, 45.25)


def test_a_point_near_the_pole_leaves_the_globe():
    with pytest.raises(InvalidInput, match="leaves the globe") as info:
        BBox.around(89.9999, 0.0, 0.001)
    assert info.value.field == "lat"
