"""The service over HTTP (gunicorn + real MapServer): capabilities, the tutorial's Execute,
georeferenced outputs checked against the source raster filtered independently."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from lxml import etree
from rasterio.transform import from_bounds
from rasters import execute_bbox, gdalinfo, read_url
from reference import aligned, expected_gradient
from wpsclient import (
    NS,
    bbox_input,
    document_output,
    execute_body,
    get,
    literal,
    post,
    raw_output,
    references,
)

SUPPORT = Path(__file__).resolve().parent.parent / "support"


def test_capabilities_list_the_process(wps):
    doc = etree.fromstring(get(wps.url, request="GetCapabilities").content)
    identifiers = sorted(doc.xpath("//wps:Process/ows:Identifier/text()", namespaces=NS))
    assert identifiers == ["get_raster_process"]


def test_describe_process_lists_inputs_and_wms_layers(wps):
    doc = etree.fromstring(
        get(wps.url, request="DescribeProcess", identifier="get_raster_process").content
    )
    inputs = doc.xpath("//DataInputs/Input/ows:Identifier/text()", namespaces=NS)
    assert inputs == ["wms", "lat", "lon", "bbox", "width", "height", "method", "stretch",
                      "cog", "source"]
    wms_input = doc.xpath("//DataInputs/Input[ows:Identifier='wms']", namespaces=NS)[0]
    layers = wms_input.xpath(".//ows:AllowedValues/ows:Value/text()", namespaces=NS)
    assert "sample_city" in layers
    assert "Synthetic city" in wms_input.findtext("ows:Abstract", "", NS)
    methods = doc.xpath(
        "//Input[ows:Identifier='method']//ows:Value/text()", namespaces=NS
    )
    assert sorted(methods) == sorted(
        ["sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "sobel_magnitude", "prewitt_magnitude"]
    )


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_tutorial_execute_returns_a_png(wps, sample):
    """The tutorial's POST, unchanged but for the layer name, answers with a 512x512 PNG."""
    body = (SUPPORT / "data" / "tutorial_execute.xml").read_text()
    answer = post(wps.url + "/?service=WPS", body)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/png")
    with rasterio.open(io.BytesIO(answer.content)) as png:
        assert (png.width, png.height) == (512, 512)
        grey = png.read(1)
    # signed scale: flat areas sit at 128, and both signs of edges are present
    assert np.median(grey) == 128
    assert grey.min() < 100 < 160 < grey.max()


@pytest.mark.parametrize(
    ("method", "window"),
    [
        ("sobel_x", (1800, 1700, 256, 256)),
        ("sobel_y", (1000, 2900, 300, 200)),
        ("prewitt_x", (3000, 500, 128, 192)),
        ("prewitt_y", (2048, 2048, 200, 300)),
        ("sobel_magnitude", (700, 3300, 160, 160)),
        ("prewitt_magnitude", (2500, 1200, 96, 64)),
    ],
)
def test_geotiff_equals_kernel_applied_independently(wps, sample, method, window):
    """Values (borders included), EPSG:4326 and the exact transform of the bbox."""
    col, row, width, height = window
    bounds = aligned(sample, *window)
    refs = execute_bbox(wps, bounds, width, height, method)
    data, transform, crs, tags = read_url(refs["geotiff"])
    assert crs.to_epsg() == 4326
    assert transform == from_bounds(*bounds, width, height)
    assert tags["METHOD"] == method and tags["LAYER"] == "sample_city"
    expected = expected_gradient(sample, method, col, row, width, height)
    np.testing.assert_allclose(data, expected, atol=1e-3, rtol=0)


def test_bbox_in_crs84_is_lon_lat(wps, sample):
    """The same area given in CRS84 (lon,lat) gives the same tile as EPSG:4326 (lat,lon)."""
    window = (1200, 1300, 64, 64)
    bounds = aligned(sample, *window)
    a = read_url(execute_bbox(wps, bounds, 64, 64, "sobel_x")["geotiff"])[0]
    b = read_url(
        execute_bbox(wps, bounds, 64, 64, "sobel_x", crs="urn:ogc:def:crs:OGC:1.3:CRS84")[
            "geotiff"
        ]
    )[0]
    np.testing.assert_array_equal(a, b)


def test_bbox_as_key_value_pairs_is_lat_lon(wps, sample):
    """KVP: 'south,west,north,east,EPSG:4326' (lat,lon, as OGC defines EPSG:4326)."""
    window = (1600, 2200, 80, 60)
    west, south, east, north = aligned(sample, *window)
    inputs = (f"wms=sample_city;bbox={south!r},{west!r},{north!r},{east!r},EPSG:4326;"
              "width=80;height=60;method=prewitt_y")
    answer = get(wps.url, request="Execute", identifier="get_raster_process",
                 DataInputs=inputs, RawDataOutput="geotiff@mimeType=image/tiff")
    assert answer.status_code == 200, answer.text[:500]
    with rasterio.open(io.BytesIO(answer.content)) as ds:
        assert ds.transform == from_bounds(west, south, east, north, 80, 60)
        data = ds.read(1)
    np.testing.assert_allclose(data, expected_gradient(sample, "prewitt_y", *window), atol=1e-3)


def test_adjacent_tiles_mosaic_without_seams(wps, sample):
    """Two side-by-side tiles equal one tile over both: the halo gives true neighbours."""
    col, row, width, height = 2200, 1100, 100, 120
    left = read_url(execute_bbox(wps, aligned(sample, col, row, width, height), width,
                                 height, "sobel_magnitude")["geotiff"])[0]
    right = read_url(execute_bbox(wps, aligned(sample, col + width, row, width, height),
                                  width, height, "sobel_magnitude")["geotiff"])[0]
    whole = read_url(execute_bbox(wps, aligned(sample, col, row, 2 * width, height),
                                  2 * width, height, "sobel_magnitude")["geotiff"])[0]
    np.testing.assert_array_equal(np.hstack([left, right]), whole)


