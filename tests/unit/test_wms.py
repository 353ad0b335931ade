"""The GDAL WMS reader without a WMS: its GDAL_WMS description, error classification,
retries (fake attempts, no real sleeping) and real reads against a closed loopback port."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import contextmanager

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.transform import from_bounds
from rasterio.windows import Window

from devtools.embedded_wms import free_port
from wps_app.core import wms
from wps_app.core.errors import (
    LayersNotKnownYet,
    WmsBadResponse,
    WmsError,
    WmsServiceException,
    WmsTimeout,
    WmsUnavailable,
)
from wps_app.core.types import BBox

BBOX = BBox(1.0, 2.0, 3.0, 4.0)


@pytest.fixture
def refused() -> wms.WmsSource:
    """A source whose connections are refused: nothing listens on its loopback port."""
    return wms.WmsSource(f"http://127.0.0.1:{free_port()}/wms", timeout_s=2, retries=0)


# --- the GDAL_WMS description -------------------------------------------------------


def test_description_escapes_every_value():
    """XML metacharacters survive as text; the layer is percent-encoded."""
    source = wms.WmsSource("http://127.0.0.1:1/wms?map=<x>&a=1")
    xml = wms.gdal_wms_xml(source, "a<b>&c'\"", BBOX, 10, 20)
    root = ET.fromstring(xml)
    assert root.findtext("Service/ServerUrl") == "http://127.0.0.1:1/wms?map=<x>&a=1&"
    assert root.findtext("Service/Layers") == "a%3Cb%3E%26c%27%22"
    assert root.find("Cache") is None


def test_layer_name_cannot_add_query_parameters():
    """'&LAYERS=' and '?' in a layer name stay inside the one LAYERS value."""
    root = ET.fromstring(wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/"),
                                          "x&LAYERS=y?z=1 #", BBOX, 1, 1))
    assert root.findtext("Service/Layers") == "x%26LAYERS%3Dy%3Fz%3D1%20%23"


@pytest.mark.parametrize(
    ("url", "server_url"),
    [("http://127.0.0.1:1/wms", "http://127.0.0.1:1/wms?"),
     ("http://127.0.0.1:1/wms?", "http://127.0.0.1:1/wms?"),
     ("http://127.0.0.1:1/wms?map=a", "http://127.0.0.1:1/wms?map=a&"),
     ("http://127.0.0.1:1/wms?map=a&", "http://127.0.0.1:1/wms?map=a&")],
)
def test_server_url_ends_where_gdal_appends(url, server_url):
    root = ET.fromstring(wms.gdal_wms_xml(wms.WmsSource(url), "l", BBOX, 1, 1))
    assert root.findtext("Service/ServerUrl") == server_url


def test_data_window_is_the_bbox_at_the_size():
    """Upper left = (west, north), lower right = (east, south), full float precision."""
    bbox = BBox(-73.4955, 45.552, -73.4915, 45.556 + 2.0**-20)
    root = ET.fromstring(wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/"), "l",
                                          bbox, 640, 480))
    window = {child.tag: child.text for child in root.find("DataWindow")}
    assert window == {"UpperLeftX": "-73.4955", "UpperLeftY": repr(45.556 + 2.0**-20),
                      "LowerRightX": "-73.4915", "LowerRightY": "45.552",
                      "SizeX": "640", "SizeY": "480"}
    assert root.findtext("Projection") == "EPSG:4326"
    assert root.findtext("BandsCount") == "4"
    assert root.findtext("Service/ImageFormat") == "image/png"
    assert root.findtext("Service/Transparent") == "TRUE"


def test_version_130_swaps_axes_and_111_does_not():
    new = ET.fromstring(wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/"), "l", BBOX, 1, 1))
    old = ET.fromstring(
        wms.gdal_wms_xml(wms.WmsSource("http://127.0.0.1:1/", version="1.1.1"), "l", BBOX, 1, 1)
    )
    assert new.findtext("Service/Version") == "1.3.0"
    assert new.findtext("Service/BBoxOrder") == "yxYX"
    assert new.findtext("Service/CRS") == "EPSG:4326"
    assert new.find("Service/SRS") is None
    assert old.findtext("Service/Version") == "1.1.1"
    assert old.find("Service/BBoxOrder") is None
    assert old.findtext("Service/SRS") == "EPSG:4326"


@pytest.mark.parametrize(("width", "height", "blocks"),
                         [(100, 50, ("100", "50")), (5000, 300, ("1024", "300")),
                          (20000, 20000, ("1024", "1024"))])
def test_blocks_are_as_large_as_the_server_allows(width, height, blocks):
    source = wms.WmsSource("http://127.0.0.1:1/", max_block_px=1024, max_connections=3,
                           timeout_s=0.2)
    root = ET.fromstring(wms.gdal_wms_xml(source, "l", BBOX, width, height))
    assert (root.findtext("BlockSizeX"), root.findtext("BlockSizeY")) == blocks
    assert root.findtext("MaxConnections") == "3"
    assert root.findtext("Timeout") == "1"  # GDAL counts whole seconds, at least one


def test_gdal_reads_without_netrc_cache_or_retries():
    env = wms.gdal_env(wms.WmsSource("http://127.0.0.1:1/wms", timeout_s=3))
    assert env["GDAL_HTTP_NETRC"] == "NO"
    assert env["GDAL_HTTP_MAX_RETRY"] == "0"
    assert env["GDAL_HTTP_TIMEOUT"] == env["GDAL_HTTP_CONNECTTIMEOUT"] == "3"


# --- error classification -------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        ("The server returned exception code 'LayerNotDefined': msWMSLoadGetMapParams(): "
         "Invalid layer(s) given", WmsServiceException, "refused the request (LayerNotDefined)"),
        ("GDALWMS: The server returned exception: <ServiceException>no</ServiceException>",
         WmsServiceException, "refused the request (a ServiceException)"),
        ("Operation timed out after 2000 milliseconds", WmsTimeout, "timeout"),
        ("GDAL_WMS: Connection timeout", WmsTimeout, "timeout"),
        ("Failed to connect to 127.0.0.1 port 9: Connection refused", WmsUnavailable,
         "not reachable"),
        ("Unable to download, HTTP status code: 0", WmsUnavailable, "not reachable"),
        ("Unable to download: HTTP status code: 500", WmsBadResponse, "HTTP status 500"),
        ("Unable to download: HTTP status code: 404", WmsBadResponse, "HTTP status 404"),
        ("PNG file is corrupt", WmsBadResponse, "did not return a usable image"),
    ],
)
def test_gdal_errors_are_classified(message, kind, text):
    error = wms.classify_gdal_error(message)
    assert type(error) is kind
    assert text in str(error)
    assert " ".join(message.split())[:40] in error.detail  # the upstream's words: logs only


@pytest.mark.parametrize("message", [
    "The server returned exception code 'InvalidKey': key is not valid for "
    "http://127.0.0.1:8081/wms?apikey=SECRET123&LAYERS=x",
    "GDALWMS: The server returned exception: <ServiceException>apikey=SECRET123&BBOX=1,2"
    "</ServiceException>",
    "Unable to download http://127.0.0.1:8081/wms?apikey=SECRET123&SERVICE=WMS: HTTP status "
    "code: 500",
    "curl: http://u:SECRET123@127.0.0.1/wms timed out",
])
def test_no_upstream_text_reaches_the_client_message(message):
    """A WMS may echo the request, GDAL names the URL: the client's message carries
    neither; the detail for the log keeps the words with the key masked."""
    error = wms.classify_gdal_error(message)
    assert "SECRET123" not in str(error) and "127.0.0.1" not in str(error)
    assert "SECRET123" not in error.detail


def test_classified_messages_are_bounded():
    error = wms.classify_gdal_error("The server returned exception code 'X': " + "y" * 1000)
    assert len(str(error)) < 250


# --- retries -----------------------------------------------------------------------


class Attempts:
    """A fake attempt: raises the given errors in turn, then returns "image"."""

    def __init__(self, *errors: WmsError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "image"


def http(status: int) -> WmsBadResponse:
    return wms.classify_gdal_error(f"HTTP status code: {status}")  # type: ignore[return-value]


@pytest.mark.parametrize(
    "transient", [http(503), http(500), http(429), WmsTimeout("the WMS did not answer")]
)
def test_transient_errors_are_retried_with_backoff(transient):
    attempt, slept = Attempts(transient, transient), []
    source = wms.WmsSource("http://127.0.0.1:1/", retries=2)
    assert wms.with_retries(source, attempt, sleep=slept.append) == "image"
    assert attempt.calls == 3
    assert slept == [0.4, 0.8]


def test_retries_are_bounded():
    """Always failing: 1 + retries attempts, then the last error."""
    attempt, slept = Attempts(*[http(502)] * 10), []
    with pytest.raises(WmsBadResponse, match="502"):
        wms.with_retries(wms.WmsSource("http://127.0.0.1:1/", retries=3), attempt,
                         sleep=slept.append)
    assert attempt.calls == 4
    assert slept == [0.4, 0.8, 1.6]


@pytest.mark.parametrize(
    "final",
    [http(404), http(400), WmsServiceException("LayerNotDefined"),
     WmsUnavailable("not reachable"), WmsBadResponse("the WMS returned 3 band(s)")],
)
def test_other_errors_are_not_retried(final):
    attempt, slept = Attempts(final), []
    with pytest.raises(type(final)):
        wms.with_retries(wms.WmsSource("http://127.0.0.1:1/", retries=2), attempt,
                         sleep=slept.append)
    assert attempt.calls == 1 and slept == []


def test_backoff_doubles_up_to_two_seconds():
    assert [wms.backoff_s(n) for n in range(1, 6)] == [0.4, 0.8, 1.6, 2.0, 2.0]


def test_a_failed_window_is_read_again_through_a_fresh_dataset(monkeypatch):
    """The first attempt reads through the open dataset, each retry through a newly
    opened one (nothing GDAL cached from a failed try is reused)."""
    opened, reads = [], []

    @contextmanager
    def open_layer(source, layer, bbox, width, height, cache_mb=None):
        opened.append(cache_mb)
        yield f"dataset {len(opened)}"

    def read_window(dataset, window):
        reads.append((dataset, window))
        if len(reads) < 3:
            raise WmsTimeout("the WMS did not answer within the configured timeout")
        return np.zeros((4, int(window.height), int(window.width)), np.uint8)

    monkeypatch.setattr(wms, "open_layer", open_layer)
    monkeypatch.setattr(wms, "read_window", read_window)
    slept = []
    source = wms.WmsSource("http://127.0.0.1:1/", retries=2)
    with wms.open_grid(source, "l", BBOX, 30, 20, cache_mb=7, sleep=slept.append) as read:
        rows = read(5, 9)
    assert rows.shape == (4, 4, 30)
    assert [d for d, _ in reads] == ["dataset 1", "dataset 2", "dataset 3"]
    assert {w for _, w in reads} == {Window(0, 5, 30, 4)}
    assert opened == [7, 7, 7] and slept == [0.4, 0.8]


# --- reading: real GDAL, refused connections, odd datasets ----------------------------


def test_server_down_is_unavailable(refused):
    """Connection refused on loopback: GDAL's real error becomes WmsUnavailable."""
    with pytest.raises(WmsUnavailable, match="not reachable"):
        wms.read_rgba(refused, "sample_city", BBOX, 8, 8)


