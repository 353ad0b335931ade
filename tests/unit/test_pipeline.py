"""The pipeline in-process: request validation, and read -> filter -> write over row windows
driven through its seam by the sample GeoTIFF instead of a WMS."""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pytest
import rasterio
from local_grid import SAMPLE, local_grid
from reference import aligned, expected_gradient

from devtools.embedded_wms import free_port
from wps_app.core import pipeline, wms
from wps_app.core.errors import InvalidInput, MissingInput, WmsUnavailable
from wps_app.core.types import BBox, Limits, RenderOptions

LAYERS = {"sample_city": "Synthetic city"}
SOURCE = wms.WmsSource("http://127.0.0.1:9/wms", max_block_px=32)
ONE_WINDOW = RenderOptions()
MANY_WINDOWS = RenderOptions(stream_above_px=0)  # every request in windows of 32 rows


@pytest.fixture(scope="module")
def sample():
    with rasterio.open(SAMPLE) as dataset:
        yield dataset


def request_over(sample, col, row, width, height, method="sobel_x", **fields):
    west, south, east, north = aligned(sample, col, row, width, height)
    return pipeline.TileRequest("sample_city", BBox(west, south, east, north), width, height,
                                method, fields.pop("stretch", "signed"), **fields)


def render(request, tmp_path, options, name, **kwargs):
    workdir = tmp_path / name
    workdir.mkdir()
    return pipeline.render(request, SOURCE, options, workdir,
                           open_grid=kwargs.pop("open_grid", local_grid()), **kwargs)


def decoded(result):
    """Everything a client sees of the outputs: pixels, georeferencing, tags."""
    with rasterio.open(result.geotiff) as tif, rasterio.open(result.png) as png:
        return {"geotiff": tif.read(), "png": png.read(), "transforms": (tif.transform,
                png.transform), "crs": (tif.crs.to_epsg(), png.crs.to_epsg()),
                "tags": tif.tags(), "nodata": tif.nodata, "dtype": tif.dtypes}


# --- validation -----------------------------------------------------------------


def build(**values):
    values.setdefault("layer", "sample_city")
    return pipeline.build_request(Limits(), LAYERS, **values)


def test_defaults_give_the_tutorials_tile():
    """lat/lon alone: a square of default_side_deg around the point at 512 x 512."""
    request = build(lat=45.554, lon=-73.4935, source="sample")
    assert (request.width, request.height, request.method, request.stretch) == (
        512, 512, "sobel_x", "signed")
    assert request.bbox.bounds == pytest.approx((-73.49375, 45.55375, -73.49325, 45.55425))
    assert (request.cog, request.source) == (False, "sample")


@pytest.mark.parametrize(
    ("values", "error", "locator"),
    [
        ({"layer": None, "lat": 1.0, "lon": 1.0}, MissingInput, "layer"),
        ({"layer": "roads", "lat": 1.0, "lon": 1.0}, InvalidInput, "layer"),
        ({"lon": 1.0}, MissingInput, "lat"),
        ({"lat": 1.0}, MissingInput, "lon"),
        ({"lat": 1.0, "lon": 1.0, "bbox": BBox(0.0, 0.0, 0.1, 0.1)}, InvalidInput, "bbox"),
        ({"bbox": BBox(0.0, 0.0, 0.6, 0.1)}, InvalidInput, "bbox"),
        ({"lat": 1.0, "lon": 1.0, "method": "laplace"}, InvalidInput, "method"),
        ({"lat": 1.0, "lon": 1.0, "stretch": "loud"}, InvalidInput, "stretch"),
        ({"lat": 1.0, "lon": 1.0, "width": 0}, InvalidInput, "width"),
        ({"lat": 1.0, "lon": 1.0, "width": 2.5}, InvalidInput, "width"),
        ({"lat": 1.0, "lon": 1.0, "height": 16385}, InvalidInput, "height"),
    ],
)
def test_bad_values_name_their_input(values, error, locator):
    with pytest.raises(error) as info:
        build(**values)
    assert info.value.field == locator


