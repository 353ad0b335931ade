"""HTTP through QGIS's network stack (QgsBlockingNetworkRequest), so that QGIS's proxy,
SSL and authentication settings apply; usable from the main thread and from the
Processing worker threads."""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import QgsBlockingNetworkRequest, QgsFeedback
from qgis.PyQt.QtCore import QByteArray, QFile, QIODevice, QUrl
from qgis.PyQt.QtNetwork import QNetworkRequest

from .config import Settings
from .errors import HttpError, WpsError


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status (0 when none) and body (a QByteArray, not copied)."""

    url: str
    status: int
    body: QByteArray
    error: str

    @property
    def content(self) -> bytes:
        return bytes(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _request(url: str, settings: Settings) -> QNetworkRequest:
    request = QNetworkRequest(QUrl(url))
    # abort when no data moved for this long (QGIS's own network timeout applies as well)
    request.setTransferTimeout(int(settings.request_timeout_s * 1000))
    request.setAttribute(QNetworkRequest.CacheLoadControlAttribute,
                         QNetworkRequest.AlwaysNetwork)
    return request


def _send(url: str, settings: Settings, body: bytes | None,
          feedback: QgsFeedback | None) -> Answer:
    blocking = QgsBlockingNetworkRequest()
    if settings.authcfg:
        blocking.setAuthCfg(settings.authcfg)
    request = _request(url, settings)
    if body is None:
        code = blocking.get(request, True, feedback)
    else:
        request.setHeader(QNetworkRequest.ContentTypeHeader, "text/xml; charset=utf-8")
        code = blocking.post(request, QByteArray(body), True, feedback)
    reply = blocking.reply()
    status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
    if code != QgsBlockingNetworkRequest.NoError and not status:
        if feedback is not None and feedback.isCanceled():
            raise HttpError(f"request to {url} cancelled")
        raise HttpError(f"no answer from {url}: {blocking.errorMessage()}")
    return Answer(url, int(status or 0), reply.content(), blocking.errorMessage())


def get(url: str, settings: Settings, feedback: QgsFeedback | None = None) -> Answer:
    """GET `url` (never from a cache). HTTP error statuses are returned, not raised, so
    that the caller can read a WPS exception report in the body.

    Raises
    ------
    HttpError
        No HTTP answer at all (refused, unreachable, timed out, cancelled).
    """
    return _send(url, settings, None, feedback)


def post_xml(url: str, body: bytes, settings: Settings,
             feedback: QgsFeedback | None = None) -> Answer:
    """POST an XML document to `url`; as get() otherwise."""
    return _send(url, settings, body, feedback)


def download(url: str, path: str, settings: Settings,
             feedback: QgsFeedback | None = None) -> None:
    """Write the body of GET `url` to `path`.

    Raises
    ------
    HttpError
        No answer, or an HTTP error status.
    """
    answer = get(url, settings, feedback)
    if not answer.ok:
        raise HttpError(f"downloading {url} failed: HTTP {answer.status}")
    write(path, answer.body)


def write(path: str, data: QByteArray | bytes) -> None:
    """Write `data` to `path` (replacing it) without copying a QByteArray to Python."""
    handle = QFile(path)
    if not handle.open(QIODevice.WriteOnly | QIODevice.Truncate):
        raise WpsError(f"cannot write {path}: {handle.errorString()}")
    try:
        written = handle.write(data if isinstance(data, QByteArray) else QByteArray(data))
        size = data.size() if isinstance(data, QByteArray) else len(data)
        if written != size:
            raise WpsError(f"cannot write {path}: {handle.errorString()}")
    finally:
        handle.close()
