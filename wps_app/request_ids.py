"""Request ids: one `X-Request-ID` per request, carried into every log line about it and
into the async job it starts.

A load balancer (HAProxy) or the nginx front sets the header; a request that reaches the
app without one, or with one that is not a plain token, gets a fresh id here (client text
that is not a plain token is never logged). The id of the request being served lives in a
context variable (one per thread of a worker); a job's own process pins its job's id for
the whole process (its heartbeat thread included), as a forked process inherits the
context of the request that started it.

Log lines get it through wps_app.web.logs (`request_id=<id>`, `-` when no request is
being served).
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = "X-Request-ID"
ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
# What an id may be: UUIDs, nginx's $request_id (32 hex digits), HAProxy's unique-id
# formats (hex, ':' '_' '.'), at most 128 characters. deploy/nginx.conf.in checks the same
# pattern (a unit test keeps them equal).
PATTERN = r"[A-Za-z0-9_.:-]{1,128}"
_VALID = re.compile(PATTERN)
UNKNOWN = "-"  # no request (start-up, probes) or a queued job whose id was not recorded

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wps_edge_request_id", default=None)
_pinned: str | None = None  # the process-wide id of a job's own process


def generate() -> str:
    """A fresh id: 32 hex digits (as nginx's $request_id)."""
    return uuid.uuid4().hex


def valid(text: str | None) -> bool:
    """Whether `text` is an id as PATTERN allows."""
    return bool(text) and _VALID.fullmatch(text) is not None


def from_environ(environ: dict) -> str:
    """The request's id: its X-Request-ID when that is a plain token, else a fresh one."""
    given = environ.get(ENVIRON_HEADER, "")
    return given if valid(given) else generate()


def current() -> str | None:
    """The id of the request (or job) this code runs for, or None."""
    value = _current.get()
    return value if value is not None else _pinned


@contextmanager
def bound(request_id: str | None) -> Iterator[str]:
    """Run the block (and any process forked inside it) as request `request_id`
    (UNKNOWN when None)."""
    value = request_id if request_id is not None and valid(request_id) else UNKNOWN
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def set_current(request_id: str) -> contextvars.Token:
    """Make `request_id` current until reset(token) (the app, around one request)."""
    return _current.set(request_id)


def reset(token: contextvars.Token) -> None:
    """Undo set_current."""
    _current.reset(token)


def pin(request_id: str | None) -> None:
    """In a job's own process: every thread of this process logs `request_id`."""
    global _pinned
    _pinned = request_id if request_id is not None and valid(request_id) else UNKNOWN


def of_job(job) -> str:
    """The id of the request that created `job`, as the job store records it (UNKNOWN for
    jobs recorded before the store kept it)."""
    value = getattr(job, "request_id", None)
    return value if valid(value) else UNKNOWN
