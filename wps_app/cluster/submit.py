"""The instances' side of [processing] mode = dask: hand accepted jobs to the scheduler.

One `distributed.Client` per process, made on first use and shared with the large requests'
windows (wps_app.cluster.blocks.shared_client; gunicorn forks its workers before any
request, so none is ever shared across a fork). A job is one task, keyed by its id, so
Dask's rerun after a worker died is the same task: the store counts it as the next
attempt.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger(__name__)
TASK_PREFIX = "edge-job-"


class DaskJobs:
    """Submits jobs to the Dask scheduler at `scheduler` (tcp://host:port, or tls:// with
    the TLS files of Dask's configuration, distributed.comm.tls.*)."""

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler

    def client(self):
        """This process's client: on a Dask worker (a job starting a queued one) the
        worker's own, elsewhere the one large requests use too (blocks.shared_client:
        connected on first use, again after it closed; one per process)."""
        import distributed

        from wps_app.cluster import blocks

        try:
            distributed.get_worker()
        except ValueError:
            return blocks.shared_client(self.scheduler)
        return distributed.get_client()

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
