"""The QGIS plugin's plain-Python modules (qgis_plugin/wps_processing: describe, execute,
urls, tiff, style), without QGIS: documents parsed into values written by hand, Execute
requests validated against the WPS 1.0.0 schema, TIFF tags written by rasterio, and the
plugin's style compared with M computed by hand and with the service's style."""

from __future__ import annotations

import base64
import itertools
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds
from reference import expected_kernel
from schemas.validate import validate

from qgis_plugin.wps_processing import describe, execute, style, tiff, urls
from qgis_plugin.wps_processing.errors import DocumentError, ServiceException
from wps_app.core import styles
from wps_app.core.types import METHODS

CAPABILITIES = b"""<?xml version="1.0" encoding="UTF-8"?>
<wps:Capabilities service="WPS" version="1.0.0" xmlns:wps="http://www.opengis.net/wps/1.0.0"
    xmlns:ows="http://www.opengis.net/ows/1.1">
  <ows:ServiceIdentification><ows:Title> Edge WPS </ows:Title>
    <ows:Abstract>Filters.</ows:Abstract></ows:ServiceIdentification>
  <wps:ProcessOfferings>
    <wps:Process wps:processVersion="1"><ows:Identifier>a</ows:Identifier></wps:Process>
    <wps:Process wps:processVersion="1"><ows:Identifier>gs:B</ows:Identifier></wps:Process>
  </wps:ProcessOfferings>
</wps:Capabilities>"""

# unqualified elements as PyWPS writes them, xs: types, a reference-only type, unbounded
DESCRIPTIONS = b"""<?xml version="1.0" encoding="UTF-8"?>
<wps:ProcessDescriptions xmlns:wps="http://www.opengis.net/wps/1.0.0"
    xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">
 <ProcessDescription wps:processVersion="2.1" storeSupported="true" statusSupported="false">
  <ows:Identifier>a</ows:Identifier><ows:Title>Process A</ows:Title>
  <DataInputs>
   <Input minOccurs="1" maxOccurs="1"><ows:Identifier>method</ows:Identifier>
    <ows:Title>Method</ows:Title><ows:Abstract>Which one</ows:Abstract>
    <LiteralData><ows:DataType>string</ows:DataType>
     <ows:AllowedValues><ows:Value>x</ows:Value><ows:Value>y</ows:Value></ows:AllowedValues>
     <DefaultValue>y</DefaultValue></LiteralData></Input>
   <Input minOccurs="0" maxOccurs="unbounded"><ows:Identifier>w</ows:Identifier>
    <ows:Title>W</ows:Title>
    <LiteralData><ows:DataType ows:reference="http://www.w3.org/TR/xmlschema-2/#int"/>
     <ows:AllowedValues><ows:Range ows:rangeClosure="closed"><ows:MinimumValue>1</ows:MinimumValue>
      <ows:MaximumValue>64</ows:MaximumValue></ows:Range></ows:AllowedValues>
     <DefaultValue>8</DefaultValue></LiteralData></Input>
   <Input minOccurs="0" maxOccurs="1"><ows:Identifier>f</ows:Identifier><ows:Title>F</ows:Title>
    <LiteralData><ows:DataType>xs:double</ows:DataType><ows:AnyValue/></LiteralData></Input>
   <Input minOccurs="0" maxOccurs="1"><ows:Identifier>on</ows:Identifier><ows:Title>On</ows:Title>
    <LiteralData><ows:DataType>boolean</ows:DataType><DefaultValue>False</DefaultValue>
    </LiteralData></Input>
   <Input minOccurs="0" maxOccurs="1"><ows:Identifier>area</ows:Identifier>
    <ows:Title>Area</ows:Title><BoundingBoxData>
     <Default><CRS>urn:ogc:def:crs:OGC:1.3:CRS84</CRS></Default>
     <Supported><CRS>urn:ogc:def:crs:OGC:1.3:CRS84</CRS><CRS>EPSG:4326</CRS></Supported>
    </BoundingBoxData></Input>
   <Input minOccurs="1" maxOccurs="1"><ows:Identifier>doc</ows:Identifier>
    <ows:Title>Doc</ows:Title><ComplexData><Default><Format><MimeType>text/xml</MimeType>
    </Format></Default></ComplexData></Input>
  </DataInputs>
  <ProcessOutputs>
   <Output><ows:Identifier>tif</ows:Identifier><ows:Title>T</ows:Title><ComplexOutput>
    <Default><Format><MimeType>image/tiff; subtype=geotiff</MimeType></Format></Default>
    <Supported><Format><MimeType>image/tiff; subtype=geotiff</MimeType></Format>
     <Format><MimeType>image/png</MimeType></Format></Supported></ComplexOutput></Output>
   <Output><ows:Identifier>n</ows:Identifier><ows:Title>N</ows:Title>
    <LiteralOutput><ows:DataType>integer</ows:DataType></LiteralOutput></Output>
  </ProcessOutputs>
 </ProcessDescription>
</wps:ProcessDescriptions>"""

