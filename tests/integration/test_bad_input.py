"""One table of malformed requests, each with the exceptionCode and locator it must get.
None of them may change anything: no output, no job, and the service keeps answering."""

from __future__ import annotations

import os

import pytest
import requests
from lxml import etree
from schemas.validate import validate
from wpsclient import NS, bbox_input, execute_body, literal, raw_output

LAYER = literal("wms", "sample_city")
POINT = [literal("lat", 45.554), literal("lon", -73.4935)]
ID = "get_raster_process"
OK_INPUTS = "wms=sample_city;lat=45.554;lon=-73.4935"


def kvp(**params) -> dict:
    return {"method": "GET", "params": params}


def execute_kvp(data_inputs: str, **extra) -> dict:
    return kvp(service="WPS", version="1.0.0", request="Execute", identifier=ID,
               DataInputs=data_inputs, **extra)


def xml(inputs: list[str], form: str | None = None, **kwargs) -> dict:
    return {"method": "POST", "body": execute_body(inputs, form or raw_output(), **kwargs)}


def raw(body: bytes | str) -> dict:
    return {"method": "POST", "body": body}


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<wps:GetCapabilities xmlns:wps="http://www.opengis.net/wps/1.0.0" service="WPS">'
    "&lol3;</wps:GetCapabilities>"
)
XXE_FILE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + execute_body([literal("wms", "&x;"), *POINT], raw_output())
)
XXE_HTTP = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
    + execute_body([literal("wms", "&x;"), *POINT], raw_output())
)
DEEP = ('<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" service="WPS" '
        'version="1.0.0">' + "<a>" * 5000 + "</a>" * 5000 + "</wps:Execute>")
WRONG_NS = execute_body([LAYER, *POINT], raw_output()).replace(
    "http://www.opengis.net/wps/1.0.0", "http://www.opengis.net/wps/9.9.9")

