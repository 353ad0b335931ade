"""The one place where core errors become WPS 1.0.0 exceptions.

Every exception the WPS binding answers with carries one of the exceptionCodes WPS 1.0.0
defines (OGC 05-007r7, table 62) and an explicit HTTP status. PyWPS's exception classes
report their class name as the exceptionCode, so only PyWPS's own classes are used, and
the two subclasses here (Retry-After for ServerBusy, and for NoApplicableCode when a WMS
source is down) keep the standard names.
"""

from __future__ import annotations

from pywps.exceptions import (
    InvalidParameterValue,
    MissingParameterValue,
    NoApplicableCode,
    NotEnoughStorage,
    ServerBusy,
)

from wps_app.core.errors import (
    Busy,
    EdgeServiceError,
    InvalidInput,
    MissingInput,
    StorageFull,
    TimeLimitExceeded,
    WmsError,
    WmsTimeout,
    WmsUnavailable,
)

WPS_EXCEPTION_CODES = frozenset({
    "MissingParameterValue", "InvalidParameterValue", "NoApplicableCode", "NotEnoughStorage",
    "ServerBusy", "FileSizeExceeded", "VersionNegotiationFailed", "OperationNotSupported",
})

# Domain fields whose WPS input has another name (the tutorial called the layer `wms`).
_INPUT_OF_FIELD = {"layer": "wms"}


def input_name(field: str) -> str:
    """The WPS input identifier of a core error's domain field."""
    return _INPUT_OF_FIELD.get(field, field)


class ServerBusyRetryLater(ServerBusy):
    """ServerBusy as HTTP 503 with Retry-After (PyWPS answers 400 with no hint)."""

    def __init__(self, description: str, locator: str = "", retry_after_s: int = 30) -> None:
        super().__init__(description, locator, code=503)
        self.retry_after_s = retry_after_s

    @property
    def name(self) -> str:
        return "ServerBusy"

    def get_response(self, environ=None):
        response = super().get_response(environ)
        response.headers["Retry-After"] = str(self.retry_after_s)
        return response


class NoApplicableCodeRetryLater(NoApplicableCode):
    """NoApplicableCode with Retry-After: a WMS source known to be down."""

    def __init__(self, description: str, locator: str = "", code: int = 503,
                 retry_after_s: int = 30) -> None:
        super().__init__(description, locator, code=code)
        self.retry_after_s = retry_after_s

    @property
    def name(self) -> str:
        return "NoApplicableCode"

    def get_response(self, environ=None):
        response = super().get_response(environ)
        response.headers["Retry-After"] = str(self.retry_after_s)
        return response


def from_core(error: EdgeServiceError) -> NoApplicableCode:
    """The WPS exception (exceptionCode, locator, HTTP status) for a core error.

    Bad input is the client's (400); a full output store is NotEnoughStorage (507); no
    room for a job is ServerBusy (503 with Retry-After); an upstream WMS failure is the
    server's problem: 503 when the WMS is unreachable, 504 when it timed out, 502 when it
    answered with something unusable; a sync request over its time limit is 503.
    """
    message = str(error)
    if isinstance(error, MissingInput):
        return MissingParameterValue(message, input_name(error.field))
    if isinstance(error, InvalidInput):
        return InvalidParameterValue(message, input_name(error.field))
    if isinstance(error, StorageFull):
        return NotEnoughStorage(message, "", code=507)
    if isinstance(error, Busy):
        return ServerBusyRetryLater(message, "", error.retry_after_s)
    if isinstance(error, TimeLimitExceeded):
        return NoApplicableCode(message, "", code=503)
    if isinstance(error, WmsUnavailable):
        return NoApplicableCodeRetryLater(message, error.source or "wms", code=503)
    if isinstance(error, WmsError):
        status = 504 if isinstance(error, WmsTimeout) else 502
        return NoApplicableCode(message, error.source or "wms", code=status)
    return NoApplicableCode(message, "", code=500)  # OutputError and anything unforeseen
