"""Talking to a WPS 1.0.0 server: its description, and running a job to its end with
progress (asynchronously when the process supports it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from qgis.core import QgsFeedback, QgsProcessingFeedback
from qgis.PyQt.QtCore import QEventLoop, QTimer

from . import describe, network
from .config import Settings
from .errors import Cancelled, DocumentError, HttpError, ProcessFailed, WpsError
from .execute import Status, parse_execute_response
from .urls import kvp_url

DESCRIBE_BATCH = 25  # identifiers per DescribeProcess request
FIRST_POLL_S = 0.25  # the interval then grows by half up to the poll-interval setting
MAX_POLL_FAILURES = 3  # consecutive failed status requests before giving up


@dataclass(frozen=True)
class Server:
    """A WPS server as the provider lists it: URL, 1-based position in the list, title."""

    url: str
    position: int
    title: str
    processes: tuple[describe.Process, ...]


def _document(answer: network.Answer, what: str) -> bytes:
    """The body of an answer expected to hold a WPS document (an exception report
    included); an HTTP error without XML raises HttpError."""
    content = answer.content
    if not answer.ok and not content.lstrip().startswith(b"<"):
        raise HttpError(f"{what} failed: HTTP {answer.status} from {answer.url}")
    return content


def describe_server(url: str, position: int, settings: Settings,
                    feedback: QgsFeedback | None = None) -> Server:
    """GetCapabilities, then DescribeProcess for every process offered.

    Raises
    ------
    WpsError
        The server is unreachable or does not answer as a WPS 1.0.0 server.
    """
    capabilities = describe.parse_capabilities(_document(network.get(kvp_url(url, {
        "service": "WPS", "request": "GetCapabilities", "AcceptVersions": "1.0.0",
    }), settings, feedback), "GetCapabilities"))
    processes: list[describe.Process] = []
    ids = capabilities.process_ids
    for start in range(0, len(ids), DESCRIBE_BATCH):
        answer = network.get(kvp_url(url, {
            "service": "WPS", "version": "1.0.0", "request": "DescribeProcess",
            "identifier": ",".join(ids[start:start + DESCRIBE_BATCH]),
        }), settings, feedback)
        processes += describe.parse_descriptions(_document(answer, "DescribeProcess"))
    return Server(url, position, capabilities.title or urlsplit(url).netloc, tuple(processes))


def wait(seconds: float, feedback: QgsFeedback) -> bool:
    """Wait `seconds` in an event loop; return False at once when the user cancels."""
    if feedback.isCanceled():
        return False
    loop = QEventLoop()
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    feedback.canceled.connect(loop.quit)
    try:
        timer.start(int(seconds * 1000))
        if not feedback.isCanceled():
            loop.exec_()
    finally:
        timer.stop()
        feedback.canceled.disconnect(loop.quit)
    return not feedback.isCanceled()


class _Reporter:
    """Passes a job's status to the feedback: percentCompleted as progress, each new
    status message as an info line."""

    def __init__(self, feedback: QgsFeedback) -> None:
        self.feedback = feedback
        self.message = None

    def __call__(self, status: Status) -> None:
        if status.message and status.message != self.message:
            self.message = status.message
            self.feedback.pushInfo(status.message)
        if status.percent is not None:
            self.feedback.setProgress(max(0, min(100, status.percent)))


def _final(status: Status) -> Status:
    if status.state == "failed":
        raise ProcessFailed(f"the process failed on the server: {status.failure}")
    return status


def run_job(url: str, body: bytes, settings: Settings,
            feedback: QgsProcessingFeedback | None = None) -> Status:
    """POST the Execute document `body` and, when the server runs it asynchronously,
    poll its statusLocation until it ends.

    Returns the final (succeeded) status with the outputs.

    Raises
    ------
    ServiceException
        The server refused the request.
    ProcessFailed
        The job ended with ProcessFailed.
    Cancelled
        The user cancelled; the job may go on on the server.
    WpsError
        Anything else: no answer, a document that is not WPS, the job timeout.
    """
    feedback = feedback or QgsProcessingFeedback()
    report = _Reporter(feedback)
    try:
        answer = network.post_xml(url, body, settings, feedback)
    except HttpError:
        if feedback.isCanceled():
            raise Cancelled("Cancelled while the request was sent; the server may have "
                            "accepted the job and may run it.") from None
        raise
    status = parse_execute_response(_document(answer, "Execute"))
    report(status)
    if status.finished:
        return _final(status)
    location = status.status_location
    if not location:
        raise DocumentError("the server accepted the job but gave no statusLocation to poll")
    feedback.pushInfo(f"Job accepted; status document: {location}")
    deadline = time.monotonic() + settings.job_timeout_s
    interval, failures = FIRST_POLL_S, 0
    while True:
        if not wait(interval, feedback):
            raise _cancelled(location)
        if time.monotonic() > deadline:
            raise WpsError(f"no result after {settings.job_timeout_s:g} s (the job timeout "
                           f"setting); the job may go on on the server: {location}")
        try:
            status = parse_execute_response(_document(
                network.get(location, settings, feedback), "the status request"))
        except (HttpError, DocumentError):
            if feedback.isCanceled():
                raise _cancelled(location) from None
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise
            continue
        failures = 0
        feedback.pushDebugInfo(f"Polled {location}: {status.state}")
        report(status)
        if status.finished:
            return _final(status)
        interval = min(interval * 1.5, settings.poll_interval_s)


def _cancelled(location: str) -> Cancelled:
    return Cancelled("Cancelled: the plugin stopped polling, but the job may go on on the "
                     f"server. Its status document: {location}")
