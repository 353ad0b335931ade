"""A key in the configured WMS URL (as commercial WMSs require) never reaches a client: not in
any response body or header, status document or output file, on success or failure."""

from __future__ import annotations

import pytest
import requests
from jobs import submit, wait_for_end
from keyed import start_keyed_wps as start_wps
from waiting import wait_until
from wpsclient import document_output, execute_body, literal, raw_output

SECRET = "SECRET123KEY"
POINT = [literal("lat", 45.5541), literal("lon", -73.4936), literal("width", 64),
         literal("height", 64)]
BOTH = document_output(("image", "image/png"), ("geotiff", "image/tiff"))


class Recorder:
    """Every response the test receives, body and headers."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, method: str, url: str, **kwargs) -> requests.Response:
        response = requests.request(method, url, timeout=60, **kwargs)
        self.seen.append(response.content)
        self.seen.append(repr(dict(response.headers)).encode())
        return response

    def post(self, url: str, body: str) -> requests.Response:
        return self("POST", url, data=body.encode(), headers={"Content-Type": "text/xml"})


@pytest.fixture(scope="module")
def keyed_upstream(fault_proxy, tmp_path_factory):
    """A WPS whose WMS URL carries a key (query string and userinfo), reading the faults
    MapServer through the fault proxy (which passes the key on, as a real WMS gets it)."""
    url = fault_proxy.url.replace("http://", f"http://user:{SECRET}@") + f"?apikey={SECRET}"
    server = start_wps(tmp_path_factory.mktemp("wps-secret"), url, workers=1,
                       overrides={"wms": {"timeout": 3}})
    wait_until(lambda: requests.get(f"{server.base}/health/upstream", timeout=30).ok, 30,
               "the layer list")
    yield server
    server.stop()


def test_the_key_reaches_no_client(keyed_upstream, fault_proxy):
    record, server = Recorder(), keyed_upstream
    record("GET", f"{server.url}?service=WPS&request=GetCapabilities")
    record("GET", f"{server.url}?service=WPS&version=1.0.0&request=DescribeProcess"
                  "&identifier=get_raster_process")
    record("GET", f"{server.base}/health")
    record("GET", f"{server.base}/health/upstream")
    ok = record.post(server.url, execute_body([literal("wms", "sample_city"), *POINT], BOTH))
    assert ok.status_code == 200
    record.post(server.url, execute_body([literal("wms", "sample_city"), *POINT],
                                         raw_output()))
    record.post(server.url, execute_body([literal("wms", "broken_layer"), *POINT], BOTH))
    for mode in ("http500", "not_image", "truncated", "wrong_size"):
        fault_proxy.mode = mode
        try:
            failed = record.post(server.url, execute_body([literal("wms", "sample_city"),
                                                           *POINT], BOTH))
            assert failed.status_code >= 500
            url = submit(server, [literal("wms", "sample_city"), *POINT], BOTH)
            assert wait_for_end(url)[-1][0] == "ProcessFailed"
            record("GET", url)
        finally:
            fault_proxy.mode = "pass"
    url = submit(server, [literal("wms", "sample_city"), *POINT], BOTH)
    assert wait_for_end(url)[-1][0] == "ProcessSucceeded"
    record("GET", url)
    for body in record.seen:
        assert SECRET.encode() not in body, body[:300]
    files = [p for p in server.output_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".tif" for p in files) and any(p.suffix == ".xml" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path.name
    # operators' logs keep the detail, with the key masked
    assert SECRET not in (server.directory / "gunicorn.log").read_text(errors="replace")