def test_limits_are_the_ones_handed_in():
    limits = Limits(default_size_px=64, default_side_deg=0.01, max_width_px=100,
                    max_height_px=100, max_pixels=5000, max_bbox_deg=0.02)
    request = pipeline.build_request(limits, LAYERS, layer="sample_city", lat=0.0, lon=0.0)
    assert (request.width, request.height, request.bbox.width_deg) == (64, 64,
                                                                       pytest.approx(0.01))
    with pytest.raises(InvalidInput, match="5000 pixels") as info:
        pipeline.build_request(limits, LAYERS, layer="sample_city", lat=0.0, lon=0.0,
                               width=100, height=51)
    assert info.value.field == "width"
    with pytest.raises(InvalidInput, match="0.02 degrees"):
        pipeline.build_request(limits, LAYERS, layer="sample_city",
                               bbox=BBox(0.0, 0.0, 0.03, 0.01))


def test_unknown_layer_lists_what_the_wms_offers():
    with pytest.raises(InvalidInput, match="offers: sample_city"):
        build(layer="roads", lat=1.0, lon=1.0)


def test_sources_resolve_to_configured_names():
    names = ("sample", "faults")
    assert pipeline.resolve_source(names, None) == "sample"
    assert pipeline.resolve_source(names, "faults") == "faults"
    with pytest.raises(InvalidInput, match="sample, faults") as info:
        pipeline.resolve_source(names, "../etc")
    assert info.value.field == "source"


def test_output_bound_counts_grey_alpha_and_float32():
    request = build(lat=1.0, lon=1.0, width=300, height=200)
    assert pipeline.output_bytes_upper_bound(request) == {"png": 120_000, "geotiff": 240_000}


# --- windows ----------------------------------------------------------------------


def test_row_windows_cover_every_row_once():
    covered = [r for a, b in pipeline.row_windows(1000, 64) for r in range(a, b)]
    assert covered == list(range(1000))
    assert list(pipeline.row_windows(5, 64)) == [(0, 5)]


def test_one_window_up_to_the_threshold_then_block_rows():
    request = build(lat=1.0, lon=1.0, width=100, height=50)
    assert pipeline.window_rows(request, SOURCE, RenderOptions(stream_above_px=5000)) == 50
    assert pipeline.window_rows(request, SOURCE, RenderOptions(stream_above_px=4999)) == 32


# --- rendering ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sobel_x", "prewitt_y", "sobel_magnitude"])
def test_render_equals_the_kernel_by_hand(sample, tmp_path, method):
    """The GeoTIFF holds the kernel applied by hand to the sample's pixels; both outputs
    carry EPSG:4326 and the request's exact grid."""
    request = request_over(sample, 1500, 1300, 96, 80, method)
    result = render(request, tmp_path, ONE_WINDOW, "one")
    out = decoded(result)
    np.testing.assert_allclose(out["geotiff"][0], expected_gradient(sample, method, 1500, 1300,
                                                                    96, 80), atol=1e-3)
    assert out["crs"] == (4326, 4326)
    assert out["transforms"][0] == rasterio.transform.from_bounds(*request.bbox.bounds, 96, 80)
    assert out["transforms"][1].almost_equals(out["transforms"][0], precision=1e-12)
    assert out["dtype"] == ("float32",) and math.isnan(out["nodata"])
    assert out["tags"]["METHOD"] == method and out["tags"].get("WMS_SOURCE") == request.source
    assert SOURCE.url not in str(out["tags"])
    assert out["tags"]["BBOX"] == ",".join(repr(v) for v in request.bbox.bounds)
    assert out["png"].shape == (1, 80, 96)  # no nodata: grey only
    assert [p.name for p in (result.png, *result.png_sidecars)] == [
        f"{method}.png", f"{method}.png.aux.xml", f"{method}.pgw"]


@pytest.mark.parametrize(
    ("col", "method", "stretch"),
    [(1500, "sobel_x", "signed"), (1500, "sobel_magnitude", "absolute"),
     (-40, "prewitt_x", "clip"), (4096 - 60, "sobel_y", "signed")],
)
def test_many_windows_equal_one_window_bit_for_bit(sample, tmp_path, col, method, stretch):
    """The same request in one window and in 32-row windows: decoded GeoTIFF and PNG,
    transforms, CRS and tags identical, over the sample's edges (nodata) too."""
    request = request_over(sample, col, 1000, 100, 150, method, stretch=stretch)
    one = decoded(render(request, tmp_path, ONE_WINDOW, "one"))
    many = decoded(render(request, tmp_path, MANY_WINDOWS, "many"))
    for key in one:
        np.testing.assert_array_equal(one[key], many[key], err_msg=key)
    edge = col < 0 or col + 100 > 4096
    assert one["png"].shape[0] == (2 if edge else 1)  # alpha only with nodata
    if edge:
        np.testing.assert_array_equal(one["png"][1] == 0, np.isnan(one["geotiff"][0]))
        assert np.isnan(one["geotiff"]).any() and np.isfinite(one["geotiff"]).any()