def test_windowed_read_from_a_refused_server_is_unavailable(refused):
    with wms.open_grid(refused, "sample_city", BBOX, 64, 64, cache_mb=16) as read_rows:
        with pytest.raises(WmsUnavailable):
            read_rows(10, 20)


def test_read_with_halo_asks_for_the_grown_grid(refused, monkeypatch):
    asked, real_open_grid = [], wms.open_grid

    def open_grid(source, layer, bbox, width, height, cache_mb=None):
        asked.append((bbox.bounds, width, height, cache_mb))
        return real_open_grid(source, layer, bbox, width, height, cache_mb)

    monkeypatch.setattr(wms, "open_grid", open_grid)
    with pytest.raises(WmsUnavailable):
        wms.read_with_halo(refused, "sample_city", BBox(0.0, 0.0, 10.0, 5.0), 10, 5)
    assert asked == [((-1.0, -1.0, 11.0, 6.0), 12, 7, None)]


def test_opening_bounds_gdals_block_cache_only_when_asked(refused):
    """GDAL_CACHEMAX (bytes) is set while a large read's dataset is open, else untouched;
    opening sends nothing, so a refused server does not matter yet."""
    with wms.open_layer(refused, "l", BBOX, 16, 16, cache_mb=5) as dataset:
        assert rasterio.env.getenv()["GDAL_CACHEMAX"] == 5 * 1024 * 1024
        assert (dataset.count, dataset.width, dataset.height) == (4, 16, 16)
        assert dataset.crs.to_epsg() == 4326
    with wms.open_layer(refused, "l", BBOX, 16, 16):
        assert "GDAL_CACHEMAX" not in rasterio.env.getenv()


