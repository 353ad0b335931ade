"""SIGTERM drains an instance: gunicorn's master keeps its workers until the requests in
flight are answered, while /health says "draining" (503) so a load balancer stops sending
requests here first; then gunicorn's own graceful stop.

Why: on SIGTERM gunicorn closes its listening socket at once and waits for the workers.
Behind a load balancer that checks /health, the check then fails with a refused connection
(through the nginx front: a 502), indistinguishable from a crash, and requests already on
their way fail. Here the first SIGTERM:

1. raises the draining flag (wps_app.instance): the app answers /health and
   /health/upstream with 503 {"status": "draining"}, refuses any new request with 503 and
   `Retry-After` (a load balancer retries it on another instance; nothing was done), and
   still serves /metrics;
2. keeps the workers and the socket until no worker serves a request other than /health
   and /metrics (gunicorn's pre_request/post_request hooks mark busy workers), and at least
   `[server] drain_s` seconds have passed (time for the load balancer's checks to see the
   503: 0 by default), or at most `drain_s + graceful_timeout`;
3. then stops as gunicorn always does (socket closed, workers end their request and leave,
   killed after graceful_timeout). A second SIGTERM skips to this step.

A sync Execute ends within [jobs] sync_max_runtime, so gunicorn.conf.py derives
graceful_timeout from it (`graceful_timeout(settings)`).

This changes gunicorn's Arbiter in one place, on the master's instance only (`install`,
called from gunicorn.conf.py's when_ready): `handle_term` (what SIGTERM does) and
`manage_workers` (called once per master loop, at least every second, where the drain is
checked). `check()` refuses to start on a gunicorn outside the versions this was checked
on, or when those methods changed signature.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

from wps_app import instance

GUNICORN_MAJORS_CHECKED = (23, 27)  # the requirements' range (>=23,<28); checked on 27.0.1
_HOOKED = {"handle_term": "(self)", "manage_workers": "(self)"}
MARGIN_S = 15  # for the last response to be written after sync_max_runtime


def graceful_timeout(sync_max_runtime_s: float) -> int:
    """gunicorn's graceful_timeout (seconds) for [jobs] sync_max_runtime: a sync request in
    flight at SIGTERM is answered (its ExceptionReport at worst) before workers are killed."""
    return int(sync_max_runtime_s) + MARGIN_S


def check() -> None:
    """RuntimeError unless gunicorn is a checked version with the hooked methods as
    expected."""
    import gunicorn
    from gunicorn.arbiter import Arbiter

    major = int(gunicorn.__version__.split(".")[0])
    low, high = GUNICORN_MAJORS_CHECKED
    if not low <= major <= high:
        raise RuntimeError(f"gunicorn {gunicorn.__version__} is outside the versions "
                           f"wps_app.ops.gunicorn_drain was checked on ({low}..{high})")
    for name, signature in _HOOKED.items():
        found = str(inspect.signature(getattr(Arbiter, name)))
        if found != signature:
            raise RuntimeError(f"gunicorn's Arbiter.{name} now takes {found}, not {signature}")


class Drain:
    """The master's drain: started by the first SIGTERM, checked every loop."""

    def __init__(self, server, folder: Path, drain_s: float, clock=time.monotonic) -> None:
        self.server = server
        self.folder = folder
        self.drain_s = drain_s
        self.clock = clock
        self.started: float | None = None
        self._manage_workers = server.manage_workers  # gunicorn's own, bound

    def on_term(self) -> None:
        """SIGTERM: start draining; a second one stops now (gunicorn's graceful stop)."""
        if self.started is not None:
            raise StopIteration
        self.started = self.clock()
        instance.mark_draining(self.folder)
        self.server.log.info("draining: /health answers 503; stopping once in-flight "
                             "requests are answered")
        self._stop_if_drained()

    def manage_workers(self) -> None:
        self._stop_if_drained()
        self._manage_workers()

    def _stop_if_drained(self) -> None:
        if self.started is None:
            return
        elapsed = self.clock() - self.started
        busy = instance.busy_workers(self.folder, set(self.server.WORKERS))
        limit = self.drain_s + self.server.cfg.graceful_timeout
        if (not busy and elapsed >= self.drain_s) or elapsed >= limit:
            if busy:
                self.server.log.warning("drain: %d request(s) still in flight after %.0f s",
                                        len(busy), elapsed)
            raise StopIteration  # gunicorn's run loop: halt(), its graceful stop


def install(server, drain_s: float) -> Drain:
    """Make SIGTERM drain this master (gunicorn.conf.py's when_ready hook)."""
    check()
    folder = instance.rundir()
    if folder is None:
        raise RuntimeError(f"${instance.RUNDIR_ENV} is not set (gunicorn.conf.py sets it)")
    drain = Drain(server, folder, drain_s)
    server.handle_term = drain.on_term  # the run loop looks handlers up on the instance
    server.manage_workers = drain.manage_workers
    return drain
