"""`[wms] headers`: a key sent as an HTTP header reaches the configured WMS, on GetMap and
GetCapabilities, and never another host, whatever the WMS redirects to.

The fault proxy stands for the WMS (it records every request's head); its "redirect_away"
modes answer 302 to a sink server on another port, which records whatever reaches it.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import requests
from wpsclient import document_output, exception_of, execute_body, literal

from wps_app.core import wms
from wps_app.core.errors import WmsBadResponse, WmsError, WmsTimeout, WmsUnavailable
from wps_app.core.types import BBox

KEY = "hdr-key-5f0c1e"  # this module's own key, apart from the session's (keyed.KEY)
HEADERS = (("X-API-Key", KEY),)
BOX = BBox(-73.4945, 45.5535, -73.4925, 45.5550)
POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 32), literal("height", 32)]


@pytest.fixture
def proxy(fault_proxy):
    """The fault proxy with its request log and its sink's emptied; back to "pass" after."""
    fault_proxy.heads.clear()
    fault_proxy.sink.heads.clear()
    yield fault_proxy
    fault_proxy.mode = "pass"


def keyed_source(url: str, timeout_s: float = 5.0) -> wms.WmsSource:
    return wms.WmsSource(url, timeout_s=timeout_s, retries=0, headers=HEADERS)


def heads_with_key(heads: list[bytes]) -> list[bytes]:
    return [h for h in heads if f"x-api-key: {KEY}".encode() in h.lower()]


def test_the_header_reaches_the_wms_and_pixels_are_unchanged(proxy, faults_wms):
    """GetCapabilities and GetMap through the relay carry the header; the pixels equal a
    direct read of the same MapServer without any relay."""
    layers = wms.fetch_layers(keyed_source(proxy.url))
    assert "sample_city" in layers
    relayed = wms.read_rgba(keyed_source(proxy.url), "sample_city", BOX, 40, 30)
    direct = wms.read_rgba(wms.WmsSource(faults_wms.url), "sample_city", BOX, 40, 30)
    assert np.array_equal(relayed.data, direct.data) and relayed.data.any()
    assert relayed.transform == direct.transform
    keyed = heads_with_key(proxy.heads)
    assert any(b"getcapabilities" in h.lower() for h in keyed)
    assert any(b"getmap" in h.lower() for h in keyed)


def test_a_redirect_within_the_server_is_followed_with_the_header(proxy):
    proxy.mode = "redirect_home"
    raster = wms.read_rgba(keyed_source(proxy.url), "sample_city", BOX, 16, 16)
    assert raster.data.any()
    moved = [h for h in heads_with_key(proxy.heads) if h.split(b" ")[1].startswith(b"/moved")]
    assert moved, "the redirected GetMap was not asked with the header"


def test_a_redirect_to_another_origin_is_not_followed(proxy):
    """GetMap: refused as a bad upstream answer; nothing at all reaches the other server."""
    proxy.mode = "redirect_away"
    with pytest.raises(WmsBadResponse) as caught:
        wms.read_rgba(keyed_source(proxy.url), "sample_city", BOX, 16, 16)
    assert caught.value.http_status == 502
    assert proxy.sink.heads == []


def test_capabilities_redirected_elsewhere_are_refused(proxy):
    proxy.mode = "redirect_away_all"
    with pytest.raises(WmsError):
        wms.fetch_layers(keyed_source(proxy.url))
    assert proxy.sink.heads == []


def test_gdal_alone_would_send_the_header_to_the_other_origin(proxy):
    """Why the relay exists: GDAL_HTTP_HEADERS goes wherever a redirect points. If this
    ever fails, GDAL stopped doing it and the relay could be reconsidered."""
    proxy.mode = "redirect_away"
    description = wms.gdal_wms_xml(wms.WmsSource(proxy.url), "sample_city", BOX, 16, 16)
    with rasterio.Env(GDAL_HTTP_HEADERS=f"X-API-Key: {KEY}", GDAL_HTTP_MAX_RETRY="0"):
        with pytest.raises(rasterio.errors.RasterioIOError):
            with rasterio.open(description) as dataset:
                dataset.read()
    assert heads_with_key(proxy.sink.heads), "GDAL no longer follows with the header"


