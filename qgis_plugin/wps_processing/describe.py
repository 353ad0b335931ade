"""WPS 1.0.0 GetCapabilities and DescribeProcess documents as plain values.

Elements are matched by local name: the schema leaves ProcessDescription, Input, LiteralData
and their kin unqualified while ows:Identifier and ows:Title are qualified, and servers
differ in how they write them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import DocumentError, ServiceException

INTEGER_TYPES = frozenset({
    "integer", "int", "long", "short", "byte", "nonnegativeinteger", "positiveinteger",
    "nonpositiveinteger", "negativeinteger", "unsignedint", "unsignedlong", "unsignedshort",
    "unsignedbyte",
})
FLOAT_TYPES = frozenset({"float", "double", "decimal"})


@dataclass(frozen=True)
class Literal:
    """A LiteralData domain: type (integer, float, boolean, string or the name given),
    allowed values, allowed ranges (None for an open end) and the default, as text."""

    data_type: str = "string"
    values: tuple[str, ...] = ()
    ranges: tuple[tuple[float | None, float | None], ...] = ()
    default: str | None = None


@dataclass(frozen=True)
class Format:
    """A ComplexData format."""

    mime_type: str
    encoding: str = ""
    schema: str = ""

    @property
    def base_type(self) -> str:
        """The MIME type without parameters, lower case: 'image/tiff' for GeoTIFF."""
        return self.mime_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Input:
    """A process input: kind is literal, bbox or complex."""

    identifier: str
    title: str
    abstract: str
    kind: str
    min_occurs: int = 1
    max_occurs: int = 1
    literal: Literal | None = None
    crss: tuple[str, ...] = ()  # bbox: the default CRS first
    formats: tuple[Format, ...] = ()  # complex: the default format first

    @property
    def optional(self) -> bool:
        return self.min_occurs == 0


@dataclass(frozen=True)
class Output:
    """A process output: kind is literal, bbox or complex."""

    identifier: str
    title: str
    abstract: str
    kind: str
    formats: tuple[Format, ...] = ()
    data_type: str = "string"


@dataclass(frozen=True)
class Process:
    """A ProcessDescription."""

    identifier: str
    title: str
    abstract: str
    version: str
    store_supported: bool
    status_supported: bool
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class Capabilities:
    """What the plugin needs of a Capabilities document."""

    title: str
    abstract: str
    process_ids: tuple[str, ...]


def local(tag: str) -> str:
    """'{namespace}name' -> 'name'."""
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Direct children with local name `name`."""
    return (child for child in element if local(child.tag) == name)


def child(element: ET.Element | None, name: str) -> ET.Element | None:
    """The first direct child with local name `name`, or None."""
    if element is None:
        return None
    return next(children(element, name), None)


def text(element: ET.Element | None, name: str, default: str = "") -> str:
    """The stripped text of the first child called `name`."""
    found = child(element, name)
    return (found.text or "").strip() if found is not None else default


