"""The one place where core and job-store errors become OGC API - Processes exceptions.

Every refusal is an RFC 7807 problem document (`application/problem+json`) with an explicit
HTTP status. The standard's own exception `type` URIs are used where OGC 18-062r2 defines
one (no-such-process, no-such-job, result-not-ready); other conditions get a plain title and
`about:blank`-style type under this service's own name. Messages are the core's own (they
carry no configured URL, credential, path or traceback: see wps_app.core.errors).

pygeoapi 0.21 answers `{"code": "NoSuchProcess", "type": "NoSuchProcess", ...}` instead
(upstream issue #1316, closed unfixed), so its exceptions are never passed on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from wps_app.core.errors import (
    Busy,
    EdgeServiceError,
    InvalidInput,
    MissingInput,
    StorageFull,
    WmsError,
    WmsTimeout,
    WmsUnavailable,
)
from wps_app.jobs import ClientBusy, JobStoreError, QueueFull, StorageExhausted

OGC_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
NO_SUCH_PROCESS = OGC_EXCEPTIONS + "no-such-process"
NO_SUCH_JOB = OGC_EXCEPTIONS + "no-such-job"
RESULT_NOT_READY = OGC_EXCEPTIONS + "result-not-ready"
# Conditions the standard names no type for: ours, under a stable prefix.
OWN = "urn:wps-edge:problem:"
INVALID_PARAMETER = OWN + "invalid-parameter"
MISSING_PARAMETER = OWN + "missing-parameter"
SERVER_BUSY = OWN + "server-busy"
STORAGE_FULL = OWN + "storage-full"
UPSTREAM = OWN + "upstream-unavailable"
JOB_FAILED = OWN + "job-failed"
SERVER_ERROR = OWN + "server-error"
NOT_FOUND = OWN + "not-found"
METHOD_NOT_ALLOWED = OWN + "method-not-allowed"

# Domain fields whose OGC API input has another name (the layer input is `wms`, as in WPS).
_INPUT_OF_FIELD = {"layer": "wms"}
RETRY_AFTER_S = 30


def input_name(field_name: str) -> str:
    """The process input named by a core error's domain field."""
    return _INPUT_OF_FIELD.get(field_name, field_name)


@dataclass
class Problem(Exception):
    """An RFC 7807 problem to answer with (raise it anywhere in the binding)."""

    status: int
    type: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def body(self) -> dict:
        """The problem document."""
        return {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail, **self.extra}

    def response(self) -> Response:
        """The HTTP answer: problem+json with the status and headers."""
        response = Response(json.dumps(self.body()), status=self.status,
                            content_type="application/problem+json")
        response.headers.update(self.headers)
        return response


def bad_input(name: str, message: str, missing: bool = False) -> Problem:
    """400 for process input `name` (the detail names it)."""
    detail = message if name in message else f"{name}: {message}"
    return Problem(400, MISSING_PARAMETER if missing else INVALID_PARAMETER,
                   "missing input" if missing else "invalid input", detail,
                   extra={"input": name})


def no_such_process(process_id: str) -> Problem:
    return Problem(404, NO_SUCH_PROCESS, "no such process",
                   f"there is no process {process_id[:80]!r}")


def no_such_job(job_id: str) -> Problem:
    return Problem(404, NO_SUCH_JOB, "no such job", f"there is no job {job_id[:80]!r}")


def result_not_ready(job_id: str, status: str) -> Problem:
    return Problem(404, RESULT_NOT_READY, "result not ready",
                   f"job {job_id} is {status}; its results are not ready")


def job_failed(job_id: str, message: str) -> Problem:
    """The results of a failed job: its failure, as the job recorded it."""
    return Problem(500, JOB_FAILED, "job failed", message or f"job {job_id} failed",
                   extra={"jobID": job_id})


def from_error(error: Exception) -> Problem:
    """The problem (status, type, detail, headers) for a core or job-store error (or a
    routing refusal: 404, 405, 413).

    Bad input is the client's (400, the detail naming the input); a full output store is
    507; no room for a job is 503 with Retry-After; an upstream WMS failure is 503 when the
    WMS is unreachable, 504 when it timed out, 502 when it answered with something
    unusable; anything else 500 with no detail of ours (it is logged, never echoed).
    """
    if isinstance(error, Problem):
        return error
    if isinstance(error, MethodNotAllowed):
        return Problem(405, METHOD_NOT_ALLOWED, "method not allowed",
                       "this method is not allowed here",
                       {"Allow": ", ".join(error.valid_methods or [])})
    if isinstance(error, NotFound):
        return Problem(404, NOT_FOUND, "not found", "no such resource")
    if isinstance(error, HTTPException):  # e.g. 413 for a body over max_request_bytes
        return Problem(error.code or 400, OWN + "http", error.name,
                       error.description or error.name)
    if isinstance(error, InvalidInput):
        return bad_input(input_name(error.field), str(error),
                         missing=isinstance(error, MissingInput))
    if isinstance(error, StorageFull):
        return Problem(507, STORAGE_FULL, "insufficient storage", str(error))
    if isinstance(error, StorageExhausted):
        return Problem(507, STORAGE_FULL, "insufficient storage",
                       "the output storage is full; ask for the output by value, a smaller "
                       "area, or try again later")
    if isinstance(error, Busy):
        return Problem(503, SERVER_BUSY, "server busy", str(error),
                       {"Retry-After": str(error.retry_after_s)})
    if isinstance(error, QueueFull):
        return Problem(503, SERVER_BUSY, "server busy",
                       "as many jobs run and wait as this service allows; try again later",
                       {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(error, ClientBusy):
        return Problem(503, SERVER_BUSY, "server busy",
                       "this client has as many jobs running or queued as allowed; "
                       "try again later", {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(error, WmsError):
        status = 503 if isinstance(error, WmsUnavailable) else (
            504 if isinstance(error, WmsTimeout) else 502)
        return Problem(status, UPSTREAM, "upstream WMS failure", str(error))
    if isinstance(error, (EdgeServiceError, JobStoreError)):
        return Problem(500, SERVER_ERROR, "server error", str(error))
    return Problem(500, SERVER_ERROR, "server error",
                   "the server could not complete the request; see the server log")
