"""Every replacement of PyWPS behaviour, in one place, checked at start-up (PyWPS 4.8.1).

For now: async jobs. PyWPS keeps its own job log (pywps.dblog: `pywps_requests`,
`pywps_stored_requests`), writes every request into it, counts sync requests against the
async limit, decides that a job died by looking for its process id on the local machine,
and never ends a job whose worker died. Here the JobStore (wps_app.jobs) is the one record
of async jobs, shared with the other bindings; PyWPS's log is no longer written.

Replaced names, each checked by `check()` (exists, same parameters) before `install`:

- `pywps.dblog.log_request` (also imported by name into `pywps.app.Service`): a no-op.
  Async jobs are registered in the JobStore at admission; sync requests touch no store
  (the log cost 5-20 ms per Execute on a file SQLite: a measured choice).
- `pywps.dblog.store_status` (also by name into `pywps.app.Service` and
  `pywps.response.basic`): a no-op. A job's own process records its statuses in the
  JobStore (JobProcess._run_process); nothing else has a status worth storing.
- `pywps.dblog.update_pid`: a no-op; process ids decide nothing (leases do).
- `pywps.dblog.get_process_counts`: the JobStore's counts of async jobs (running, queued).
  PyWPS's only caller, Process._execute_process, is replaced below; this keeps any other
  caller on the same numbers.
- `pywps.dblog.cleanup_crashed_process`: a no-op; it failed jobs whose process id was
  missing on this machine. Expired leases replace it.
- `Process._execute_process`, `_run_process` and `launch_next_process`, overridden by the
  JobProcess mixin (processes.base.EdgeProcess inherits it): admission is one serialised
  transaction of the store (PyWPS counted, then acted: two workers could both take the last
  slot); sync requests are bounded by the worker pool only; the job's process renews a
  lease, records its statuses, stops itself at the maximum run time; the queue lives in the
  store. `start_queued` is PyWPS's launch_next_process body over the store's queue.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import threading
from pathlib import Path

import pywps
import pywps.configuration as pywps_config
import pywps.response.basic as pywps_basic
from pywps import dblog
from pywps.app.Process import Process
from pywps.app.Service import Service
from pywps.app.WPSRequest import WPSRequest
from pywps.exceptions import ServerBusy
from pywps.response.execute import ExecuteResponse
from pywps.response.status import WPS_STATUS

from wps_app.jobs import Heartbeat, Job, JobStore, Limits, QueueFull
from wps_app.wps.job_status import BINDING, publish_failures

LOGGER = logging.getLogger(__name__)

CHECKED_VERSION = "4.8.1"
NOT_STARTED = "the job could not be started; please submit it again"

_pywps_service = importlib.import_module("pywps.app.Service")  # the module, not the class

# What each replaced (or relied-on) PyWPS callable must look like: its parameters.
EXPECTED = {
    (dblog, "log_request"): ("uuid", "request"),
    (dblog, "store_status"): ("uuid", "wps_status", "message", "status_percentage"),
    (dblog, "update_pid"): ("uuid", "pid"),
    (dblog, "get_process_counts"): (),
    (dblog, "cleanup_crashed_process"): (),
    (_pywps_service, "log_request"): ("uuid", "request"),
    (_pywps_service, "store_status"): ("uuid", "wps_status", "message", "status_percentage"),
    (pywps_basic, "store_status"): ("uuid", "wps_status", "message", "status_percentage"),
    (Process, "_execute_process"): ("self", "async_", "wps_request", "wps_response"),
    (Process, "_run_process"): ("self", "wps_request", "wps_response"),
    (Process, "_run_async"): ("self", "wps_request", "wps_response"),
    (Process, "launch_next_process"): ("self",),
    (Process, "setup_outputs_from_wps_request"): ("self", "wps_request"),
    (Process, "clean"): ("self",),
    (Service, "prepare_process_for_execution"): ("self", "identifier"),
    (ExecuteResponse, "_update_status"): ("self", "status", "message", "status_percentage",
                                          "clean"),
    (WPSRequest, "restore_json"): ("self", "value"),
}
_ORIGINALS = {key: getattr(*key, None) for key in EXPECTED}

# The one reference the PyWPS glue keeps to the store the app handed it (install).
_store: JobStore | None = None


def check() -> None:
    """Raise RuntimeError unless every PyWPS callable replaced or relied on here exists with
    the parameters it had in PyWPS 4.8.1 (a different version is logged, not refused)."""
    if pywps.__version__ != CHECKED_VERSION:
        LOGGER.warning("PyWPS %s: wps_app.wps.pywps_compat was checked on %s only",
                       pywps.__version__, CHECKED_VERSION)
    for (owner, name), expected in EXPECTED.items():
        target = _ORIGINALS[(owner, name)]
        if target is None:
            raise RuntimeError(f"PyWPS changed: {owner.__name__}.{name} is gone")
        found = tuple(inspect.signature(target).parameters)
        if found != expected:
            raise RuntimeError(f"PyWPS changed: {owner.__name__}.{name}{found}, "
                               f"expected {expected}")


def limits() -> Limits:
    """PyWPS's async limits ([server] parallelprocesses, maxprocesses; -1: none)."""
    return Limits(parallel=int(pywps_config.get_config_value("server", "parallelprocesses")),
                  queued=int(pywps_config.get_config_value("server", "maxprocesses")))