def descendants(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Every descendant with local name `name`, in document order."""
    return (node for node in element.iter() if local(node.tag) == name)


def parse_document(content: bytes) -> ET.Element:
    """The root element of a WPS answer; an ows:ExceptionReport raises ServiceException.

    Raises
    ------
    DocumentError
        The content is not XML.
    ServiceException
        The content is an exception report.
    """
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        start = content[:60].decode("utf-8", "replace").strip()
        raise DocumentError(f"the server's answer is not XML (it starts with {start!r})") \
            from exc
    if local(root.tag) == "ExceptionReport":
        raise exception_of(root)
    return root


def exception_of(report: ET.Element) -> ServiceException:
    """The first exception of an ows:ExceptionReport as a ServiceException."""
    exception = next(descendants(report, "Exception"), None)
    if exception is None:
        return ServiceException("the server reported an error without details")
    texts = [" ".join((node.text or "").split())
             for node in descendants(exception, "ExceptionText")]
    return ServiceException(
        "; ".join(t for t in texts if t) or "the server reported an error without text",
        exception.get("exceptionCode", ""), exception.get("locator", ""),
    )


def parse_capabilities(content: bytes) -> Capabilities:
    """Title, abstract and process identifiers of a WPS 1.0.0 Capabilities document."""
    root = parse_document(content)
    if local(root.tag) != "Capabilities":
        raise DocumentError(f"expected WPS Capabilities, got {local(root.tag)}")
    identification = child(root, "ServiceIdentification")
    offerings = child(root, "ProcessOfferings")
    ids = tuple(text(p, "Identifier") for p in children(offerings, "Process")) \
        if offerings is not None else ()
    return Capabilities(text(identification, "Title"), text(identification, "Abstract"),
                        tuple(i for i in ids if i))


def parse_descriptions(content: bytes) -> list[Process]:
    """The processes of a WPS 1.0.0 ProcessDescriptions document."""
    root = parse_document(content)
    if local(root.tag) != "ProcessDescriptions":
        raise DocumentError(f"expected WPS ProcessDescriptions, got {local(root.tag)}")
    return [_process(node) for node in children(root, "ProcessDescription")]


def _process(node: ET.Element) -> Process:
    version = next((v for k, v in node.attrib.items() if local(k) == "processVersion"), "")
    inputs = child(node, "DataInputs")
    outputs = child(node, "ProcessOutputs")
    return Process(
        identifier=text(node, "Identifier"),
        title=text(node, "Title"),
        abstract=text(node, "Abstract"),
        version=version,
        store_supported=_true(node.get("storeSupported")),
        status_supported=_true(node.get("statusSupported")),
        inputs=tuple(_input(i) for i in children(inputs, "Input")) if inputs is not None
        else (),
        outputs=tuple(_output(o) for o in children(outputs, "Output")) if outputs is not None
        else (),
    )


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def _occurs(value: str | None, default: int) -> int:
    if value is None:
        return default
    if value.strip().lower() == "unbounded":
        return 1_000_000
    try:
        return int(value)
    except ValueError:
        return default


def _input(node: ET.Element) -> Input:
    common = {
        "identifier": text(node, "Identifier"),
        "title": text(node, "Title") or text(node, "Identifier"),
        "abstract": text(node, "Abstract"),
        "min_occurs": _occurs(node.get("minOccurs"), 1),
        "max_occurs": _occurs(node.get("maxOccurs"), 1),
    }
    literal = child(node, "LiteralData")
    if literal is not None:
        return Input(kind="literal", literal=_literal(literal), **common)
    bbox = child(node, "BoundingBoxData")
    if bbox is not None:
        return Input(kind="bbox", crss=_crss(bbox), **common)
    complex_data = child(node, "ComplexData")
    return Input(kind="complex", formats=_formats(complex_data), **common)


def _output(node: ET.Element) -> Output:
    identifier = text(node, "Identifier")
    common = {"identifier": identifier, "title": text(node, "Title") or identifier,
              "abstract": text(node, "Abstract")}
    literal = child(node, "LiteralOutput")
    if literal is not None:
        return Output(kind="literal", data_type=data_type(child(literal, "DataType")), **common)
    bbox = child(node, "BoundingBoxOutput")
    if bbox is not None:
        return Output(kind="bbox", **common)
    return Output(kind="complex", formats=_formats(child(node, "ComplexOutput")), **common)


def data_type(node: ET.Element | None) -> str:
    """integer, float, boolean, string, or the (lower-case) name the server gives.

    The type is read from the text ('integer', 'xs:double') or, when empty, from the
    reference URL ('http://www.w3.org/TR/xmlschema-2/#boolean').
    """
    if node is None:
        return "string"
    reference = next((v for k, v in node.attrib.items() if local(k) == "reference"), "")
    name = ((node.text or "").strip() or reference).rsplit("#", 1)[-1]
    name = name.rsplit(":", 1)[-1].strip().lower()
    if name in INTEGER_TYPES:
        return "integer"
    if name in FLOAT_TYPES:
        return "float"
    return name or "string"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _literal(node: ET.Element) -> Literal:
    values: list[str] = []
    ranges: list[tuple[float | None, float | None]] = []
    allowed = child(node, "AllowedValues")
    if allowed is not None:
        for item in allowed:
            if local(item.tag) == "Value":
                values.append((item.text or "").strip())
            elif local(item.tag) == "Range":
                ranges.append((_number(text(item, "MinimumValue", "x")),
                               _number(text(item, "MaximumValue", "x"))))
    default = child(node, "DefaultValue")
    return Literal(
        data_type=data_type(child(node, "DataType")),
        values=tuple(values),
        ranges=tuple(ranges),
        default=(default.text or "").strip() if default is not None else None,
    )


def _sections(node: ET.Element) -> list[ET.Element]:
    """The Default then the Supported child of a BoundingBoxData or Complex* element."""
    found = (child(node, "Default"), child(node, "Supported"))
    return [section for section in found if section is not None]


def _crss(node: ET.Element) -> tuple[str, ...]:
    crss: list[str] = []
    for section in _sections(node):
        for crs in descendants(section, "CRS"):
            value = (crs.text or "").strip()
            if value and value not in crss:
                crss.append(value)
    return tuple(crss)


def _formats(node: ET.Element | None) -> tuple[Format, ...]:
    if node is None:
        return ()
    formats: list[Format] = []
    for section in _sections(node):
        for fmt in descendants(section, "Format"):
            found = Format(text(fmt, "MimeType"), text(fmt, "Encoding"), text(fmt, "Schema"))
            if found.mime_type and found not in formats:
                formats.append(found)
    return tuple(formats)
