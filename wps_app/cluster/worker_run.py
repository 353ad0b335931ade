"""The Dask workers' side of [processing] mode = dask: run one accepted job.

Each worker process builds the service once (the same configuration as the instances:
$PYWPS_CFG and WPS_* variables) and runs the job with its binding's runner, in this
thread: the store's `start` makes it a new attempt naming this worker, the runner renews
the lease, records progress, writes status documents and outputs into the shared folder
and ends the job. A runner that finds its job ended elsewhere, or taken over by a newer
attempt, stops at its next store write (runners.JobAbandoned) instead of exiting the
process, which would kill the worker.
"""

from __future__ import annotations

import logging
import threading

LOGGER = logging.getLogger(__name__)
_lock = threading.Lock()
_app = None


def services():
    """This worker process's service (wps_app.web.app.EdgeApp), built on first use."""
    global _app
    with _lock:
        if _app is None:
            from wps_app.web.app import create_app

            _app = create_app()
        return _app


def this_worker() -> str | None:
    """The address of the Dask worker running this task (None outside a worker)."""
    import distributed

    try:
        return distributed.get_worker().address
    except ValueError:
        return None


def run_job(binding: str, job_id: str, context: dict) -> str:
    """Run job `job_id` of `binding` ("wps" or "ogcapi") here; returns its status after
    this attempt (for the scheduler's record only: nobody waits for it).

    Parameters
    ----------
    binding, job_id : str
    context : dict
        "public": the accepting request's public URLs (wps_app.wps.public_urls), or None
        (the stored request says which inputs the client sent: pywps_compat._payload).
    """
    from wps_app import request_ids
    from wps_app.ogcapi import runner
    from wps_app.task import EdgeTask
    from wps_app.wps import public_urls, pywps_compat

    app = services()
    job = app.runtime.jobs.get(job_id)
    if job is None or job.ended:
        LOGGER.info("job=%s not run: %s", job_id, "unknown" if job is None else job.status)
        return "unknown" if job is None else job.status
    worker = this_worker()
    # the submitting request's id on every line about the job, on this host too
    with request_ids.bound(request_ids.of_job(job)), public_urls.using(context.get("public")):
        LOGGER.info("job=%s runs on Dask worker %s (attempt %d before it)", job_id, worker,
                    job.attempt)
        if binding == pywps_compat.BINDING:
            pywps_compat.run_here(app.service, job, worker)
        elif binding == runner.BINDING:
            runner.run_here(EdgeTask(app.runtime), job, worker)
        else:
            raise ValueError(f"unknown binding {binding!r}")
    ended = app.runtime.jobs.get(job_id)
    return "unknown" if ended is None else ended.status


def dask_setup(worker) -> None:
    """`dask worker --preload wps_app.cluster.worker_run`: build the service as the worker
    starts, so its WMS layer lists are being read before the first job arrives."""
    services()
