"""SIGTERM drains an instance in two phases: first /health says "draining" (503) while
every other request is still served, so a load balancer takes the instance out without a
single refusal; then new requests are refused while those in flight are answered; then
gunicorn's own graceful stop.

Why: on SIGTERM gunicorn closes its listening socket at once and waits for the workers.
Behind a load balancer that checks /health, the check then fails with a refused connection
(through the nginx front: a 502), indistinguishable from a crash, and requests already on
their way fail. A balancer never retries a POST elsewhere (an Execute must not run twice),
so refusing at once would also fail any Execute sent in the seconds before its checks
noticed. Here the first SIGTERM:

1. raises the draining flag (wps_app.instance): the app answers /health and
   /health/upstream with 503 {"status": "draining"} and serves everything else as before,
   for `[server] drain_s` seconds (give it more than the balancer's `inter` x `fall`; 0 by
   default: straight to phase 2);
2. then raises the refusing flag: any new request but /health and /metrics gets 503 and
   `Retry-After` (nothing was done; a balancer may send it elsewhere), and the master keeps
   its workers and socket until no worker serves a request other than /health and
   /metrics (gunicorn's pre_request/post_request hooks mark busy workers), or at most
   until `drain_s + graceful_timeout`;
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
        self.refusing = False
        self._manage_workers = server.manage_workers  # gunicorn's own, bound

    def on_term(self) -> None:
        """SIGTERM: start draining; a second one stops now (gunicorn's graceful stop)."""
        if self.started is not None:
            raise StopIteration
        self.started = self.clock()
        instance.mark_draining(self.folder)
        self.server.log.info("draining: /health answers 503 for %.0f s, then new requests "
                             "are refused and in-flight ones answered", self.drain_s)
        self._stop_if_drained()

    def manage_workers(self) -> None:
        self._stop_if_drained()
        self._manage_workers()

    def _stop_if_drained(self) -> None:
        if self.started is None:
            return
        elapsed = self.clock() - self.started
        if elapsed >= self.drain_s and not self.refusing:
            # first refuse, then look for busy workers: a request that got past the flag
            # had marked its worker busy before (pre_request runs before the app)
            instance.mark_refusing(self.folder)
            self.refusing = True
            self.server.log.info("drain: refusing new requests")
        busy = instance.busy_workers(self.folder, set(self.server.WORKERS))
        limit = self.drain_s + self.server.cfg.graceful_timeout
        if (self.refusing and not busy) or elapsed >= limit:
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