def test_nodata_outside_the_layer_is_nan(wps, sample):
    """A bbox over the raster's eastern edge: pixels next to missing data are NaN."""
    width = sample.width
    bounds = aligned(sample, width - 30, 1000, 60, 40)
    data = read_url(execute_bbox(wps, bounds, 60, 40, "sobel_x")["geotiff"])[0]
    assert np.isnan(data[:, 29:]).all()  # column 29 touches the first missing column
    assert np.isfinite(data[:, :29]).all()


def test_gdalinfo_shows_crs_and_corners_of_geotiff(wps, sample, tmp_path):
    bounds = aligned(sample, 900, 800, 120, 100)
    refs = execute_bbox(wps, bounds, 120, 100, "sobel_y")
    path = tmp_path / "out.tif"
    path.write_bytes(requests.get(refs["geotiff"], timeout=60).content)
    info = gdalinfo(path)
    assert 'ID["EPSG",4326]' in info["coordinateSystem"]["wkt"]
    west, south, east, north = bounds
    corners = info["cornerCoordinates"]  # gdalinfo prints 7 decimals; a pixel is ~1e-6
    assert corners["upperLeft"] == pytest.approx([west, north], abs=1e-7)
    assert corners["lowerRight"] == pytest.approx([east, south], abs=1e-7)
    assert info["bands"][0]["type"] == "Float32"
    assert info["geoTransform"] == pytest.approx(list(from_bounds(*bounds, 120, 100).to_gdal()))


def test_downloaded_png_with_sidecars_opens_at_the_same_place(wps, sample, tmp_path):
    """The PNG's .png.aux.xml and world file are served beside it; GDAL places it."""
    bounds = aligned(sample, 1400, 1500, 128, 96)
    refs = execute_bbox(wps, bounds, 128, 96, "sobel_x",
                        outputs=(("image", "image/png"), ("geotiff", "image/tiff")))
    png_url = refs["image"]
    assert png_url.endswith(".png")
    for suffix_url, name in ((png_url, "t.png"), (png_url + ".aux.xml", "t.png.aux.xml"),
                             (png_url[:-4] + ".pgw", "t.pgw")):
        answer = requests.get(suffix_url, timeout=60)
        assert answer.status_code == 200, suffix_url
        (tmp_path / name).write_bytes(answer.content)
    info = gdalinfo(tmp_path / "t.png")
    assert 'ID["EPSG",4326]' in info["coordinateSystem"]["wkt"]
    west, south, east, north = bounds
    assert info["geoTransform"] == pytest.approx(list(from_bounds(*bounds, 128, 96).to_gdal()))
    assert info["cornerCoordinates"]["upperLeft"] == pytest.approx([west, north], abs=1e-7)
    assert info["cornerCoordinates"]["lowerRight"] == pytest.approx([east, south], abs=1e-7)
    assert [b["type"] for b in info["bands"]] == ["Byte"]  # no nodata here: no alpha band
    # Without the aux.xml, the world file alone still places it (without a CRS).
    (tmp_path / "t.png.aux.xml").unlink()
    world_only = gdalinfo(tmp_path / "t.png")
    assert world_only["cornerCoordinates"]["upperLeft"] == pytest.approx([west, north], abs=1e-7)


def test_image_output_as_geotiff(wps, sample):
    """`image` in GeoTIFF (both spellings) is the float32 gradient."""
    bounds = aligned(sample, 1000, 1000, 64, 64)
    for mime in ("image/tiff", "image/tiff; subtype=geotiff"):
        body = execute_body(
            [literal("wms", "sample_city"),
             bbox_input(f"{bounds[1]!r} {bounds[0]!r}", f"{bounds[3]!r} {bounds[2]!r}"),
             literal("width", 64), literal("height", 64)],
            raw_output("image", mime),
        )
        answer = post(wps.url, body)
        assert answer.status_code == 200, answer.text[:300]
        assert answer.headers["Content-Type"].startswith("image/tiff")
        with rasterio.open(io.BytesIO(answer.content)) as ds:
            assert ds.dtypes == ("float32",)


def test_each_request_gets_its_own_output_folder(wps):
    body = execute_body(
        [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935),
         literal("width", 32), literal("height", 32)],
        document_output(("geotiff", "image/tiff")),
    )
    first, second = (references(post(wps.url, body))["geotiff"] for _ in range(2))
    assert first != second
    assert first.rsplit("/", 1)[1] == second.rsplit("/", 1)[1] == "sobel_x.tif"


def test_the_geotiff_is_published_with_its_qgis_style(wps):
    """`name.qml` beside the GeoTIFF: QGIS applies it to the file opened from disk. The ramp
    is checked against the method's largest response, computed here by hand."""
    body = execute_body(
        [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935),
         literal("width", 32), literal("height", 32), literal("method", "prewitt_y")],
        document_output(("geotiff", "image/tiff")),
    )
    tif = references(post(wps.url, body))["geotiff"]
    style = requests.get(tif[: -len(".tif")] + ".qml", timeout=30)
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/xml")
    doc = etree.fromstring(style.content.split(b"\n", 1)[1])  # past the DOCTYPE line
    shader = doc.find(".//colorrampshader")
    values = sorted(float(item.get("value")) for item in shader.iter("item"))
    largest = 3 * 255.0  # Prewitt: three +1 weights on 0-255 luminance
    assert values[0] == pytest.approx(-largest) and values[-1] == pytest.approx(largest)
