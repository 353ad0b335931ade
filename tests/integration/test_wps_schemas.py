"""Every XML document the service returns over WPS 1.0.0 validates against the official
OGC schemas (WPS 1.0.0, OWS 1.1.0; offline copies in tests/schemas)."""

from __future__ import annotations

import pytest
import requests
from lxml import etree
from schemas.validate import validate
from waiting import wait_until
from wpsclient import (
    NS,
    document_output,
    exception_of,
    execute_body,
    get,
    literal,
    post,
)

POINT = [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935),
         literal("width", 64), literal("height", 64)]


def assert_valid(content: bytes) -> etree._Element:
    errors = validate(content)
    assert errors == [], "\n".join(errors) + "\n" + content.decode(errors="replace")[:3000]
    return etree.fromstring(content)


def post_xml(url: str, xml: str) -> requests.Response:
    return post(url, xml)


CAPS_POST = ('<wps:GetCapabilities xmlns:wps="http://www.opengis.net/wps/1.0.0" '
             'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS">'
             "<wps:AcceptVersions><ows:Version>1.0.0</ows:Version></wps:AcceptVersions>"
             "</wps:GetCapabilities>")
DESCRIBE_POST = ('<wps:DescribeProcess xmlns:wps="http://www.opengis.net/wps/1.0.0" '
                 'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
                 "<ows:Identifier>get_raster_process</ows:Identifier></wps:DescribeProcess>")


def test_capabilities_get_and_post(wps):
    assert_valid(get(wps.url, request="GetCapabilities").content)
    assert_valid(get(wps.url, request="GetCapabilities", AcceptVersions="1.0.0").content)
    assert_valid(post_xml(wps.url, CAPS_POST).content)


def test_describe_process_get_and_post(wps):
    for identifier in ("get_raster_process", "all"):
        assert_valid(get(wps.url, request="DescribeProcess", identifier=identifier).content)
    assert_valid(post_xml(wps.url, DESCRIBE_POST).content)


def test_sync_execute_response_get_and_post(wps):
    doc = assert_valid(post(wps.url, execute_body(
        POINT, document_output(("image", "image/png"), ("geotiff", "image/tiff")))).content)
    assert doc.find(".//wps:ProcessSucceeded", NS) is not None
    answer = get(wps.url, request="Execute", identifier="get_raster_process",
                 DataInputs="wms=sample_city;lat=45.554;lon=-73.4935;width=32;height=32")
    assert_valid(answer.content)


def test_inline_outputs_validate(wps):
    """Outputs embedded in the document (not by reference)."""
    form = ('<wps:ResponseDocument><wps:Output mimeType="image/png">'
            "<ows:Identifier>image</ows:Identifier></wps:Output></wps:ResponseDocument>")
    assert_valid(post(wps.url, execute_body(POINT, form)).content)


def test_failure_documents_validate(faulty_wps, fault_proxy):
    """A sync failure is an ExceptionReport, an async one a ProcessFailed status: both
    valid."""
    from jobs import submit, wait_for_end

    fault_proxy.mode = "http500"
    try:
        answer = post(faulty_wps.url, execute_body(
            POINT, document_output(("geotiff", "image/tiff"))))
        final = wait_for_end(submit(faulty_wps, POINT,
                                    document_output(("geotiff", "image/tiff"))))[-1]
    finally:
        fault_proxy.mode = "pass"
    assert_valid(answer.content)
    assert answer.status_code == 502
    doc = assert_valid(etree.tostring(final[3]))
    assert doc.find(".//wps:ProcessFailed", NS) is not None


@pytest.mark.parametrize(
    "params",
    [
        {"request": "Execute", "identifier": "get_raster_process",
         "DataInputs": "wms=sample_city;lat=95;lon=0"},
        {"request": "DescribeProcess", "identifier": "nope"},
        {"request": "GetCapabilities", "AcceptVersions": "3.0.0"},
        {"request": "Frobnicate"},
        {"request": "DescribeProcess"},
    ],
)
def test_exception_reports_validate_and_are_http_errors(wps, params):
    answer = get(wps.url, **params)
    assert 400 <= answer.status_code < 600
    assert_valid(answer.content)


@pytest.mark.parametrize("version", ["3.0.0", "0.0.1"])
def test_version_negotiation(wps, version):
    answer = get(wps.url, request="GetCapabilities", AcceptVersions=version)
    assert 400 <= answer.status_code < 500
    assert exception_of(answer)[0] == "VersionNegotiationFailed"
    assert_valid(answer.content)


def test_accepted_version_gives_100_capabilities(wps):
    doc = assert_valid(get(wps.url, request="GetCapabilities", AcceptVersions="1.0.0").content)
    assert doc.get("version") == "1.0.0"


def statuses_until_end(status_url: str, timeout_s: float = 60) -> list[bytes]:
    """Every distinct status document seen until the job ends."""
    seen: list[bytes] = []

    def ended() -> bool:
        content = requests.get(status_url, timeout=30).content
        if not seen or content != seen[-1]:
            seen.append(content)
        status = etree.fromstring(content).find("wps:Status", NS)
        return status is not None and etree.QName(status[0]).localname in (
            "ProcessSucceeded", "ProcessFailed")

    wait_until(ended, timeout_s, lambda: f"the job to end; last document: {seen[-1:]!r}")
    return seen


def test_async_documents_validate_at_every_stage(gated_wps, gate):
    """Accepted (the Execute answer), Started (read while the proxy holds the job's GetMap)
    and every document after, up to Succeeded."""
    first = post(gated_wps.url, execute_body(
        POINT, document_output(("geotiff", "image/tiff")), store=True, status=True))
    doc = assert_valid(first.content)
    assert doc.find("wps:Status/wps:ProcessAccepted", NS) is not None
    status_url = doc.get("statusLocation")
    assert status_url
    gate.wait_held(1)
    started = assert_valid(requests.get(status_url, timeout=30).content)
    assert started.find("wps:Status/wps:ProcessStarted", NS) is not None
    gate.release()
    later = statuses_until_end(status_url)
    for content in later:
        assert_valid(content)
    assert etree.fromstring(later[-1]).find("wps:Status/wps:ProcessSucceeded", NS) is not None