def status_dir() -> Path:
    """Where PyWPS writes status documents ([server] outputpath)."""
    return Path(pywps_config.get_config_value("server", "outputpath"))


def installed_store() -> JobStore:
    """The store `install` was handed."""
    if _store is None:
        raise RuntimeError("wps_app.wps.pywps_compat.install(store) was not called")
    return _store


# -- pywps.dblog ----------------------------------------------------------------------------

def _log_request(uuid, request) -> None:
    """Replaces pywps.dblog.log_request: nothing is logged (see the module docstring)."""


def _store_status(uuid, wps_status, message=None, status_percentage=None) -> None:
    """Replaces pywps.dblog.store_status: a job's own process records its statuses."""


def _update_pid(uuid, pid) -> None:
    """Replaces pywps.dblog.update_pid: process ids decide nothing."""


def _get_process_counts() -> tuple[int, int]:
    """Replaces pywps.dblog.get_process_counts: (async jobs running, queued) in the store."""
    admission = installed_store().admit(limits())
    return admission.running, admission.queued


def _cleanup_crashed_process() -> None:
    """Replaces pywps.dblog.cleanup_crashed_process: expired leases replace pid checks."""


def install(store: JobStore) -> None:
    """Check PyWPS, keep `store` for the PyWPS glue and replace the dblog names (idempotent).

    Parameters
    ----------
    store : JobStore
        The app's job store, migrated.
    """
    global _store
    check()
    _store = store
    dblog.log_request = _log_request
    dblog.store_status = _store_status
    dblog.update_pid = _update_pid
    dblog.get_process_counts = _get_process_counts
    dblog.cleanup_crashed_process = _cleanup_crashed_process
    _pywps_service.log_request = _log_request
    _pywps_service.store_status = _store_status
    pywps_basic.store_status = _store_status


# -- pywps.Process --------------------------------------------------------------------------

class _JobRun:
    """Inside the job's own process: the lease, and the job's status updates.

    Every status update of the job goes to the store first, then (if the job is still this
    process's) to the status document, under one lock; the heartbeat thread takes the same
    lock to end an overdue job, so no later update can overwrite the failure. A process
    frozen between the two (given up for dead, its job failed elsewhere) may write one
    stale document on resuming; its next store call then finds the job lost, and it writes
    the failure back before it ends.
    """

    def __init__(self, store: JobStore, process: Process, wps_response: ExecuteResponse):
        self.store = store
        self.process = process
        self.response = wps_response
        self.job_id = str(process.uuid)
        self.lock = threading.RLock()
        self._pywps_update_status = wps_response._update_status  # PyWPS's own, bound
        self.heartbeat = Heartbeat(store, self.job_id, on_lost=self._lost,
                                   on_overrun=self._overrun)

    def start(self) -> bool:
        """Mark the job running and start its heartbeat; False when it may not run."""
        if not self.store.start(self.job_id, self.process.workdir):
            LOGGER.warning("job %s ended before it could start", self.job_id)
            self._restore_failure()  # the accepting worker may have written over it
            self.process.clean()
            return False
        # this response object only (an instance attribute shadows the method)
        self.response._update_status = self._record
        self.heartbeat.start()
        return True

    def stop(self) -> None:
        """Stop renewing the lease (the job ended)."""
        self.heartbeat.stop()

    def _record(self, status, message, status_percentage, clean=True) -> None:
        with self.lock:
            try:
                if status == WPS_STATUS.SUCCEEDED:
                    ours = self.store.finish(self.job_id, str(message))
                elif status == WPS_STATUS.FAILED:
                    ours = self.store.fail(self.job_id, str(message))
                else:
                    percent = (self.response.status_percentage if status_percentage is None
                               else status_percentage)
                    ours = self.store.progress(self.job_id, percent, str(message))
            except Exception:  # unreachable store: the lease decides if it stays so
                LOGGER.exception("job %s: status not stored", self.job_id)
                ours = True
            if not ours:
                self._lost()
            self._pywps_update_status(status, message, status_percentage, clean)

    def _restore_failure(self) -> None:
        """Rewrite the failure another instance recorded: this process, frozen between a
        store update and its document, may have written a stale status over it."""
        try:
            job = self.store.get(self.job_id)
            if job is not None and job.status == "failed":
                publish_failures([job], self.process.service.processes, status_dir())
        except Exception:
            LOGGER.exception("job %s: failure document not restored", self.job_id)

    def _lost(self) -> None:
        """Another instance ended the job: make its document say so again, stop here."""
        with self.lock:  # no status update of this process runs meanwhile, or after
            LOGGER.warning("job %s was ended elsewhere; its process stops", self.job_id)
            self._restore_failure()
            self.process.clean()
            os._exit(0)

    def _overrun(self, message: str) -> None:
        """The maximum run time is reached: fail the job as any failure, then stop."""
        if not self.lock.acquire(timeout=self.store.lease_s):
            os._exit(1)  # the lease then expires and any instance fails the job
        try:
            LOGGER.warning("job %s: %s", self.job_id, message)
            self.response._update_status(WPS_STATUS.FAILED, message, 100)
        finally:
            os._exit(1)


