"""Checks on a POST body before PyWPS parses it.

POST /wps takes WPS 1.0.0 XML requests only (key-value pairs come by GET; OGC API –
Processes is the JSON binding). PyWPS would parse a DTD, read a body of any size when no
Content-Length is sent, take any Content-Type containing "json" as an undocumented JSON
Execute that skips our input checks, and answer a foreign root element with HTTP 500.
Here, before PyWPS sees anything:

- bodies over the configured size are refused before they are read in full (413);
- a Content-Type naming JSON is refused;
- the body must be UTF-8, and may only declare UTF-8: a declared UTF-7/16/32 document
  could smuggle a DOCTYPE past any byte scan;
- it is parsed with entity resolution, DTD loading and network access off, and refused
  when it has a DOCTYPE or ENTITY declaration, is not well-formed (a plain message, not
  the parser's internals), or its root is not a WPS 1.0.0 Execute, GetCapabilities or
  DescribeProcess.
"""

from __future__ import annotations

import io
import re

from lxml import etree

WPS_NS = "http://www.opengis.net/wps/1.0.0"
OPERATIONS = ("Execute", "GetCapabilities", "DescribeProcess")
ACCEPTED = ("WPS 1.0.0 requests are key-value pairs by GET or XML by POST "
            "(Execute, GetCapabilities, DescribeProcess)")

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                          dtd_validation=False, huge_tree=False, remove_comments=False)


class RejectedBody(Exception):
    """The body cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _read(environ: dict, max_bytes: int) -> bytes:
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise RejectedBody(
            f"the request body of {int(declared)} bytes exceeds the maximum of {max_bytes}", 413)
    stream = environ["wsgi.input"]
    # chunked or undeclared: read one byte past the limit to detect excess
    body = stream.read(int(declared)) if declared.isdigit() else stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise RejectedBody(f"the request body exceeds the maximum of {max_bytes} bytes", 413)
    return body


def check_body(body: bytes, content_type: str = "") -> None:
    """Refuse anything but a UTF-8, DTD-free WPS 1.0.0 XML request; raises RejectedBody."""
    if "json" in content_type.lower():
        raise RejectedBody(f"JSON is not accepted here: {ACCEPTED}; JSON clients use OGC "
                           "API - Processes")
    if _DTD.search(body):
        raise RejectedBody("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedBody(f"the request body is not UTF-8 (byte {exc.start})") from exc
    declared = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared and declared.group(1).decode("ascii", "replace").lower() not in (
            "utf-8", "utf8"):
        raise RejectedBody("the request body must be UTF-8 and declare no other encoding")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None) or getattr(exc, "position", (None,))[0]
        where = f" (line {line})" if line else ""
        raise RejectedBody(f"the request body is not well-formed XML{where}: {ACCEPTED}") \
            from None
    if root.getroottree().docinfo.doctype:
        raise RejectedBody("XML with a DOCTYPE declaration is not accepted")
    name = etree.QName(root)
    if name.namespace != WPS_NS or name.localname not in OPERATIONS:
        raise RejectedBody(f"unexpected root element {name.localname[:40]!r}: {ACCEPTED}")


def read_checked_body(environ: dict, max_bytes: int) -> bytes:
    """Read the request body (at most max_bytes), check it, and put it back into environ.

    Raises RejectedBody with a message a client can act on.
    """
    body = _read(environ, max_bytes)
    check_body(body, environ.get("CONTENT_TYPE", ""))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body
