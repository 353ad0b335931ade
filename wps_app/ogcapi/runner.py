"""Async OGC API jobs: run detached from the serving worker, on the shared JobStore.

A job admitted to run is started in a double-forked process (as WPS jobs are under
`[processing] mode = detachprocessing`): it outlives a restarted gunicorn worker and leaves
no zombie. That process marks the job running, keeps its lease alive with a Heartbeat
(which also stops it at the maximum run time), reports progress at the WPS milestones,
publishes the outputs under `outputpath/<job id>/` and ends the job in the store. A job
dismissed meanwhile is noticed at its next progress report or heartbeat: the process
deletes what it wrote and ends. Queued jobs are started by `start_queued`, called when a
job ends and on requests (the binding's reaper step).

With `[processing] mode = dask` (the runtime has `remote` jobs), `launch` hands the job to
the Dask cluster instead, whose worker calls `run_here`: the same JobRun, in the worker's
thread, as a new attempt naming the worker; a run that finds its job gone stops with
JobAbandoned instead of exiting the worker's process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from wps_app import request_ids
from wps_app.core.errors import EdgeServiceError
from wps_app.jobs import Heartbeat, Job, JobAbandoned, Limits, stop_runner
from wps_app.ogcapi.execute import ExecuteRequest
from wps_app.task import EdgeTask

LOGGER = logging.getLogger(__name__)
BINDING = "ogcapi"
NOT_STARTED = "the job could not be started; please submit it again"
FAILED = "the job failed; see the server log"


def limits_of(task: EdgeTask) -> Limits:
    """The async admission limits (shared with WPS: [server] parallelprocesses and
    maxprocesses)."""
    settings = task.runtime.settings
    return Limits(settings.parallel_processes, settings.max_queued_processes)


def remove_outputs(task: EdgeTask, job_id: str) -> None:
    """Delete a job's published folder and its storage record."""
    folder = task.runtime.settings.output_path / job_id
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    task.runtime.jobs.forget_outputs([job_id])


class JobRun:
    """One job inside its own process: lease, progress, outputs, the end."""

    def __init__(self, task: EdgeTask, job: Job, exit_: Callable[[int], None] = os._exit,
                 worker: str | None = None):
        self.task = task
        self.store = task.runtime.jobs
        self.job = job
        self.job_id = job.job_id
        self.worker = worker  # the Dask worker's address, recorded with the attempt
        self.attempt: int | None = None  # JobStore.start's number, once started
        self.workdir: Path | None = None
        self.lock = threading.RLock()
        self._exit = exit_
        self.heartbeat = Heartbeat(self.store, self.job_id, on_lost=self._lost,
                                   on_overrun=self._overrun)

    def _clean(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _remove_outputs_if_dismissed(self) -> None:
        """The outputs of a job dismissed, or failed while this attempt ran it, go; a job
        a newer attempt took over keeps its folder (that attempt publishes into it)."""
        job = self.store.get(self.job_id)
        if job is not None and (job.status == "dismissed" or (
                job.status == "failed" and job.attempt == self.attempt)):
            remove_outputs(self.task, self.job_id)

    def _lost(self) -> None:
        """The job ended elsewhere (dismissed, or failed by a reaper) or a newer attempt
        took it over: stop here."""
        with self.lock:
            LOGGER.warning("job %s was ended elsewhere; its process stops", self.job_id)
            self._clean()
            self._remove_outputs_if_dismissed()
            self._exit(0)

    def _overrun(self, message: str) -> None:
        with self.lock:
            LOGGER.warning("job %s: %s", self.job_id, message)
            self.store.fail(self.job_id, message, self.attempt)
            self._clean()
            self._exit(1)

    def progress(self, message: str, percent: int) -> None:
        """Record a milestone; a job ended elsewhere stops here."""
        with self.lock:
            try:
                ours = self.store.progress(self.job_id, percent, message, self.attempt)
            except Exception:  # unreachable store: the lease decides if it stays so
                LOGGER.exception("job %s: progress not stored", self.job_id)
                ours = True
        if not ours:
            self._lost()

    def run(self) -> None:
        """Run the job to its end (succeeded, failed, or lost)."""
        if self.worker is None:  # a process of its own: all its threads log its request id
            request_ids.pin(request_ids.current())
        request = ExecuteRequest.from_json(self.job.payload or b"{}")
        settings = self.task.runtime.settings
        settings.work_path.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ogcapi-{self.job_id}-",
                                             dir=settings.work_path))
        self.attempt = self.store.start(self.job_id, str(self.workdir), worker=self.worker)
        if not self.attempt:
            LOGGER.warning("job %s ended before it could start", self.job_id)
            self._clean()
            return
        self.heartbeat.start(self.attempt)
        started = time.perf_counter()
        try:
            tile = self.task.validate(request.values)
            self.progress("inputs checked against the WMS capabilities", 10)
            result = self.task.run(tile, self.workdir, self.progress)
            self.progress("publishing outputs", 95)
            with self.lock:
                self.task.publish(tile, result, self.job_id, self.job.owner)
                if not self.store.finish(self.job_id, "Process succeeded", self.attempt):
                    self._remove_outputs_if_dismissed()  # or taken over meanwhile
            LOGGER.info("job=%s outcome=succeeded duration_s=%.3f", self.job_id,
                        time.perf_counter() - started)
        except EdgeServiceError as exc:
            LOGGER.info("job=%s outcome=failed reason=%r", self.job_id, str(exc))
            self.store.fail(self.job_id, str(exc), self.attempt)
        except Exception:
            LOGGER.exception("job %s failed", self.job_id)
            self.store.fail(self.job_id, FAILED, self.attempt)
        finally:
            self.heartbeat.stop()
            self._clean()


def _detached(target: Callable[[], None]) -> None:
    """Run `target` in a double-forked process in its own session; returns at once."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the intermediate child exits at once: no zombie
        return
    code = 0
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        try:
            target()
        except BaseException:  # noqa: B036 - a forked child must never return to the server
            LOGGER.exception("detached job process failed")
            code = 1
    finally:
        os._exit(code)


def run_job(task: EdgeTask, job_id: str) -> None:
    """Inside the detached process: run the job, then start queued ones there is room for."""
    job = task.runtime.jobs.get(job_id)
    if job is not None:
        JobRun(task, job).run()
    start_queued(task)


def run_here(task: EdgeTask, job: Job, worker: str | None) -> None:
    """Inside a Dask worker's task: run the job in this thread, then start queued ones."""
    try:
        JobRun(task, job, stop_runner(threading.current_thread()), worker).run()
    except JobAbandoned:
        LOGGER.info("job=%s abandoned by this attempt (ended elsewhere or rerun)", job.job_id)
    start_queued(task)


def launch(task: EdgeTask, job_id: str) -> None:
    """Start admitted job `job_id`: on the Dask cluster with [processing] mode = dask, else
    in a detached process."""
    remote = task.runtime.remote
    if remote is not None:
        remote.submit(BINDING, job_id, {})
    else:
        _detached(lambda: run_job(task, job_id))


def start_queued(task: EdgeTask) -> list[str]:
    """Start the queued OGC API jobs there is room for; returns their ids."""
    store = task.runtime.jobs
    started = []
    for job in store.drain(limits_of(task), binding=BINDING):
        try:
            with request_ids.bound(request_ids.of_job(job)):  # its own, not this one's
                launch(task, job.job_id)
            started.append(job.job_id)
        except Exception:
            LOGGER.exception("queued job %s could not be started", job.job_id)
            store.fail(job.job_id, NOT_STARTED)
    return started
