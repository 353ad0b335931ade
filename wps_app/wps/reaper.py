"""The WPS binding's share of job supervision, run on requests: fail the jobs whose lease
expired (JobStore.reap), rewrite their status documents, start queued jobs there is room
for (PyWPS starts the next queued job only when a job ends normally, so a crashed job would
stall the queue forever)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pywps import Service

from wps_app.jobs import Job, JobStore
from wps_app.wps.job_status import publish_failures
from wps_app.wps.pywps_compat import start_queued


class Reaper:
    """Runs the reaper at most every `interval_s` seconds in this process.

    Parameters
    ----------
    store : JobStore
    service : pywps.Service
        Its processes name the failed jobs' processes and run queued jobs.
    status_dir : Path
        Where status documents live ([server] outputpath).
    interval_s : float
        Seconds between two passes of this process.
    monotonic : callable
        Seconds on a monotonic clock (injectable for tests).
    """

    def __init__(self, store: JobStore, service: Service, status_dir: Path, *,
                 interval_s: float = 2.0, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = store
        self.service = service
        self.status_dir = status_dir
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._next_s = float("-inf")
        self._lock = threading.Lock()

    def run_if_due(self) -> list[Job] | None:
        """One pass unless one ran less than `interval_s` ago (or runs in another thread).

        Returns
        -------
        list of Job or None
            The jobs this pass failed; None when no pass ran.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            now_s = self._monotonic()
            if now_s < self._next_s:
                return None
            self._next_s = now_s + self.interval_s
            ended = self.store.reap()
            publish_failures(ended, self.service.processes, self.status_dir)
            start_queued(self.service)
            return ended
        finally:
            self._lock.release()
