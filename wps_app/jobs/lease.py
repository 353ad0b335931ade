"""The runner's side of a lease: a daemon thread, inside the process that runs a job, that
renews the job's lease every lease_s / 3 and ends the job at its maximum run time.

It is started after the job's process is forked (a thread does not survive a fork) and
stopped when the job ends. Whatever it decides comes from the store and from this
process's own clock: when the store says the job ended (a reaper failed it while this
process was not answering), `on_lost` runs; when the job reaches `max_runtime_s`,
`on_overrun` runs with the failure message. Both are expected to end the process.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable

from wps_app.jobs.model import overrun_message
from wps_app.jobs.store import JobStore

LOGGER = logging.getLogger(__name__)


class JobAbandoned(BaseException):  # noqa: N818 - not an error: the run just stops
    """Raised in a runner's own thread when its job was ended elsewhere or taken over by a
    newer attempt, where the runner may not end its process (a Dask worker runs other
    tasks). A BaseException, so that no `except Exception` of the run (PyWPS's included)
    turns it into a failure of a job that is no longer this runner's."""


def stop_runner(job_thread: threading.Thread) -> Callable[[int], None]:
    """The `exit_` of a runner inside a shared process: in the job's thread, raise
    JobAbandoned; in the heartbeat thread, nothing (the heartbeat stops, and the job's
    thread finds the job gone at its next store write)."""

    def stop(code: int) -> None:
        if threading.current_thread() is job_thread:
            raise JobAbandoned(code)

    return stop


class Heartbeat:
    """Keeps job `job_id`'s lease alive and enforces its maximum run time.

    Parameters
    ----------
    store : JobStore
        Its lease_s and max_runtime_s apply.
    job_id : str
    on_lost : callable
        Called (from the heartbeat thread) when the store says the job ended.
    on_overrun : callable
        Called with the failure message when the job has run max_runtime_s seconds,
        counted from when this Heartbeat is made (make it as the job starts).
    monotonic : callable
        Seconds on a monotonic clock (injectable for tests).
    """

    def __init__(self, store: JobStore, job_id: str, *, on_lost: Callable[[], None],
                 on_overrun: Callable[[str], None],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.job_id = job_id
        self.interval_s = store.lease_s / 3
        self._on_lost = on_lost
        self._on_overrun = on_overrun
        self._monotonic = monotonic
        self._deadline = monotonic() + store.max_runtime_s
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.attempt: int | None = None  # the runner's attempt (JobStore.start), once started

    def beat(self) -> float | None:
        """One step: end an overdue job, else renew the lease.

        Returns
        -------
        float or None
            Seconds until the next step; None when the job is over for this runner (the
            callback has run).
        """
        remaining_s = self._deadline - self._monotonic()
        if remaining_s <= 0:
            LOGGER.warning("job %s reached its maximum run time", self.job_id)
            self._on_overrun(overrun_message(self.store.max_runtime_s))
            return None
        try:
            alive = self.store.heartbeat(self.job_id, self.attempt)
        except Exception:  # the database may come back before the lease expires
            LOGGER.exception("job %s: lease not renewed", self.job_id)
            alive = True
        if not alive:
            LOGGER.warning("job %s was ended elsewhere (or rerun); its runner stops",
                           self.job_id)
            self._on_lost()
            return None
        return min(self.interval_s, remaining_s)

    def _run(self) -> None:
        delay: float | None = min(self.interval_s, self._deadline - self._monotonic())
        while delay is not None and not self._stopped.wait(max(delay, 0.0)):
            delay = self.beat()

    def start(self, attempt: int | None = None) -> None:
        """Start the heartbeat thread (call in the process that runs the job), renewing
        the lease of `attempt` (JobStore.start's number) only."""
        self.attempt = attempt
        # the thread runs in the starter's context: its log lines name the same request
        # (wps_app.request_ids), also where several jobs share a process (a Dask worker)
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,), name=f"lease-{self.job_id}",
                                        daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the heartbeat thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop renewing (the job ended); idempotent, returns once the thread is gone."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
