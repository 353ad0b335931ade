"""The WSGI app in-process (werkzeug's test client), with a stub layer catalog: routing,
the WPS binding's refusals and the output folder, without any server."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from stub_catalog import StubCatalog
from werkzeug.test import Client

from wps_app.web.app import create_app

NS = {"ows": "http://www.opengis.net/ows/1.1", "wps": "http://www.opengis.net/wps/1.0.0"}


def _app(tmp_path, layers: dict[str, str] | None):
    config = tmp_path / "test.cfg"
    config.write_text(
        "[server]\n"
        f"outputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        "[logging]\n"
        f"database = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\ntimeout = 1\nretries = 0\n"
    )
    return create_app([config], catalogs={"sample": StubCatalog(layers)})


@pytest.fixture
def client(tmp_path):
    return Client(_app(tmp_path, {"sample_city": "Sample city", "roads": "Roads"}))


def _exception(response) -> tuple[str, str]:
    doc = etree.fromstring(response.get_data())
    exception = doc.find("ows:Exception", NS)
    return exception.get("exceptionCode"), exception.get("locator")


def test_capabilities_list_the_process(client):
    response = client.get("/wps?service=WPS&request=GetCapabilities")
    assert response.status_code == 200
    doc = etree.fromstring(response.get_data())
    assert doc.xpath("//wps:Process/ows:Identifier/text()", namespaces=NS) == [
        "get_raster_process"]


def test_describe_process_offers_the_catalogs_layers(client):
    response = client.get("/wps?service=WPS&version=1.0.0&request=DescribeProcess"
                          "&identifier=get_raster_process")
    doc = etree.fromstring(response.get_data())
    layers = doc.xpath("//Input[ows:Identifier='wms']//ows:Value/text()", namespaces=NS)
    assert sorted(layers) == ["roads", "sample_city"]


@pytest.mark.parametrize(("inputs", "code", "locator"), [
    ("wms=nowhere;lat=45.5;lon=-73.5", "InvalidParameterValue", "wms"),
    ("wms=sample_city;lat=45.5", "MissingParameterValue", "lon"),
    ("wms=sample_city;lat=95;lon=-73.5", "InvalidParameterValue", "lat"),
    ("wms=sample_city;lat=45.5;lon=-73.5;width=0", "InvalidParameterValue", "width"),
    ("wms=sample_city;lat=45.5;lon=-73.5;source=elsewhere", "InvalidParameterValue",
     "source"),
])
def test_bad_input_is_refused_with_its_locator(client, inputs, code, locator):
    response = client.get("/wps?service=WPS&version=1.0.0&request=Execute"
                          f"&identifier=get_raster_process&DataInputs={inputs}")
    assert response.status_code == 400
    assert _exception(response) == (code, locator)


def test_until_a_layer_list_exists_execute_is_busy(tmp_path):
    """No layer list was ever read: the layer cannot be checked; ServerBusy, retry later;
    DescribeProcess still answers, with `wms` open to any value."""
    client = Client(_app(tmp_path, None))
    response = client.get("/wps?service=WPS&version=1.0.0&request=Execute"
                          "&identifier=get_raster_process&DataInputs=wms=x;lat=45;lon=-73")
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert _exception(response)[0] == "ServerBusy"
    described = client.get("/wps?service=WPS&version=1.0.0&request=DescribeProcess"
                           "&identifier=get_raster_process")
    doc = etree.fromstring(described.get_data())
    wms = doc.xpath("//Input[ows:Identifier='wms']/LiteralData", namespaces=NS)[0]
    assert wms.find("ows:AnyValue", NS) is not None


def test_a_dtd_is_refused_before_parsing(client):
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    response = client.post("/wps", data=body, content_type="text/xml")
    assert response.status_code == 400
    assert _exception(response)[0] == "NoApplicableCode"


def test_outputs_are_served_from_the_output_folder_only(client, tmp_path):
    job = tmp_path / "outputs" / "job-1"
    job.mkdir(parents=True)
    (job / "sobel_x.tif").write_bytes(b"II*\x00rest")
    (tmp_path / "secret.txt").write_text("no")
    served = client.get("/outputs/job-1/sobel_x.tif")
    assert served.status_code == 200 and served.get_data() == b"II*\x00rest"
    assert served.headers["Content-Type"] == "image/tiff; application=geotiff"
    for path in ("/outputs/../secret.txt", "/outputs/job-1/../../secret.txt",
                 "/outputs/job-1/missing.tif", "/elsewhere"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(("layers", "upstream_status", "state", "source"), [
    ({"sample_city": "Sample"}, 200, "ok", "ok"), (None, 503, "degraded", "down")])
def test_health_reports_each_source(tmp_path, layers, upstream_status, state, source):
    """/health stays 200 while the instance serves (a load balancer keeps it); the source
    states come from the last probe; /health/upstream is 503 while one is down."""
    client = Client(_app(tmp_path, layers))
    response = client.get("/health")
    assert response.status_code == 200
    body = json.loads(response.get_data())
    assert body["status"] == state and body["sources"]["sample"]["status"] == source
    assert body["sources"]["sample"]["checked"] == "2023-11-14T22:13:25Z"
    assert body["instance"] and body["version"]
    assert client.get("/health/upstream").status_code == upstream_status


@pytest.fixture
def output_file(tmp_path):
    job = tmp_path / "outputs" / "job-2"
    job.mkdir(parents=True)
    data = bytes(range(256)) * 64
    (job / "big.tif").write_bytes(data)
    return "/outputs/job-2/big.tif", data


def test_single_ranges_are_answered_206(client, output_file):
    """What GDAL's /vsicurl/ asks for: a byte range, answered with just those bytes."""
    url, data = output_file
    response = client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.get_data() == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert response.headers["Accept-Ranges"] == "bytes"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.get_data() == data[-10:]