def test_a_dataset_without_colour_bands_is_a_bad_response(refused, monkeypatch, tmp_path):
    """A WMS answering with fewer than three bands is refused before any read."""
    grey = tmp_path / "grey.tif"
    with rasterio.open(grey, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_bounds(*BBOX.bounds, 4, 4)) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    monkeypatch.setattr(wms, "gdal_wms_xml", lambda *args: str(grey))
    with pytest.raises(WmsBadResponse, match="1 band"):
        with wms.open_layer(refused, "l", BBOX, 4, 4):
            pass


class FakeDataset:
    """What read_window needs of a rasterio dataset."""

    def __init__(self, result: np.ndarray | Exception, height: int = 4, width: int = 6):
        self.result, self.height, self.width = result, height, width

    def read(self, window=None):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_an_image_of_the_wrong_size_is_a_bad_response():
    with pytest.raises(WmsBadResponse, match="size"):
        wms.read_window(FakeDataset(np.zeros((4, 3, 6), np.uint8)))
    with pytest.raises(WmsBadResponse, match="size"):
        wms.read_window(FakeDataset(np.zeros((4, 4, 6), np.uint8)), Window(0, 0, 6, 3))
    whole = np.ones((4, 4, 6), np.uint8)
    assert wms.read_window(FakeDataset(whole)) is whole