WPS_NS = ('xmlns:wps="http://www.opengis.net/wps/1.0.0" '
          'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink"')


def response(status: str, outputs: str = "", location: str = "") -> bytes:
    where = f' statusLocation="{location}"' if location else ""
    return (f'<wps:ExecuteResponse {WPS_NS} service="WPS" version="1.0.0"{where}>'
            f"<wps:Process><ows:Identifier>a</ows:Identifier><ows:Title>A</ows:Title>"
            f"</wps:Process><wps:Status creationTime=\"2024-01-01T00:00:00Z\">{status}"
            f"</wps:Status>{outputs}</wps:ExecuteResponse>").encode()


# --- describe ---------------------------------------------------------------------------

def test_capabilities_give_the_title_and_the_process_identifiers():
    caps = describe.parse_capabilities(CAPABILITIES)
    assert caps == describe.Capabilities("Edge WPS", "Filters.", ("a", "gs:B"))


def test_a_process_description_becomes_plain_values():
    """Every kind of input and output, types normalised, defaults kept as text."""
    (process,) = describe.parse_descriptions(DESCRIPTIONS)
    assert (process.identifier, process.title, process.version) == ("a", "Process A", "2.1")
    assert (process.store_supported, process.status_supported) == (True, False)
    method, w, f, on, area, doc = process.inputs
    assert method.literal == describe.Literal("string", ("x", "y"), (), "y")
    assert (method.abstract, method.optional) == ("Which one", False)
    assert w.literal == describe.Literal("integer", (), ((1.0, 64.0),), "8")
    assert (w.optional, w.max_occurs) == (True, 1_000_000)
    assert f.literal == describe.Literal("float")
    assert on.literal == describe.Literal("boolean", default="False")
    assert (area.kind, area.crss) == ("bbox", ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"))
    assert (doc.kind, doc.formats) == ("complex", (describe.Format("text/xml"),))
    tif, n = process.outputs
    assert [fmt.mime_type for fmt in tif.formats] == ["image/tiff; subtype=geotiff",
                                                      "image/png"]
    assert tif.formats[0].base_type == "image/tiff"
    assert (n.kind, n.data_type) == ("literal", "integer")


def test_an_exception_report_raises_its_text_code_and_locator():
    report = (b'<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="1.0.0">'
              b'<ows:Exception exceptionCode="InvalidParameterValue" locator="width">'
              b"<ows:ExceptionText>width\n  too large</ows:ExceptionText></ows:Exception>"
              b"</ows:ExceptionReport>")
    with pytest.raises(ServiceException) as caught:
        describe.parse_descriptions(report)
    assert (caught.value.text, caught.value.code, caught.value.locator) == (
        "width too large", "InvalidParameterValue", "width")
    assert str(caught.value) == "width too large (InvalidParameterValue, input width)"


def test_an_answer_that_is_not_xml_is_a_document_error():
    with pytest.raises(DocumentError, match="not XML"):
        describe.parse_capabilities(b"<html><body>Bad gateway")


# --- execute ----------------------------------------------------------------------------

def test_the_execute_request_is_valid_wps_and_says_what_was_asked():
    """Schema-valid; literals and bbox corners exactly as given; async flags; outputs."""
    body = execute.execute_request(
        "a", [execute.LiteralValue("label", "a & <b>"),
              execute.BBoxValue("bbox", (45.55425883140662, -73.5), (45.6, -73.4), "EPSG:4326")],
        [execute.OutputRequest("tif", "image/tiff; subtype=geotiff"),
         execute.OutputRequest("n")], store=True, status=True)
    assert validate(body) == []
    root = ET.fromstring(body)
    ns = {"wps": execute.WPS, "ows": execute.OWS}
    assert root.findtext(".//wps:LiteralData", namespaces=ns) == "a & <b>"
    bbox = root.find(".//wps:BoundingBoxData", ns)
    assert bbox.get("crs") == "EPSG:4326"
    assert bbox.findtext("ows:LowerCorner", namespaces=ns) == "45.55425883140662 -73.5"
    document = root.find(".//wps:ResponseDocument", ns)
    assert (document.get("storeExecuteResponse"), document.get("status")) == ("true", "true")
    tif, n = document.findall("wps:Output", ns)
    assert (tif.get("asReference"), tif.get("mimeType")) == ("true",
                                                             "image/tiff; subtype=geotiff")
    assert n.attrib == {}


def test_a_request_without_inputs_is_valid():
    body = execute.execute_request("a", [], [execute.OutputRequest("n")], False, False)
    assert validate(body) == []


def test_status_documents_give_state_message_percent_and_location():
    accepted = execute.parse_execute_response(response(
        "<wps:ProcessAccepted>queued</wps:ProcessAccepted>", location="http://h/s.xml"))
    assert (accepted.state, accepted.message, accepted.percent, accepted.status_location) == (
        "accepted", "queued", None, "http://h/s.xml")
    started = execute.parse_execute_response(response(
        '<wps:ProcessStarted percentCompleted="42">reading</wps:ProcessStarted>'))
    assert (started.state, started.message, started.percent, started.finished) == (
        "started", "reading", 42, False)


def test_a_failed_job_gives_the_reason():
    failed = execute.parse_execute_response(response(
        '<wps:ProcessFailed><wps:ExceptionReport><ows:Exception exceptionCode="NoApplicableCode">'
        "<ows:ExceptionText>WMS timed out</ows:ExceptionText></ows:Exception>"
        "</wps:ExceptionReport></wps:ProcessFailed>"))
    assert (failed.state, failed.finished) == ("failed", True)
    assert failed.failure == "WMS timed out (NoApplicableCode)"


def test_outputs_by_reference_inline_and_literal():
    payload = bytes(range(256))
    outputs = (
        "<wps:ProcessOutputs>"
        "<wps:Output><ows:Identifier>tif</ows:Identifier><ows:Title>T</ows:Title>"
        '<wps:Reference xlink:href="http://h/o/x.tif" mimeType="image/tiff"/></wps:Output>'
        "<wps:Output><ows:Identifier>bin</ows:Identifier><ows:Title>B</ows:Title><wps:Data>"
        f'<wps:ComplexData mimeType="application/octet-stream" encoding="base64">'
        f"{base64.b64encode(payload).decode()}</wps:ComplexData></wps:Data></wps:Output>"
        "<wps:Output><ows:Identifier>txt</ows:Identifier><ows:Title>X</ows:Title><wps:Data>"
        '<wps:ComplexData mimeType="text/plain">héllo</wps:ComplexData></wps:Data></wps:Output>'
        "<wps:Output><ows:Identifier>n</ows:Identifier><ows:Title>N</ows:Title><wps:Data>"
        "<wps:LiteralData> 7 </wps:LiteralData></wps:Data></wps:Output>"
        "</wps:ProcessOutputs>")
    done = execute.parse_execute_response(response(
        "<wps:ProcessSucceeded>done</wps:ProcessSucceeded>", outputs))
    assert done.state == "succeeded"
    assert done.outputs["tif"] == execute.OutputValue("tif", href="http://h/o/x.tif",
                                                      mime_type="image/tiff")
    assert done.outputs["bin"].data == payload
    assert done.outputs["txt"].data == "héllo".encode()
    assert done.outputs["n"].literal == "7"


# --- urls -------------------------------------------------------------------------------

def test_server_lists_split_on_commas_and_spaces_without_repeats():
    assert urls.split_urls(" http://a/wps, http://b/wps,,http://a/wps\nhttp://c ") == (
        "http://a/wps", "http://b/wps", "http://c")
    assert urls.split_urls("") == ()


def test_request_urls_keep_the_servers_own_query():
    url = urls.kvp_url("http://h/cgi?map=/x.map&REQUEST=old", {"request": "GetCapabilities",
                                                              "service": "WPS"})
    assert url == "http://h/cgi?map=%2Fx.map&request=GetCapabilities&service=WPS"


def test_algorithm_names_carry_the_servers_position_from_two():
    assert [urls.algorithm_name("echo", n) for n in (1, 2, 5)] == ["echo", "echo_2", "echo_5"]


# --- tiff -------------------------------------------------------------------------------

@pytest.mark.parametrize(("bigtiff", "tiled"),
                         [("NO", False), ("NO", True), ("YES", False), ("YES", True)])
def test_gdal_metadata_is_read_from_classic_and_big_tiffs(tmp_path, bigtiff, tiled):
    """Dataset tags as rasterio wrote them; band tags left out."""
    path = tmp_path / "t.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=32, count=1,
                       dtype="float32", crs="EPSG:4326", transform=from_bounds(0, 0, 1, 1, 64, 32),
                       BIGTIFF=bigtiff, tiled=tiled, blockxsize=16, blockysize=16) as ds:
        ds.write(np.zeros((1, 32, 64), np.float32))
        ds.update_tags(METHOD="sobel_magnitude", LAYER="l" * 300)
        ds.update_tags(1, BAND_ONLY="yes")
    assert tiff.gdal_metadata(path) == {"METHOD": "sobel_magnitude", "LAYER": "l" * 300}