@pytest.mark.parametrize("ranges", ["bytes=0-9,20-29", "bytes=999999-", "bytes=abc"])
def test_other_ranges_get_the_file_or_416_never_500(client, output_file, ranges):
    url, data = output_file
    response = client.get(url, headers={"Range": ranges})
    assert response.status_code in (200, 416)
    if response.status_code == 200:
        assert response.get_data() == data


def test_head_and_conditional_requests(client, output_file):
    url, data = output_file
    head = client.head(url)
    assert head.status_code == 200 and head.get_data() == b""
    assert int(head.headers["Content-Length"]) == len(data)
    etag, modified = head.headers["ETag"], head.headers["Last-Modified"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304


def test_browsers_may_read_ranges_across_origins(client, output_file):
    headers = client.get(output_file[0], headers={"Range": "bytes=0-1"}).headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Content-Range", "ETag"} <= exposed


def test_a_name_no_file_system_holds_is_404(client):
    assert client.get("/outputs/job-2/" + "x" * 300 + ".tif").status_code == 404
    assert client.get("/outputs/" + "y" * 256 + "/a.tif").status_code == 404


KEY = "k" * 20


@pytest.fixture
def keyed_client(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY} lab\n")
    config = tmp_path / "keys.cfg"
    config.write_text(f"[auth]\nkeys_file = {keys}\n")
    app = _app(tmp_path, {"sample_city": "Sample city"})
    keyed = create_app([tmp_path / "test.cfg", config],
                       catalogs={"sample": StubCatalog({"sample_city": "Sample city"})})
    assert app.keys is None and keyed.keys is not None
    return Client(keyed)


@pytest.mark.parametrize("path", [
    "/wps?service=WPS&version=1.0.0&request=DescribeProcess&identifier=get_raster_process",
    "/wps?service=WPS&version=1.0.0&request=Execute&identifier=get_raster_process"
    "&DataInputs=wms=sample_city;lat=45.5;lon=-73.5",
    "/outputs/job-1/sobel_x.tif",
])
def test_with_keys_every_request_needs_one(keyed_client, path):
    for headers in ({}, {"Authorization": "Bearer wrong-key-wrong-key"},
                    {"X-API-Key": KEY[:-1]}):
        response = keyed_client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert KEY not in response.get_data(as_text=True)
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        assert keyed_client.get(path, headers=headers).status_code != 401


def test_with_keys_capabilities_and_health_stay_public(keyed_client):
    assert keyed_client.get("/wps?service=WPS&request=GetCapabilities").status_code == 200
    assert keyed_client.get("/health").status_code == 200


def test_a_refused_wps_request_gets_an_exception_report(keyed_client):
    response = keyed_client.get("/wps?service=WPS&version=1.0.0&request=DescribeProcess"
                                "&identifier=get_raster_process")
    assert _exception(response)[0] == "NoApplicableCode"


def test_a_document_replaced_while_served_is_sent_whole(client, tmp_path):
    """Status documents are renamed over while jobs run: the answer is one version whole,
    its Content-Length that version's (a size taken from the path could be the next's)."""
    status = tmp_path / "outputs" / "job-3.xml"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("<old>" + "x" * 100 + "</old>")
    response = client.get("/outputs/job-3.xml", buffered=False)
    replacement = tmp_path / "outputs" / ".next"
    replacement.write_text("<new/>")
    replacement.rename(status)
    body = response.get_data()
    assert body == b"<old>" + b"x" * 100 + b"</old>"
    assert int(response.headers["Content-Length"]) == len(body)


def _request_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("request ")]


def test_request_lines_name_the_operation_and_process_of_every_binding(client, caplog):
    """KVP, POSTed XML and OGC API requests all log which operation and process they were
    for (refused ones included)."""
    import logging

    caplog.set_level(logging.INFO, logger="wps_app.web.app")
    body = ('<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
            'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
            "<ows:Identifier>get_raster_process</ows:Identifier></wps:Execute>")
    client.post("/wps", data=body, content_type="text/xml")
    client.post("/ogcapi/processes/get_raster_process/execution", json={"inputs": {}})
    client.get("/wps?service=WPS&version=1.0.0&request=DescribeProcess"
               "&identifier=get_raster_process")
    lines = _request_lines(caplog)
    assert "operation=execute identifier=get_raster_process" in lines[0], lines
    assert "operation=execution:sync identifier=get_raster_process" in lines[1], lines
    assert "operation=describeprocess identifier=get_raster_process" in lines[2], lines