CASES = [
    # (name, request, exceptionCode, locator)
    ("no request parameter", kvp(service="WPS"), "MissingParameterValue", "request"),
    ("unknown operation", kvp(service="WPS", request="Frobnicate"),
     "OperationNotSupported", "Frobnicate"),
    ("wrong service", kvp(service="WMS", request="GetCapabilities"),
     "InvalidParameterValue", "service"),
    ("unknown version", kvp(service="WPS", request="DescribeProcess", version="9.9.9",
                            identifier=ID), "InvalidParameterValue", "version"),
    ("describe without identifier", kvp(service="WPS", version="1.0.0",
                                        request="DescribeProcess"),
     "MissingParameterValue", "identifier"),
    ("describe unknown process", kvp(service="WPS", version="1.0.0", request="DescribeProcess",
                                     identifier="nope"), "InvalidParameterValue", "identifier"),
    ("execute without identifier", kvp(service="WPS", version="1.0.0", request="Execute"),
     "MissingParameterValue", "identifier"),
    ("execute unknown process", kvp(service="WPS", version="1.0.0", request="Execute",
                                    identifier="nope", DataInputs=OK_INPUTS),
     "InvalidParameterValue", "Identifier"),
    ("missing wms", execute_kvp("lat=45.554;lon=-73.4935"), "MissingParameterValue", "wms"),
    ("missing lat", execute_kvp("wms=sample_city;lon=-73.4935"), "MissingParameterValue",
     "lat"),
    ("missing lon", xml([LAYER, literal("lat", 45.554)]), "MissingParameterValue", "lon"),
    # PyWPS reads an empty LiteralData as the text "None": refused as an unknown layer
    ("empty wms", xml([literal("wms", ""), *POINT]), "InvalidParameterValue", "wms"),
    ("empty lat", execute_kvp("wms=sample_city;lat=;lon=-73.4935"), "MissingParameterValue",
     "lat"),
    ("lat not a number", execute_kvp("wms=sample_city;lat=north;lon=-73.4935"),
     "InvalidParameterValue", "lat"),
    ("lat NaN", execute_kvp("wms=sample_city;lat=NaN;lon=-73.4935"),
     "InvalidParameterValue", "lat"),
    ("lon inf", execute_kvp("wms=sample_city;lat=45.5;lon=inf"), "InvalidParameterValue",
     "lon"),
    ("lat 1e309", xml([LAYER, literal("lat", "1e309"), literal("lon", 0)]),
     "InvalidParameterValue", "lat"),
    ("lat 91", execute_kvp("wms=sample_city;lat=91;lon=-73.4935"), "InvalidParameterValue",
     "lat"),
    ("lat -90.5", xml([LAYER, literal("lat", -90.5), literal("lon", 0)]),
     "InvalidParameterValue", "lat"),
    ("lon 181", execute_kvp("wms=sample_city;lat=45;lon=181"), "InvalidParameterValue",
     "lon"),
    ("lon -180.01", xml([LAYER, literal("lat", 45), literal("lon", -180.01)]),
     "InvalidParameterValue", "lon"),
    ("width 0", execute_kvp(OK_INPUTS + ";width=0"), "InvalidParameterValue", "width"),
    ("width -1", execute_kvp(OK_INPUTS + ";width=-1"), "InvalidParameterValue", "width"),
    ("width 10^6", execute_kvp(OK_INPUTS + ";width=1000000"), "InvalidParameterValue",
     "width"),
    ("height not an integer", execute_kvp(OK_INPUTS + ";height=12.5"),
     "InvalidParameterValue", "height"),
    ("height text", xml([LAYER, *POINT, literal("height", "tall")]), "InvalidParameterValue",
     "height"),
    ("too many pixels", execute_kvp(OK_INPUTS + ";width=16384;height=16385"),
     "InvalidParameterValue", "height"),
    ("unknown method", execute_kvp(OK_INPUTS + ";method=laplace"), "InvalidParameterValue",
     "method"),
    ("method script", xml([LAYER, *POINT, literal("method", "__import__('os')")]),
     "InvalidParameterValue", "method"),
    ("unknown stretch", execute_kvp(OK_INPUTS + ";stretch=gamma"), "InvalidParameterValue",
     "stretch"),
    ("unknown layer", execute_kvp("wms=roads;lat=45.554;lon=-73.4935"),
     "InvalidParameterValue", "wms"),
    ("layer injecting a query", xml([literal("wms", "sample_city&LAYERS=other"), *POINT]),
     "InvalidParameterValue", "wms"),
    ("layer as a GDAL name", xml([literal("wms", "/vsicurl/http://127.0.0.1:9/x"), *POINT]),
     "InvalidParameterValue", "wms"),
    ("layer as a WMS: name", xml([literal("wms", "WMS:http://127.0.0.1:9/wms?"), *POINT]),
     "InvalidParameterValue", "wms"),
    ("layer as GDAL_WMS XML", xml([literal("wms", "<GDAL_WMS><Service/></GDAL_WMS>"),
                                   *POINT]), "InvalidParameterValue", "wms"),
    ("layer as file URL", xml([literal("wms", "file:///etc/passwd"), *POINT]),
     "InvalidParameterValue", "wms"),
    ("huge literal string", xml([literal("wms", "x" * 200_000), *POINT]),
     "InvalidParameterValue", "wms"),
    ("unknown input wms_url", xml([LAYER, *POINT, literal("wms_url", "http://127.0.0.1:9/")]),
     "InvalidParameterValue", "wms_url"),
    ("source given as a URL", execute_kvp(OK_INPUTS + ";source=ftp://127.0.0.1/x"),
     "InvalidParameterValue", "source"),
    ("duplicated lat", execute_kvp(OK_INPUTS + ";lat=45.6"), "InvalidParameterValue", "lat"),
    ("duplicated method", xml([LAYER, *POINT, literal("method", "sobel_x"),
                               literal("method", "sobel_y")]), "InvalidParameterValue",
     "method"),
    ("bbox and lat/lon", xml([LAYER, *POINT, bbox_input("45.55 -73.5", "45.56 -73.49")]),
     "InvalidParameterValue", "bbox"),
    ("bbox inverted", xml([LAYER, bbox_input("45.56 -73.49", "45.55 -73.50")]),
     "InvalidParameterValue", "bbox"),
    ("bbox zero area", xml([LAYER, bbox_input("45.55 -73.49", "45.55 -73.48")]),
     "InvalidParameterValue", "bbox"),
    ("bbox NaN", xml([LAYER, bbox_input("NaN -73.49", "45.56 -73.48")]),
     "InvalidParameterValue", "bbox"),
    ("bbox out of range", execute_kvp("wms=sample_city;bbox=-95,-73.5,45.56,-73.49,EPSG:4326"),
     "InvalidParameterValue", "bbox"),
    ("bbox other CRS", xml([LAYER, bbox_input("-8182000 5700000", "-8181000 5701000",
                                              "EPSG:3857")]), "InvalidParameterValue", "bbox"),
    ("bbox three numbers", execute_kvp("wms=sample_city;bbox=45.5,-73.5,45.6"),
     "InvalidParameterValue", "bbox"),
    ("bbox too large", execute_kvp("wms=sample_city;bbox=40,-80,46,-70,EPSG:4326"),
     "InvalidParameterValue", "bbox"),
    # outside the layer's advertised extent: nothing there to filter
    ("point at 0,0", execute_kvp("wms=sample_city;lat=0;lon=0"), "InvalidParameterValue",
     "lat"),
    ("lat and lon swapped", execute_kvp("wms=sample_city;lat=-73.4935;lon=45.554"),
     "InvalidParameterValue", "lat"),
    ("bbox elsewhere", execute_kvp("wms=sample_city;bbox=10,10,10.1,10.1,EPSG:4326"),
     "InvalidParameterValue", "bbox"),
    ("unknown output", xml([LAYER, *POINT], raw_output("thumbnail")),
     "InvalidParameterValue", "thumbnail"),
    ("unsupported output format", xml([LAYER, *POINT], raw_output("image", "image/jpeg")),
     "InvalidParameterValue", "image"),
    ("broken XML", raw("<wps:Execute xmlns:wps='http://www.opengis.net/wps/1.0.0'>"),
     "NoApplicableCode", ""),
    ("not XML at all", raw("lat=45&lon=-73"), "NoApplicableCode", ""),
    ("wrong namespace", raw(WRONG_NS), "NoApplicableCode", ""),
    ("non-UTF-8 bytes", raw(execute_body([literal("wms", "sample_city"), *POINT],
                                         raw_output()).encode().replace(b"sample_city",
                                                                        b"sample_\xff\xfe")),
     "NoApplicableCode", ""),
    ("external entity (file)", raw(XXE_FILE), "NoApplicableCode", ""),
    ("external entity (http)", raw(XXE_HTTP), "NoApplicableCode", ""),
    ("billion laughs", raw(BILLION_LAUGHS), "NoApplicableCode", ""),
    ("deep nesting", raw(DEEP), "NoApplicableCode", ""),
    # strict literals: ASCII digits as XML Schema types write them, booleans exactly
    ("width in fullwidth digits", execute_kvp(OK_INPUTS + ";width=\uff11\uff12"),
     "InvalidParameterValue", "width"),
    ("width in Arabic-Indic digits", xml([LAYER, *POINT, literal("width", "\u0661\u0662")]),
     "InvalidParameterValue", "width"),
    ("lat with an underscore", execute_kvp("wms=sample_city;lat=4_5;lon=-73.4935"),
     "InvalidParameterValue", "lat"),
    ("lon in fullwidth digits", xml([LAYER, literal("lat", 45), literal("lon", "\uff17\uff13")]),
     "InvalidParameterValue", "lon"),
    ("bbox in fullwidth digits",
     execute_kvp("wms=sample_city;bbox=\uff14\uff15,-73.5,45.56,-73.49,EPSG:4326"),
     "InvalidParameterValue", "bbox"),
    ("cog maybe", execute_kvp(OK_INPUTS + ";cog=maybe"), "InvalidParameterValue", "cog"),
    ("cog emoji", xml([LAYER, *POINT, literal("cog", "\U0001f600")]), "InvalidParameterValue",
     "cog"),
    ("cog NUL", execute_kvp(OK_INPUTS + ";cog=%00"), "InvalidParameterValue", "cog"),
    # one request format per endpoint: WPS XML by POST, nothing else
    ("declared UTF-7", raw(b'<?xml version="1.0" encoding="UTF-7"?>'
                           + BILLION_LAUGHS.split("?>", 1)[1].encode("utf-7")),
     "NoApplicableCode", ""),
    ("UTF-16", raw(('<?xml version="1.0" encoding="UTF-16"?>'
                    + execute_body([LAYER, *POINT], raw_output())).encode("utf-16")),
     "NoApplicableCode", ""),
    ("no namespace", raw(execute_body([LAYER, *POINT], raw_output()).replace(
        ' xmlns:wps="http://www.opengis.net/wps/1.0.0"', "").replace("wps:", "")),
     "NoApplicableCode", ""),
    ("JSON execute", {"method": "POST", "content_type": "application/json",
                      "body": '{"identifier": "get_raster_process", "inputs": {}}'},
     "NoApplicableCode", ""),
    ("body over the maximum size", raw(b"<x>" + b" " * (1024 * 1024 + 10) + b"</x>"),
     "NoApplicableCode", ""),
]


