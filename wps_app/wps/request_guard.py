"""Checks on a POST body before PyWPS parses it.

PyWPS parses POST bodies with lxml with entity resolution off, but it still accepts a DTD,
reads the whole body whatever its size when no Content-Length is sent, and answers
undecodable bytes with a parser message. WPS requests never need a DTD, so any DOCTYPE or
ENTITY declaration is refused outright (no external entity is ever fetched, no entity
expanded); bodies over the configured size are refused before they are read in full;
bodies must be UTF-8. libxml2 itself refuses nesting deeper than 256 levels.
"""

from __future__ import annotations

import io
import re

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class RejectedBody(Exception):
    """The body cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read_checked_body(environ: dict, max_bytes: int) -> bytes:
    """Read the request body (at most max_bytes), check it, and put it back into environ.

    Raises RejectedBody with a message a client can act on.
    """
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise RejectedBody(
            f"the request body of {int(declared)} bytes exceeds the maximum of {max_bytes}",
            413,
        )
    stream = environ["wsgi.input"]
    if declared.strip().isdigit():
        body = stream.read(int(declared))
    else:  # chunked or undeclared: read one byte past the limit to detect excess
        body = stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise RejectedBody(f"the request body exceeds the maximum of {max_bytes} bytes", 413)
    if _DTD.search(body):
        raise RejectedBody("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedBody(f"the request body is not UTF-8 (byte {exc.start})") from exc
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body
