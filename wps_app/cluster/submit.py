"""The instances' side of [processing] mode = dask: hand accepted jobs to the scheduler.

One `distributed.Client` per process, made on first use (gunicorn forks its workers before
any request, so none is ever shared across a fork). A job is one task, keyed by its id, so
Dask's rerun after a worker died is the same task: the store counts it as the next
attempt.
"""

from __future__ import annotations

import logging
import os
import threading

LOGGER = logging.getLogger(__name__)
TASK_PREFIX = "edge-job-"
CONNECT_TIMEOUT_S = 10


class DaskJobs:
    """Submits jobs to the Dask scheduler at `scheduler` (tcp://host:port, or tls:// with
    the TLS files of Dask's configuration, distributed.comm.tls.*)."""

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self._client = None
        self._pid = None

    def client(self):
        """This process's client (connected on first use)."""
        import distributed

        with self._lock:
            if self._client is None or self._pid != os.getpid():
                try:  # on a Dask worker (a job starting a queued one): its own client
                    distributed.get_worker()
                    self._client = distributed.get_client()
                except ValueError:
                    self._client = distributed.Client(
                        self.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
                self._pid = os.getpid()
            return self._client

    def submit(self, binding: str, job_id: str, context: dict) -> None:
        """Run `job_id` on the cluster (wps_app.cluster.worker_run.run_job) and forget it.

        Raises when the scheduler cannot be reached; the caller fails the job then.
        """
        import distributed

        from wps_app.cluster import worker_run

        future = self.client().submit(worker_run.run_job, binding, job_id, context,
                                      key=f"{TASK_PREFIX}{job_id}", retries=0)
        distributed.fire_and_forget(future)
        LOGGER.info("job=%s submitted to the Dask scheduler", job_id)
