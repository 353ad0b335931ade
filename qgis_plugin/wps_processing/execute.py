"""WPS 1.0.0 Execute: the request document and the ExecuteResponse (status and outputs)."""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .describe import child, children, descendants, exception_of, local, parse_document, text
from .errors import DocumentError

WPS = "http://www.opengis.net/wps/1.0.0"
OWS = "http://www.opengis.net/ows/1.1"

# status element -> state; accepted, started and paused jobs are still running
STATES = {
    "ProcessAccepted": "accepted",
    "ProcessStarted": "started",
    "ProcessPaused": "paused",
    "ProcessSucceeded": "succeeded",
    "ProcessFailed": "failed",
}


@dataclass(frozen=True)
class LiteralValue:
    """A literal input value, already written as the server reads it ('true', '45.5')."""

    identifier: str
    value: str


@dataclass(frozen=True)
class BBoxValue:
    """A bounding box input: corners in the axis order of `crs`."""

    identifier: str
    lower: tuple[float, float]
    upper: tuple[float, float]
    crs: str


@dataclass(frozen=True)
class OutputRequest:
    """An output asked for: complex outputs by reference in `mime_type`, literal and
    bbox outputs (`mime_type` None) in the document."""

    identifier: str
    mime_type: str | None = None
    as_reference: bool = True


@dataclass(frozen=True)
class OutputValue:
    """An output of a finished job: a reference, inline data, or a literal."""

    identifier: str
    href: str | None = None
    mime_type: str | None = None
    data: bytes | None = None
    literal: str | None = None


@dataclass(frozen=True)
class Status:
    """An ExecuteResponse: the job's state, message and percentage, where to poll it, and
    (when it succeeded) its outputs or (when it failed) the reason."""

    state: str
    message: str = ""
    percent: int | None = None
    status_location: str | None = None
    failure: str | None = None
    outputs: dict[str, OutputValue] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _number(value: float) -> str:
    return repr(float(value))


def execute_request(
    identifier: str,
    inputs: list[LiteralValue | BBoxValue],
    outputs: list[OutputRequest],
    store: bool,
    status: bool,
) -> bytes:
    """The Execute document (UTF-8 XML) for `identifier`.

    With `store` and `status` the server answers at once and updates the status document
    it names in statusLocation (WPS 1.0.0 asynchronous execution).
    """
    ET.register_namespace("wps", WPS)
    ET.register_namespace("ows", OWS)
    root = ET.Element(_q(WPS, "Execute"), {"service": "WPS", "version": "1.0.0"})
    ET.SubElement(root, _q(OWS, "Identifier")).text = identifier
    data_inputs = ET.SubElement(root, _q(WPS, "DataInputs")) if inputs else None
    for item in inputs:
        element = ET.SubElement(data_inputs, _q(WPS, "Input"))
        ET.SubElement(element, _q(OWS, "Identifier")).text = item.identifier
        data = ET.SubElement(element, _q(WPS, "Data"))
        if isinstance(item, BBoxValue):
            bbox = ET.SubElement(data, _q(WPS, "BoundingBoxData"),
                                 {"crs": item.crs, "dimensions": "2"})
            ET.SubElement(bbox, _q(OWS, "LowerCorner")).text = " ".join(
                _number(v) for v in item.lower)
            ET.SubElement(bbox, _q(OWS, "UpperCorner")).text = " ".join(
                _number(v) for v in item.upper)
        else:
            ET.SubElement(data, _q(WPS, "LiteralData")).text = item.value
    form = ET.SubElement(root, _q(WPS, "ResponseForm"))
    document = ET.SubElement(form, _q(WPS, "ResponseDocument"), {
        "storeExecuteResponse": str(store).lower(), "status": str(status).lower(),
    })
    for out in outputs:
        attributes = {}
        if out.mime_type is not None:
            attributes = {"asReference": str(out.as_reference).lower(),
                          "mimeType": out.mime_type}
        element = ET.SubElement(document, _q(WPS, "Output"), attributes)
        ET.SubElement(element, _q(OWS, "Identifier")).text = out.identifier
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def parse_execute_response(content: bytes) -> Status:
    """The Status of an ExecuteResponse (the Execute answer or a status document).

    Raises
    ------
    ServiceException
        The answer is an ows:ExceptionReport (the request was refused).
    DocumentError
        The answer is not an ExecuteResponse.
    """
    root = parse_document(content)
    if local(root.tag) != "ExecuteResponse":
        raise DocumentError(f"expected a WPS ExecuteResponse, got {local(root.tag)}")
    status_node = child(root, "Status")
    state_node = next((n for n in status_node if local(n.tag) in STATES), None) \
        if status_node is not None else None
    if state_node is None:
        raise DocumentError("the ExecuteResponse has no Status")
    state = STATES[local(state_node.tag)]
    percent = state_node.get("percentCompleted")
    failure = None
    if state == "failed":
        failure = str(exception_of(state_node)) if next(
            descendants(state_node, "Exception"), None) is not None else \
            " ".join((state_node.text or "").split()) or "the process failed without a reason"
    return Status(
        state=state,
        message=" ".join((state_node.text or "").split()) if state != "failed" else "",
        percent=int(float(percent)) if percent not in (None, "") else None,
        status_location=root.get("statusLocation") or None,
        failure=failure,
        outputs=_outputs(child(root, "ProcessOutputs")),
    )


def _outputs(node: ET.Element | None) -> dict[str, OutputValue]:
    if node is None:
        return {}
    values = {}
    for output in children(node, "Output"):
        identifier = text(output, "Identifier")
        reference = child(output, "Reference")
        data = child(child(output, "Data"), "LiteralData")
        if reference is not None:
            href = next((v for k, v in reference.attrib.items() if local(k) == "href"), None)
            values[identifier] = OutputValue(identifier, href=href,
                                             mime_type=reference.get("mimeType"))
        elif data is not None:
            values[identifier] = OutputValue(identifier, literal=(data.text or "").strip())
        else:
            values[identifier] = _inline(identifier, child(output, "Data"))
    return values


def _inline(identifier: str, data: ET.Element | None) -> OutputValue:
    """Complex data or a bounding box embedded in the response."""
    complex_data = child(data, "ComplexData")
    if complex_data is not None:
        mime = complex_data.get("mimeType")
        if (complex_data.get("encoding") or "").lower() == "base64":
            try:
                raw = base64.b64decode("".join((complex_data.text or "").split()))
            except binascii.Error as exc:
                raise DocumentError(f"output {identifier} is not valid base64") from exc
        elif len(complex_data):
            raw = b"".join(ET.tostring(e, encoding="utf-8") for e in complex_data)
        else:
            raw = (complex_data.text or "").encode("utf-8")
        return OutputValue(identifier, mime_type=mime, data=raw)
    bbox = child(data, "BoundingBoxData")
    if bbox is not None:
        corners = f"{text(bbox, 'LowerCorner')} {text(bbox, 'UpperCorner')}".split()
        crs = bbox.get("crs")
        return OutputValue(identifier, literal=",".join(corners) + (f" [{crs}]" if crs else ""))
    return OutputValue(identifier)