class JobProcess:
    """Mixin for pywps.Process (first among the bases): async jobs through the JobStore.

    Overrides PyWPS 4.8.1's Process._execute_process, _run_process and launch_next_process
    (see the module docstring).
    """

    def _execute_process(self, async_, wps_request, wps_response):
        if not async_:
            # PyWPS refused a sync request when parallelprocesses unfinished requests of
            # any kind existed; the gunicorn worker pool bounds sync requests.
            wps_response._update_status(WPS_STATUS.ACCEPTED, "Request accepted", 0)
            return self._run_process(wps_request, wps_response)
        store = installed_store()
        job_id = str(self.uuid)
        try:
            job = store.register(job_id, self.identifier, BINDING, limits=limits(),
                                 workdir=self.workdir,
                                 payload=wps_request.json.encode("utf-8"))
        except QueueFull as exc:
            raise ServerBusy("Maximum number of processes in queue reached. "
                             "Please try later.") from exc
        try:
            if job.queued:
                wps_response._update_status(WPS_STATUS.ACCEPTED,
                                            "PyWPS Process stored in job queue", 0)
            else:
                wps_response._update_status(WPS_STATUS.ACCEPTED, "PyWPS Request accepted", 0)
                self._run_async(wps_request, wps_response)
        except Exception:
            if store.fail(job_id, NOT_STARTED):
                publish_failures([store.get(job_id)], self.service.processes, status_dir())
            raise
        return wps_response

    def _run_process(self, wps_request, wps_response):
        if not getattr(self, "async_", False):
            return super()._run_process(wps_request, wps_response)
        run = _JobRun(installed_store(), self, wps_response)
        if not run.start():
            return wps_response
        self._job_run = run  # launch_next_process stops it before forking the next job
        try:
            return super()._run_process(wps_request, wps_response)
        finally:
            run.stop()

    def launch_next_process(self):
        # PyWPS calls this at the end of every _run_process; only the end of an async job
        # frees a slot (PyWPS also looked, one query, after every sync request).
        if not getattr(self, "async_", False):
            return
        run = getattr(self, "_job_run", None)
        if run is not None:
            run.stop()  # no thread of ours crosses the fork below
        try:
            start_queued(self.service, installed_store())
        except Exception:  # PyWPS's version swallowed errors too: the job itself is over
            LOGGER.exception("queued jobs not started")


def _launch(service: Service, job: Job) -> None:
    """Start queued job `job` in the background, as PyWPS 4.8.1's launch_next_process does
    with a stored request."""
    request = WPSRequest()
    # saved by us at admission, so trusted (input files already in the job's work folder)
    request.restore_json(json.loads((job.payload or b"{}").decode("utf-8")))
    process = service.prepare_process_for_execution(job.process_id)
    process._set_uuid(job.job_id)
    process._setup_status_storage()
    process.async_ = True
    process.setup_outputs_from_wps_request(request)
    response = ExecuteResponse(request, process=process, uuid=job.job_id)
    response.store_status_file = True
    process._run_async(request, response)


def start_queued(service: Service, store: JobStore) -> list[Job]:
    """Start the queued WPS jobs there is room for now.

    Parameters
    ----------
    service : pywps.Service
        Whose processes run them.
    store : JobStore

    Returns
    -------
    list of Job
        Jobs that could not be started: failed, their status documents rewritten.
    """
    failed = []
    for job in store.drain(limits(), binding=BINDING):
        try:
            _launch(service, job)
        except Exception:
            LOGGER.exception("queued job %s could not be started", job.job_id)
            if store.fail(job.job_id, NOT_STARTED):
                failed.append(store.get(job.job_id))
    publish_failures([job for job in failed if job], service.processes, status_dir())
    return failed