def test_driver_errors_are_classified_from_their_cause():
    error = RasterioIOError("Read failed")
    error.__cause__ = RuntimeError("Unable to download: HTTP status code: 503")
    with pytest.raises(WmsBadResponse, match="HTTP status 503"):
        wms.read_window(FakeDataset(error))


def test_grown_bbox_is_one_pixel_larger_and_may_leave_the_globe():
    grown = wms.grown_by_one_pixel(BBox(-180.0, -90.0, 180.0, 90.0), 360, 180)
    assert grown.bounds == (-181.0, -91.0, 181.0, 91.0)


# --- layer catalog ---------------------------------------------------------------


def test_a_refused_server_leaves_the_catalog_without_layers(refused):
    """Probing a closed loopback port: down, no list; layers() says so without waiting."""
    catalog = wms.LayerCatalog(refused)
    assert catalog.refresh() is False
    assert catalog.state().status == "down" and "not reachable" in catalog.state().reason
    with pytest.raises(LayersNotKnownYet):
        catalog.layers()
    assert catalog.cached() == {} and catalog.extents() == {}


class Upstream:
    """An injected capabilities fetcher: answers or fails as the test says, counting."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: wms.Capabilities | None = wms.Capabilities(
            {"a": "A"}, {"a": (-74.0, 45.0, -73.0, 46.0)})

    def __call__(self, source) -> wms.Capabilities:
        self.calls += 1
        if self.answer is None:
            raise WmsUnavailable("the WMS is not reachable (connection failed)")
        return self.answer


def test_requests_read_the_last_list_and_never_fetch():
    upstream, now = Upstream(), [1000.0]
    catalog = wms.LayerCatalog(wms.WmsSource("http://127.0.0.1:1/"), fetch=upstream,
                               clock=lambda: now[0])
    assert catalog.state().status == "unknown"
    assert catalog.refresh() is True and upstream.calls == 1
    for _ in range(5):
        assert catalog.layers() == {"a": "A"}
    catalog.layers()["z"] = "changed"  # a copy: the catalog's own stays as fetched
    assert catalog.cached() == {"a": "A"} and upstream.calls == 1
    assert catalog.extents() == {"a": (-74.0, 45.0, -73.0, 46.0)}
    assert catalog.state() == wms.SourceState("ok", 1000.0, 1000.0)


def test_a_failed_probe_keeps_the_last_list_and_backs_off():
    upstream, now = Upstream(), [1000.0]
    catalog = wms.LayerCatalog(wms.WmsSource("http://127.0.0.1:1/"), probe_s=10,
                               max_backoff_s=60, fetch=upstream, clock=lambda: now[0])
    catalog.refresh()
    assert catalog.next_wait_s() == 10
    upstream.answer = None
    waits = []
    for step in range(8):
        now[0] = 2000.0 + step
        assert catalog.refresh() is False
        waits.append(catalog.next_wait_s())
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert catalog.layers() == {"a": "A"}  # still served from the last list
    state = catalog.state()
    assert (state.status, state.since, state.checked) == ("down", 2000.0, 2007.0)
    upstream.answer = wms.Capabilities({"b": "B"}, {})
    now[0] = 3000.0
    assert catalog.refresh() and catalog.layers() == {"b": "B"}
    assert catalog.state().since == 3000.0 and catalog.next_wait_s() == 10


@pytest.mark.parametrize(("offered", "chosen"), [
    (("image/png", "image/tiff", "image/jpeg"), "image/tiff"),
    (("IMAGE/TIFF ",), "image/tiff"),
    (("image/png", "image/jpeg"), "image/png"),
    (("image/png; mode=8bit", "image/jpeg"), "image/png"),  # a palette is no choice
    (("image/jpeg",), "image/png"),
    ((), "image/png"),
])
def test_the_cheapest_lossless_format_offered_is_chosen(offered, chosen):
    assert wms.choose_image_format(offered) == chosen


def test_the_catalog_chooses_the_format_from_the_last_capabilities():
    upstream = Upstream()
    catalog = wms.LayerCatalog(wms.WmsSource("http://127.0.0.1:1/"), fetch=upstream)
    assert catalog.image_format() == "image/png"  # before any capabilities
    upstream.answer = wms.Capabilities({"a": "A"}, {}, ("image/png", "image/tiff"))
    catalog.refresh()
    assert catalog.image_format() == "image/tiff"
    upstream.answer = wms.Capabilities({"a": "A"}, {}, ("image/png",))
    catalog.refresh()
    assert catalog.image_format() == "image/png"


@pytest.mark.parametrize("image_format", wms.LOSSLESS_FORMATS)
def test_the_getmap_asks_the_sources_format(image_format):
    source = wms.WmsSource("http://127.0.0.1:1/wms", image_format=image_format)
    root = ET.fromstring(wms.gdal_wms_xml(source, "a", BBox(0, 0, 1, 1), 8, 8))
    assert root.findtext("Service/ImageFormat") == image_format