def send(wps, request: dict) -> requests.Response:
    if request["method"] == "GET":
        return requests.get(wps.url, params=request["params"], timeout=60)
    body = request["body"]
    return requests.post(wps.url, data=body.encode() if isinstance(body, str) else body,
                         headers={"Content-Type": request.get("content_type", "text/xml")},
                         timeout=60)


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "request_", "code", "locator"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_request_is_refused(wps, name, request_, code, locator):
    before = sorted(os.listdir(wps.output_path))
    work_before = sorted(os.listdir(wps.directory / "work"))
    answer = send(wps, request_)
    assert 400 <= answer.status_code < 600, answer.text[:300]
    assert validate(answer.content) == [], answer.text[:500]
    doc = etree.fromstring(answer.content)
    exception = doc.find("ows:Exception", NS)
    text = exception.findtext("ows:ExceptionText", "", NS)
    assert (exception.get("exceptionCode"), exception.get("locator") or "") == (code, locator), \
        text
    assert 3 < len(text) < 400
    assert "root:" not in text  # nothing read from /etc/passwd
    assert sorted(os.listdir(wps.output_path)) == before
    assert sorted(os.listdir(wps.directory / "work")) == work_before  # no empty job folder
    assert requests.get(wps.url, params={"service": "WPS", "request": "GetCapabilities"},
                        timeout=30).status_code == 200
