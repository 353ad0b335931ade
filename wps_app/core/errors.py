"""Errors of the raster core; processes translate them into OGC exceptions once."""

from __future__ import annotations


class EdgeServiceError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidInput(EdgeServiceError):
    """A request value is malformed or out of range; `locator` names the input."""

    def __init__(self, message: str, locator: str) -> None:
        super().__init__(message)
        self.locator = locator


class WmsError(EdgeServiceError):
    """The WMS could not deliver the requested image."""


class WmsUnavailable(WmsError):
    """The WMS did not answer (connection refused, DNS, reset)."""


class WmsTimeout(WmsError):
    """The WMS did not answer within the configured timeout."""


class WmsServiceException(WmsError):
    """The WMS answered with an OGC ServiceException."""


class WmsBadResponse(WmsError):
    """The WMS answered, but not with a usable image (HTTP error, truncated, wrong size)."""


class OutputError(EdgeServiceError):
    """An output could not be written or published."""


class MissingInput(InvalidInput):
    """A required request value is absent; `locator` names the input."""
