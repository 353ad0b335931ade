"""Log lines a client cannot forge, and refusals that cost one line.

Request paths and identifiers arrive percent-decoded: '%0a' in a URL would start a new,
fake log line. Every message is written with control characters escaped (a newline
becomes the two characters '\\n'), whoever logged it, PyWPS included; tracebacks, which
come from the service itself, keep their lines.

Configured URLs may carry credentials: every message is passed through core.redact with
hosts kept.

Every line names the request it is about (`request_id=<id>`, wps_app.request_ids): lines
written while a request is served, and those of the async job it started, in the job's own
process too; `-` when there is none (start-up, background probes). The id is a checked
token (never raw client text).

PyWPS logs every exception it creates with LOGGER.exception (an ERROR and a traceback, ~880
bytes for a bad request). A client's mistake is not the server's error: records of 4xx
exceptions are dropped, and the request line (INFO) says what was answered.
"""

from __future__ import annotations

import logging
import re

from wps_app import request_ids
from wps_app.core.redact import redact

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CLIENT_EXCEPTION = re.compile(r"^Exception: code: 4\d\d,")
FORMAT = "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s: %(message)s"


def escape(text: str) -> str:
    """`text` with every control character written as a Python escape."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    """A Formatter that escapes control characters in the message itself, and masks
    credentials in any URL or query string a message names (GDAL's errors, relayed by
    rasterio, name the WMS URL it fetched, key included) and every configured secret
    (`secrets`: the WMS headers' values): hosts stay, for operators."""

    def __init__(self, fmt: str = FORMAT, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape(redact(record.message, self.secrets, keep_hosts=True))
        # set here, by the thread that logs (the context variable is per thread)
        record.request_id = request_ids.current() or request_ids.UNKNOWN
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        # a traceback's last line repeats the exception's text (a URL, a header value)
        return redact(super().formatException(ei), self.secrets, keep_hosts=True)


class ClientErrorFilter(logging.Filter):
    """Drops PyWPS's ERROR + traceback records for exceptions answered with HTTP 4xx."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CLIENT_EXCEPTION.match(str(record.msg))


def configure(level: int = logging.INFO, secrets: tuple[str, ...] = ()) -> None:
    """Root handler with the escaping formatter masking `secrets` (gunicorn sends stderr to
    its error log); PyWPS's logger without client-error records. Idempotent."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=FORMAT)
    for handler in root.handlers:
        if not isinstance(handler.formatter, EscapingFormatter):
            handler.setFormatter(EscapingFormatter(FORMAT, secrets))
        else:
            handler.formatter.secrets = secrets
    pywps_logger = logging.getLogger("PYWPS")
    if not any(isinstance(f, ClientErrorFilter) for f in pywps_logger.filters):
        pywps_logger.addFilter(ClientErrorFilter())