def test_a_tiff_without_metadata_and_a_file_that_is_no_tiff(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_bounds(0, 0, 1, 1, 4, 4)) as ds:
        ds.write(np.zeros((1, 4, 4), np.uint8))
    assert tiff.gdal_metadata(path) == {}
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    with pytest.raises(ValueError):
        tiff.gdal_metadata(tmp_path / "x.png")


# --- style ------------------------------------------------------------------------------

def brute_force_magnitude_max(family: str) -> float:
    kx = expected_kernel(f"{family}_x").ravel()
    ky = expected_kernel(f"{family}_y").ravel()
    corners = np.array(list(itertools.product((0.0, 255.0), repeat=9)))
    return float(np.sqrt((corners @ kx) ** 2 + (corners @ ky) ** 2).max())


@pytest.mark.parametrize("method", METHODS)
def test_the_plugins_m_is_the_methods_largest_response(method):
    """By hand for x/y (255 times the positive weights), by brute force for magnitudes."""
    by_hand = {"sobel": 1020.0, "prewitt": 765.0}
    family, _, axis = method.partition("_")
    expected = by_hand[family] if axis != "magnitude" else brute_force_magnitude_max(family)
    assert style.max_response(method) == pytest.approx(expected, rel=1e-12)


def items(qml: str) -> list[tuple[float, str]]:
    return [(float(i.get("value")), i.get("color")) for i in ET.fromstring(qml).iter("item")]


@pytest.mark.parametrize("method", METHODS)
def test_the_plugin_styles_as_the_service_publishes(method):
    """Same renderer, limits and ramp as wps_app.core.styles.qml_for."""
    plugin, service = ET.fromstring(style.qml_for(method)), ET.fromstring(styles.qml_for(method))
    for root in (plugin, service):
        root.find("./pipe/rasterrenderer").attrib.pop("classificationMax")
        root.find(".//colorrampshader").attrib.pop("maximumValue")
        for item in root.iter("item"):
            item.attrib.pop("value")
            item.attrib.pop("label")
    assert ET.tostring(plugin) == ET.tostring(service)
    mine, theirs = items(style.qml_for(method)), items(styles.qml_for(method))
    assert [c for _, c in mine] == [c for _, c in theirs]
    assert [v for v, _ in mine] == pytest.approx([v for v, _ in theirs], rel=1e-12)


def test_only_the_services_methods_are_styled():
    assert style.is_method("prewitt_y") and not style.is_method("laplace")
    assert not style.is_method(None) and not style.is_method("sobel_z")
