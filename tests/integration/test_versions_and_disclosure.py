"""Only WPS 1.0.0 is advertised and served, and responses say nothing about the stack."""

from __future__ import annotations

import uuid

import pytest
import requests
from lxml import etree
from schemas.validate import validate
from wpsclient import (
    NS,
    document_output,
    exception_of,
    execute_body,
    get,
    literal,
    post,
    references,
)

GET_CAPABILITIES_2 = (
    '<wps:GetCapabilities xmlns:wps="http://www.opengis.net/wps/1.0.0" '
    'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS">'
    "<wps:AcceptVersions><ows:Version>2.0.0</ows:Version></wps:AcceptVersions>"
    "</wps:GetCapabilities>")


def test_capabilities_advertise_1_0_0_only(wps):
    doc = etree.fromstring(get(wps.url, request="GetCapabilities").content)
    assert doc.xpath("//ows:ServiceTypeVersion/text()", namespaces=NS) == ["1.0.0"]


@pytest.mark.parametrize("accept", ["2.0.0", "2.0.0,3.0.0"])
def test_accepting_2_0_0_alone_fails_negotiation(wps, accept):
    answer = get(wps.url, request="GetCapabilities", AcceptVersions=accept)
    assert answer.status_code == 400
    assert exception_of(answer)[0] == "VersionNegotiationFailed"
    assert validate(answer.content) == []


def test_accepting_2_0_0_by_post_fails_negotiation(wps):
    answer = post(wps.url, GET_CAPABILITIES_2)
    assert answer.status_code == 400
    assert exception_of(answer)[0] == "VersionNegotiationFailed"


def test_1_0_0_among_others_is_negotiated(wps):
    answer = get(wps.url, request="GetCapabilities", AcceptVersions="2.0.0,1.0.0")
    assert answer.status_code == 200 and etree.fromstring(answer.content).get("version") == (
        "1.0.0")


@pytest.mark.parametrize("operation", ["DescribeProcess", "Execute"])
def test_version_2_0_0_is_not_served(wps, operation):
    answer = requests.get(wps.url, timeout=30, params={
        "service": "WPS", "version": "2.0.0", "request": operation,
        "identifier": "get_raster_process", "DataInputs": "wms=sample_city;lat=45.554;"
                                                          "lon=-73.4935"})
    assert answer.status_code == 400
    assert exception_of(answer)[:2] == ("InvalidParameterValue", "version")
    assert b"process.identifier" not in answer.content


@pytest.mark.parametrize("params", [
    {"request": "GetCapabilities"},
    {"request": "DescribeProcess", "version": "1.0.0", "identifier": "get_raster_process"},
    {"request": "DescribeProcess", "version": "1.0.0", "identifier": "nope"},
    {"request": "Frobnicate"},
])
def test_no_library_versions_or_placeholders_in_responses(wps, params):
    content = get(wps.url, **params).content
    assert b"PyWPS" not in content.split(b">", 2)[1]  # no <!-- PyWPS x.y.z --> comment
    assert b"<!--" not in content
    for placeholder in (b"Lastname", b"Firstname", b"Organization Name", b"pywps.org",
                        b"+xx-xxx"):
        assert placeholder not in content


def test_job_ids_and_output_folders_are_uuid4(wps):
    """Job ids name status documents and output folders: they must not be guessable."""
    inputs = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
              literal("width", 32), literal("height", 32)]
    form = document_output(("geotiff", "image/tiff"))
    folders = [references(post(wps.url, execute_body(inputs, form)))["geotiff"].rsplit("/", 2)[1]
               for _ in range(2)]
    status = etree.fromstring(post(wps.url, execute_body(inputs, form, store=True,
                                                         status=True)).content)
    job = status.get("statusLocation").rsplit("/", 1)[1].removesuffix(".xml")
    ids = [uuid.UUID(value) for value in (*folders, job)]
    assert [i.version for i in ids] == [4, 4, 4] and len(set(ids)) == 3


@pytest.mark.parametrize("path", ["/lighttpd.conf", "/mapserver.conf", "/lighttpd-error.log",
                                  "/mapserv.sock", "/../lighttpd.conf", "/%2e%2e/lighttpd.conf"])
def test_the_embedded_wms_serves_none_of_its_own_files(wms_server, path):
    """Its configuration and logs exist in its run folder, and none is served over HTTP."""
    assert (wms_server.rundir / "lighttpd.conf").exists()
    assert (wms_server.rundir / "mapserver.conf").exists()
    answer = requests.get(f"http://127.0.0.1:{wms_server.port}{path}", timeout=10)
    assert answer.status_code in (400, 403, 404)
    assert b"fastcgi" not in answer.content.lower() and b"MS_MAPFILE" not in answer.content
