"""Errors of the raster core: domain conditions carrying data, no protocol codes.

Each binding translates them into its protocol's exceptions in exactly one place
(wps_app/wps/exceptions.py for WPS 1.0.0). A field names the domain input at fault
(`layer`, `bbox`, `width`, ...); an upstream error carries the HTTP status the WMS
answered with as an attribute, never only inside its message.
"""

from __future__ import annotations


class EdgeServiceError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidInput(EdgeServiceError):
    """A request value is malformed or out of range; `field` names the domain input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class MissingInput(InvalidInput):
    """A required request value is absent; `field` names the domain input."""


class UpstreamError(EdgeServiceError):
    """An upstream server could not deliver what was asked.

    `http_status` is the status it answered with (None when it did not answer at all or
    answered 200 with something unusable); `source` the configured source's name when known.
    The message is safe to show a client (no URL, no upstream free text, which may echo a
    key); `detail` keeps the upstream's own words, redacted, for the operators' log.
    """

    def __init__(self, message: str, *, http_status: int | None = None,
                 source: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.source = source
        self.detail = detail


class WmsError(UpstreamError):
    """The WMS could not deliver the requested image or its capabilities."""


class WmsUnavailable(WmsError):
    """The WMS did not answer (connection refused, DNS, reset)."""


class WmsTimeout(WmsError):
    """The WMS did not answer within the configured timeout."""


class WmsServiceException(WmsError):
    """The WMS answered with an OGC ServiceException; `code` is its exception code."""

    def __init__(self, message: str, *, code: str | None = None,
                 source: str | None = None, detail: str = "") -> None:
        super().__init__(message, source=source, detail=detail)
        self.code = code


class WmsBadResponse(WmsError):
    """The WMS answered, but not with a usable image (HTTP error, truncated, wrong size)."""


class OutputError(EdgeServiceError):
    """An output could not be written or published."""


class StorageFull(OutputError):
    """The published outputs reached their configured cap; nothing was written."""


class Busy(EdgeServiceError):
    """The service has no room for this job now; try again after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int = 30) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TimeLimitExceeded(EdgeServiceError):
    """A request ran past the time it may take; nothing it wrote is kept."""


class LayersNotKnownYet(Busy):
    """No layer list of the WMS was ever read (it has not answered since start-up): a
    layer cannot be checked yet."""