def test_windows_read_their_halo_rows(sample, tmp_path):
    """Each window reads its rows plus one above and below, on the grid grown by one
    pixel; one window reads everything at once."""
    request = request_over(sample, 1500, 1000, 40, 70)
    reads: list[tuple[int, int]] = []
    render(request, tmp_path, MANY_WINDOWS, "many", open_grid=local_grid(reads=reads))
    assert reads == [(0, 34), (32, 66), (64, 72)]
    reads.clear()
    render(request, tmp_path, ONE_WINDOW, "one", open_grid=local_grid(reads=reads))
    assert reads == [(0, 72)]


def test_gdal_cache_is_bounded_only_for_many_windows(sample, tmp_path, monkeypatch):
    opened = []

    def open_grid(source, layer, bbox, width, height, cache_mb=None):
        opened.append((layer, bbox, width, height, cache_mb))
        return local_grid()(bbox, width, height)

    monkeypatch.setattr(wms, "open_grid", open_grid)
    request = request_over(sample, 1500, 1000, 40, 70)
    workdir = tmp_path / "w"
    workdir.mkdir()
    pipeline.render(request, SOURCE, ONE_WINDOW, workdir)
    pipeline.render(request, SOURCE, MANY_WINDOWS, workdir)
    halo = wms.grown_by_one_pixel(request.bbox, 40, 70)
    assert opened == [("sample_city", halo, 42, 72, None),
                      ("sample_city", halo, 42, 72, pipeline.STRIP_CACHE_MB)]


def test_progress_names_the_stages(sample, tmp_path):
    request = request_over(sample, 1500, 1000, 40, 70)
    seen: list[tuple[str, int]] = []
    render(request, tmp_path, ONE_WINDOW, "one", progress=lambda m, p: seen.append((m, p)))
    assert seen == [("reading the WMS", 20), ("filtering", 50), ("writing the GeoTIFF", 70),
                    ("writing the PNG", 85)]
    seen.clear()
    render(request, tmp_path, MANY_WINDOWS, "many", progress=lambda m, p: seen.append((m, p)))
    assert seen[0] == ("reading the WMS (rows 0-32 of 70)", 20)
    assert seen[-2] == ("writing the PNG (rows 64-70 of 70)", 85)
    assert seen[-1] == ("encoding the PNG", 90)
    assert len(seen) == 3 * 4 + 1
    assert [p for _, p in seen] == sorted(p for _, p in seen)


def test_timings_name_every_stage_in_order(sample, tmp_path):
    result = render(request_over(sample, 1500, 1000, 40, 70), tmp_path, MANY_WINDOWS, "many")
    assert list(result.timings_s) == ["read", "luminance", "filter", "geotiff", "png"]
    assert all(seconds >= 0 for seconds in result.timings_s.values())


def test_cog_on_request(sample, tmp_path):
    request = request_over(sample, 1500, 1000, 300, 260, cog=True)
    seen: list[tuple[str, int]] = []
    result = render(request, tmp_path, ONE_WINDOW, "one", progress=lambda m, p: seen.append(
        (m, p)))
    with rasterio.open(result.geotiff) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_allclose(ds.read(1), expected_gradient(sample, "sobel_x", 1500, 1000,
                                                                 300, 260), atol=1e-3)
    assert ("writing the Cloud Optimized GeoTIFF", 88) in seen
    assert sorted(p.name for p in result.geotiff.parent.iterdir()) == [
        "sobel_x.pgw", "sobel_x.png", "sobel_x.png.aux.xml", "sobel_x.tif"]


def test_a_wms_failure_leaves_no_outputs(sample, tmp_path):
    """The WMS fails on the second window: the error goes up, no file stays behind."""

    @contextmanager
    def failing(bbox, width, height):
        with local_grid()(bbox, width, height) as read_rows:

            def read(first, end):
                if first > 0:
                    raise WmsUnavailable("the WMS is not reachable (connection failed)")
                return read_rows(first, end)

            yield read

    with pytest.raises(WmsUnavailable):
        render(request_over(sample, 1500, 1000, 40, 70), tmp_path, MANY_WINDOWS, "many",
               open_grid=failing)
    assert list((tmp_path / "many").iterdir()) == []


