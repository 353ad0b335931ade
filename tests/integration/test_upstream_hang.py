"""A WMS that accepts connections and never answers stalls nothing of the service's own:
start-up, capabilities, DescribeProcess and health answer at once from what the background
probes know, and no client request becomes an upstream request."""

from __future__ import annotations

import pytest
import requests
from keyed import start_keyed_wps as start_wps
from lxml import etree
from waiting import wait_until
from wpsclient import NS, exception_of, execute_body, get, literal, post, raw_output


@pytest.fixture(scope="module")
def hung(wms_server, tmp_path_factory):
    """A WPS whose WMS hangs from before its start (every request held, 60 s cap; the
    WMS timeout, 30 s, is far longer than the test)."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port, mode="hang_all", hold_cap_s=60)
    server = start_wps(tmp_path_factory.mktemp("wps-hung"), proxy.url, workers=2,
                       overrides={"wms": {"timeout": 30}})
    yield server, proxy
    server.stop()
    proxy.mode = "pass"
    proxy.close()


def test_own_documents_never_wait_on_the_wms(hung):
    server, proxy = hung
    # start_wps returned: start-up did not wait. Each of the 2 workers' probers is now (or
    # soon) stuck in its first call, for 30 s: no other upstream request can come meanwhile
    wait_until(lambda: proxy.held >= 2, 20, "both workers' probes held")
    seen = proxy.requests
    for _ in range(10):
        caps = get(server.url, timeout=10, request="GetCapabilities")
        described = get(server.url, timeout=10, request="DescribeProcess",
                        identifier="get_raster_process")
        health = requests.get(f"{server.base}/health", timeout=10)
        assert caps.status_code == described.status_code == health.status_code == 200
    assert proxy.requests == seen  # no upstream request per WPS request
    doc = etree.fromstring(described.content)
    wms = doc.xpath("//Input[ows:Identifier='wms']/LiteralData", namespaces=NS)[0]
    assert wms.find("ows:AnyValue", NS) is not None  # no layer list yet: any value
    assert health.json()["status"] == "degraded"
    assert health.json()["sources"]["sample"]["status"] in ("unknown", "down")
    assert requests.get(f"{server.base}/health/upstream", timeout=10).status_code == 503


def test_execute_before_any_layer_list_is_busy(hung):
    server, _ = hung
    answer = post(server.url, execute_body(
        [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935)],
        raw_output()), timeout=10)
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    assert exception_of(answer)[0] == "ServerBusy"