def test_relay_failures_keep_their_meaning(proxy):
    """An unreachable WMS is 'unavailable' and a slow one 'timed out', relay or not."""
    from devtools.embedded_wms import free_port  # a port free a moment ago: nothing listens

    with pytest.raises(WmsUnavailable):
        wms.read_rgba(keyed_source(f"http://127.0.0.1:{free_port()}/wms"), "sample_city",
                      BOX, 8, 8)
    proxy.delay_s = 3.0
    proxy.mode = "delay"
    try:
        with pytest.raises(WmsTimeout):
            wms.read_rgba(keyed_source(proxy.url, timeout_s=1), "sample_city", BOX, 8, 8)
    finally:
        proxy.delay_s = 8.0


@pytest.fixture(scope="module")
def header_wps(fault_proxy, tmp_path_factory):
    """A WPS whose default source is the fault proxy, keyed by this module's header."""
    from keyed import start_keyed_wps
    from waiting import wait_until

    server = start_keyed_wps(tmp_path_factory.mktemp("wps-headers"), fault_proxy.url,
                             workers=1, overrides={"wms": {"timeout": 3,
                                                           "headers": f"X-API-Key: {KEY}"}})
    wait_until(lambda: requests.get(f"{server.base}/health/upstream", timeout=30).ok, 30,
               "the layer list")
    yield server
    server.stop()


def test_execute_against_a_redirect_elsewhere_is_a_502(header_wps, proxy):
    proxy.mode = "redirect_away"
    answer = requests.post(header_wps.url, data=execute_body(
        POINT, document_output(("image", "image/png"))).encode(), timeout=60)
    assert answer.status_code == 502
    assert exception_of(answer)[0] == "NoApplicableCode"
    assert KEY.encode() not in answer.content
    assert proxy.sink.heads == []


def test_map_page_proxy_keeps_the_header_home(header_wps, proxy):
    """The page's /wms/<source> GetMap proxy adds the header itself: the WMS gets it; a
    redirect elsewhere answers 502 and reaches nobody."""
    params = {"SERVICE": "WMS", "REQUEST": "GetMap", "LAYERS": "sample_city",
              "BBOX": "-73.4945,45.5535,-73.4925,45.555", "WIDTH": "64", "HEIGHT": "64",
              "CRS": "EPSG:4326", "VERSION": "1.3.0"}
    tile = requests.get(f"{header_wps.base}/wms/sample", params=params, timeout=30)
    assert tile.status_code == 200 and tile.headers["Content-Type"] == "image/png"
    assert heads_with_key(proxy.heads)
    proxy.mode = "redirect_away"
    refused = requests.get(f"{header_wps.base}/wms/sample", params=params, timeout=30)
    assert refused.status_code == 502 and KEY.encode() not in refused.content
    assert proxy.sink.heads == []


class DroppingServer:
    """Answers the first request of each connection (keep-alive) and closes the connection,
    unanswered, on the second: a kept-alive connection the server drops as it is reused."""

    def __init__(self) -> None:
        import socket
        import threading

        self.requests = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client) -> None:
        with client:
            for number in (1, 2):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                self.requests += 1
                if number == 2:
                    return  # dropped, unanswered
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                               b"Connection: keep-alive\r\n\r\nok")

    def close(self) -> None:
        self._server.close()


def test_a_kept_alive_connection_dropped_on_reuse_is_asked_again():
    """The relay keeps connections to the WMS alive; one the server drops just as it is
    reused is asked again on a new connection (a GetMap is idempotent), not failed."""
    from wps_app.core.relay import fetch_within_origin

    server, session = DroppingServer(), requests.Session()
    try:
        url = f"http://127.0.0.1:{server.port}/wms?request=GetMap"
        for _ in range(2):
            with fetch_within_origin(url, HEADERS, 5, session) as answer:
                assert answer.status_code == 200 and answer.content == b"ok"
        assert server.requests == 3  # the second GetMap: dropped once, then answered
    finally:
        server.close()
        session.close()