def test_the_default_reader_is_the_wms(sample, tmp_path):
    """Without a seam the pipeline reads the source's WMS: here nothing listens."""
    with pytest.raises(WmsUnavailable):
        pipeline.render(request_over(sample, 1500, 1000, 40, 70),
                        wms.WmsSource(f"http://127.0.0.1:{free_port()}/wms", retries=0),
                        ONE_WINDOW, tmp_path)



EXTENT = {"sample_city": (-73.6, 45.5, -73.4, 45.6)}


@pytest.mark.parametrize(("values", "field"), [
    ({"lat": 0.0, "lon": 0.0}, "lat"),  # Null Island: nothing there
    ({"lat": -73.5, "lon": 45.55}, "lat"),  # lat and lon swapped
    ({"bbox": BBox(10.0, 10.0, 10.1, 10.1)}, "bbox"),
])
def test_an_area_outside_the_layers_extent_is_refused(values, field):
    with pytest.raises(InvalidInput) as info:
        pipeline.build_request(Limits(), {"sample_city": "S"}, extents=EXTENT,
                               layer="sample_city", **values)
    assert info.value.field == field
    assert "-73.6..-73.4" in str(info.value) and "45.5..45.6" in str(info.value)


def test_an_area_partly_inside_is_kept():
    """Its outside pixels come back as nodata: the request makes sense."""
    request = pipeline.build_request(Limits(), {"sample_city": "S"}, extents=EXTENT,
                                     layer="sample_city", bbox=BBox(-73.45, 45.55, -73.35, 45.58))
    assert request.bbox.east == -73.35


@pytest.mark.parametrize(("width", "height", "expected"), [
    (None, None, (512, 128)),  # the longer side is the default
    (200, None, (200, 50)),  # the other follows the bbox's aspect (square pixels)
    (None, 100, (400, 100)),
    (300, 30, (300, 30)),  # both given: as asked
])
def test_a_bbox_missing_a_size_keeps_pixels_square(width, height, expected):
    bbox = BBox(-73.5, 45.5, -73.4, 45.525)  # 4:1 in degrees
    request = pipeline.build_request(Limits(default_size_px=512), {"sample_city": "S"},
                                     layer="sample_city", bbox=bbox, width=width,
                                     height=height)
    assert (request.width, request.height) == expected
    tall = pipeline.build_request(Limits(default_size_px=512), {"sample_city": "S"},
                                  layer="sample_city", bbox=BBox(-73.5, 45.5, -73.475, 45.6))
    assert (tall.width, tall.height) == (128, 512)


def test_around_a_point_both_sizes_default():
    request = pipeline.build_request(Limits(default_size_px=300), {"sample_city": "S"},
                                     layer="sample_city", lat=45.55, lon=-73.5)
    assert (request.width, request.height) == (300, 300)


@pytest.mark.parametrize("outputs", [{"png"}, {"geotiff"}])
def test_only_the_outputs_asked_are_written(sample, tmp_path, outputs):
    """A request for one output writes that file alone, equal to the one written beside
    the other (pixels, grid, tags)."""
    request = request_over(sample, 1500, 1300, 96, 80, "sobel_magnitude")
    both = render(request, tmp_path, ONE_WINDOW, "both")
    alone = render(request, tmp_path, ONE_WINDOW, "alone", outputs=frozenset(outputs))
    written = sorted(p.name for p in (tmp_path / "alone").iterdir())
    if outputs == {"png"}:
        assert alone.geotiff is None and "geotiff" not in alone.timings_s
        assert written == ["sobel_magnitude.pgw", "sobel_magnitude.png",
                           "sobel_magnitude.png.aux.xml"]
        assert alone.png.read_bytes() == both.png.read_bytes()
    else:
        assert alone.png is None and alone.png_sidecars == () and "png" not in alone.timings_s
        assert written == ["sobel_magnitude.tif"]
        with rasterio.open(alone.geotiff) as got, rasterio.open(both.geotiff) as expected:
            np.testing.assert_array_equal(got.read(), expected.read())
            assert (got.transform, got.crs, got.tags()) == (expected.transform, expected.crs,
                                                            expected.tags())


@pytest.mark.parametrize("outputs", [frozenset(), frozenset({"png", "qml"})])
def test_outputs_must_be_some_of_the_known_ones(sample, tmp_path, outputs):
    request = request_over(sample, 1500, 1300, 16, 16)
    with pytest.raises(ValueError, match="outputs"):
        render(request, tmp_path, ONE_WINDOW, "none", outputs=outputs)
