"""The plugin's errors: one base class, a subclass per condition. Their text is what the
user reads (QgsProcessingException carries it): plain sentences, no XML, no traceback."""

from __future__ import annotations


class WpsError(Exception):
    """A WPS server, request or document the plugin cannot use."""


class DocumentError(WpsError):
    """A server answered with something that is not the WPS 1.0.0 document expected."""


class HttpError(WpsError):
    """An HTTP request failed: no connection, a timeout, or an error status without a
    WPS exception report."""


class ServiceException(WpsError):
    """The server refused a request with an ows:ExceptionReport."""

    def __init__(self, text: str, code: str = "", locator: str = "") -> None:
        self.text, self.code, self.locator = text, code, locator
        detail = ", ".join(p for p in (code, f"input {locator}" if locator else "") if p)
        super().__init__(f"{text} ({detail})" if detail else text)


class ProcessFailed(WpsError):
    """The job ran and ended with ProcessFailed; the message is the server's reason."""


class Cancelled(WpsError):
    """The user cancelled while the job was running on the server."""
