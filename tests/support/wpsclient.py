"""Raw HTTP helpers for the tests: key-value GETs, Execute XML bodies, exception parsing."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import requests
from lxml import etree

NS = {
    "wps": "http://www.opengis.net/wps/1.0.0",
    "ows": "http://www.opengis.net/ows/1.1",
    "xlink": "http://www.w3.org/1999/xlink",
}


def get(url: str, timeout: float = 60, **params) -> requests.Response:
    return requests.get(url, params={"service": "WPS", "version": "1.0.0", **params},
                        timeout=timeout)


def literal(identifier: str, value) -> str:
    return (f"<wps:Input><ows:Identifier>{escape(identifier)}</ows:Identifier><wps:Data>"
            f"<wps:LiteralData>{escape(str(value))}</wps:LiteralData></wps:Data></wps:Input>")


def bbox_input(lower: str, upper: str, crs: str | None = "EPSG:4326",
               identifier: str = "bbox") -> str:
    crs_attr = f" crs={quoteattr(crs)}" if crs else ""
    return (f"<wps:Input><ows:Identifier>{identifier}</ows:Identifier><wps:Data>"
            f"<wps:BoundingBoxData{crs_attr} dimensions=\"2\">"
            f"<ows:LowerCorner>{lower}</ows:LowerCorner><ows:UpperCorner>{upper}</ows:UpperCorner>"
            f"</wps:BoundingBoxData></wps:Data></wps:Input>")


def execute_body(inputs: list[str], response_form: str, store: bool = False,
                 status: bool = False, identifier: str = "get_raster_process") -> str:
    """An Execute request; store/status go on the ResponseDocument, as WPS 1.0.0 says."""
    if store or status:
        response_form = response_form.replace(
            "<wps:ResponseDocument",
            f'<wps:ResponseDocument storeExecuteResponse="{str(store).lower()}" '
            f'status="{str(status).lower()}"',
            1,
        )
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'service="WPS" version="1.0.0"><ows:Identifier>{identifier}</ows:Identifier>'
        f'<wps:DataInputs>{"".join(inputs)}</wps:DataInputs>'
        f"<wps:ResponseForm>{response_form}</wps:ResponseForm></wps:Execute>"
    )


def raw_output(identifier: str = "image", mime_type: str = "image/png") -> str:
    return (f'<wps:RawDataOutput mimeType="{mime_type}"><ows:Identifier>{identifier}'
            "</ows:Identifier></wps:RawDataOutput>")


def document_output(*outputs: tuple[str, str]) -> str:
    items = "".join(
        f'<wps:Output asReference="true" mimeType="{mime}"><ows:Identifier>{ident}'
        "</ows:Identifier></wps:Output>"
        for ident, mime in outputs
    )
    return f"<wps:ResponseDocument>{items}</wps:ResponseDocument>"


def post(url: str, body: str, timeout: float = 120) -> requests.Response:
    return requests.post(url, data=body.encode("utf-8"),
                         headers={"Content-Type": "text/xml"}, timeout=timeout)


def exception_of(response: requests.Response) -> tuple[str, str, str]:
    """(exceptionCode, locator, text) of an ows:ExceptionReport body."""
    doc = etree.fromstring(response.content)
    exc = doc.find(".//ows:Exception", NS)
    assert exc is not None, response.text[:500]
    return (exc.get("exceptionCode"), exc.get("locator") or "",
            " ".join(exc.findtext("ows:ExceptionText", "", NS).split()))


def references(response: requests.Response) -> dict[str, str]:
    """Output identifier -> href of an ExecuteResponse."""
    doc = etree.fromstring(response.content)
    refs = {}
    for output in doc.iterfind(".//wps:ProcessOutputs/wps:Output", NS):
        ref = output.find("wps:Reference", NS)
        if ref is not None:
            refs[output.findtext("ows:Identifier", "", NS)] = ref.get("href")
    return refs


def failure_of(response: requests.Response) -> str:
    """The ExceptionText of a ProcessFailed status."""
    doc = etree.fromstring(response.content)
    failed = doc.find(".//wps:Status/wps:ProcessFailed", NS)
    assert failed is not None, response.text[:800]
    return " ".join(failed.findtext(".//ows:ExceptionText", "", NS).split())
