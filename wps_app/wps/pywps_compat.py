"""Every replacement of PyWPS behaviour, in one place, checked at start-up.

PyWPS is a dependency, not the standard: where it emits documents the OGC schemas reject,
loses jobs or wastes time, the fix is one entry of REPLACEMENTS below, each saying what
is replaced, by what and why, with the PyWPS versions it was checked against. No other
module of wps_app or processes defines, overrides or assigns a PyWPS name starting with
'_', or replaces a PyWPS function (tests/unit/test_pywps_compat.py enforces this).

`check()` runs in `install()` at start-up: it refuses to start on another PyWPS version,
or when a target (replaced, or relied on: RELIED_ON) is gone or its signature changed,
rather than degrade silently.

Async jobs: PyWPS keeps its own job log (pywps.dblog), writes every request into it, counts
sync requests against the async limit, decides that a job died by looking for its process
id on the local machine, and never ends a job whose worker died. Here the JobStore
(wps_app.jobs) is the one record of async jobs, shared with the other bindings; PyWPS's log
is no longer written.

With `[processing] mode = dask` (install's `remote`), an admitted job is handed to the Dask
cluster instead of PyWPS's detached process; the worker rebuilds it from the stored
request (`run_here`, as PyWPS restarts a queued job) and runs it in its own thread, where a
job ended elsewhere or taken over by a newer attempt stops with JobAbandoned rather than
exiting the worker's process.
"""

from __future__ import annotations

import configparser
import copy
import importlib
import inspect
import json
import logging
import os
import re
import shutil
import threading
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pywps
import pywps.configuration as pywps_config
import pywps.response.basic as pywps_basic
from pywps import ComplexInput, Process, Service, dblog
from pywps.app.WPSRequest import WPSRequest
from pywps.exceptions import NoApplicableCode, ServerBusy
from pywps.inout.storage.file import FileStorage
from pywps.response.execute import ExecuteResponse
from pywps.response.status import WPS_STATUS

from wps_app import request_ids
from wps_app.core.writers import write_text_atomically
from wps_app.jobs import (
    Heartbeat,
    Job,
    JobAbandoned,
    JobStore,
    Limits,
    QueueFull,
    stop_runner,
)
from wps_app.runtime import RemoteJobs
from wps_app.wps import public_urls, responses
from wps_app.wps.job_status import BINDING, publish_failures

LOGGER = logging.getLogger(__name__)

PYWPS_VERSIONS_CHECKED = ("4.8.1",)
# Where an ExceptionReport leaves its exceptionCode in the WSGI environ (for /metrics).
EXCEPTION_CODE_ENVIRON_KEY = "wps_edge.exception_code"
NOT_STARTED = "the job could not be started; please submit it again"


@dataclass(frozen=True)
class Replacement:
    """One change to PyWPS: `target` is 'module:attribute[.attribute]'."""

    target: str
    by: str
    why: str
    signature: str | None = None  # of the target, as inspect.signature prints it
    upstream: str = ""  # an upstream issue, where there is one


_DBLOG_NOT_WRITTEN = ("the JobStore is the one record of async jobs; sync requests touch no "
                      "store (PyWPS's log cost 5-20 ms per Execute on a file SQLite)")
_STATUS = "(uuid, wps_status, message=None, status_percentage=None)"

REPLACEMENTS: tuple[Replacement, ...] = (
    Replacement(
        "pywps.configuration:CONFIG", "wps_app.wps.config.pywps_configuration()",
        "PyWPS re-reads the files with a parser that interpolates '%' and copies the "
        "environment into every section; it gets the values wps_app.settings read once."),
    Replacement(
        "pywps.configuration:get_config_value", "_get_config_value",
        "statusLocation and output URLs follow a trusted proxy's X-Forwarded-* headers per "
        "request (a thread-local override of [server] url and outputurl).",
        "(section, option, default_value='')"),
    Replacement(
        "pywps.response.basic:RelEnvironment", "responses.shared_environment",
        "PyWPS builds a jinja2 Environment (recompiling every template) per response; one "
        "shared environment also puts our schema-valid templates first."),
    Replacement(
        "pywps.response.basic:PackageLoader", "None (the shared environment has its loader)",
        "only ever called to build the per-response environment replaced above"),
    Replacement(
        "pywps.inout.storage.file:FileStorage.write", "_atomic_write",
        "PyWPS rewrites <job>.xml in place: a client polling statusLocation could read half "
        "a document. Temporary file + rename.",
        "(self, data, destination, data_format=None)"),
    Replacement(
        "pywps.response.execute:ExecuteResponse._update_status_doc", "_update_status_doc",
        "PyWPS renders the status document at every progress update of a sync request, and "
        "renders (base64-encodes) a raw output nobody reads as XML.", "(self)"),
    Replacement(
        "pywps.exceptions:NoApplicableCode.get_response", "_exception_response",
        "PyWPS writes its version into every ExceptionReport (<!-- PyWPS 4.8.1 -->): "
        "nothing about the stack is told to clients.", "(self, environ=None)"),
    Replacement(
        "pywps.app.Service:uuid", "_RandomJobIds()",
        "PyWPS names jobs (and so output folders and status documents) by uuid1: MAC address, "
        "time and a fixed clock sequence, guessable from a job submitted alongside; job ids "
        "are uuid4."),
    Replacement(
        "pywps.app.Service:Service._parse_and_execute", "CompatService._parse_and_execute",
        "WPS 1.0.0: a ResponseDocument that lists outputs gets only those; PyWPS returns "
        "every output. A refused request's work folder (made before any check) is removed.",
        "(self, process, wps_request, uuid)"),
    Replacement(
        "pywps.app.Process:Process._execute_process", "CompatProcess._execute_process",
        "Admission is one serialised transaction of the JobStore (PyWPS counted, then "
        "acted: two workers could take the last slot); sync requests are bounded by the "
        "worker pool only (PyWPS refused them when parallelprocesses jobs of any kind ran); "
        "a queued job's first work folder is removed (another is made when it starts).",
        "(self, async_, wps_request, wps_response)"),
    Replacement(
        "pywps.app.Process:Process._run_process", "CompatProcess._run_process",
        "the job's process holds a lease in the JobStore (heartbeat thread), records its "
        "statuses there first, and stops itself at [jobs] max_runtime.",
        "(self, wps_request, wps_response)"),
    Replacement(
        "pywps.app.Process:Process.launch_next_process", "CompatProcess.launch_next_process",
        "the queue lives in the JobStore; only the end of an async job frees a slot (PyWPS "
        "also looked, one query, after every sync request).", "(self)"),
    Replacement("pywps.dblog:log_request", "_log_request (nothing)", _DBLOG_NOT_WRITTEN,
                "(uuid, request)"),
    Replacement("pywps.app.Service:log_request", "_log_request (nothing)",
                "imported by name from dblog; " + _DBLOG_NOT_WRITTEN, "(uuid, request)"),
    Replacement("pywps.dblog:store_status", "_store_status (nothing)",
                "a job's own process records its statuses in the JobStore", _STATUS),
    Replacement("pywps.app.Service:store_status", "_store_status (nothing)",
                "imported by name from dblog; the JobStore records statuses", _STATUS),
    Replacement("pywps.response.basic:store_status", "_store_status (nothing)",
                "imported by name from dblog; the JobStore records statuses", _STATUS),
    Replacement("pywps.dblog:update_pid", "_update_pid (nothing)",
                "process ids decide nothing: leases do", "(uuid, pid)"),
    Replacement("pywps.dblog:get_process_counts", "_get_process_counts",
                "the JobStore's counts of async jobs (running, queued), should anything "
                "still call it", "()"),
    Replacement("pywps.dblog:cleanup_crashed_process", "_cleanup_crashed_process (nothing)",
                "it failed jobs whose process id was missing on this machine; expired "
                "leases replace it", "()"),
)

# PyWPS callables used here as they are: their signatures are checked as well.
RELIED_ON: tuple[tuple[str, str], ...] = (
    ("pywps.app.Process:Process._run_async", "(self, wps_request, wps_response)"),
    ("pywps.app.Process:Process._set_uuid", "(self, uuid)"),
    ("pywps.app.Process:Process._setup_status_storage", "(self)"),
    ("pywps.app.Process:Process.setup_outputs_from_wps_request", "(self, wps_request)"),
    ("pywps.app.Process:Process.clean", "(self)"),
    ("pywps.app.Service:Service.prepare_process_for_execution", "(self, identifier)"),
    ("pywps.response.execute:ExecuteResponse._update_status",
     "(self, status, message, status_percentage, clean=True)"),
    ("pywps.app.WPSRequest:WPSRequest.restore_json", "(self, value)"),
)


def _resolve(target: str):
    module_name, _, path = target.partition(":")
    value = importlib.import_module(module_name)
    for name in path.split("."):
        value = getattr(value, name)
    return value


_ORIGINALS: dict[str, object] = {}


def _remember_originals() -> None:
    for replacement in REPLACEMENTS:
        if replacement.target not in _ORIGINALS:
            try:
                _ORIGINALS[replacement.target] = _resolve(replacement.target)
            except (ImportError, AttributeError):
                pass


_remember_originals()


def check() -> None:
    """Refuse to start unless PyWPS is a checked version and every target is as expected.

    Raises RuntimeError naming what differs.
    """
    if pywps.__version__ not in PYWPS_VERSIONS_CHECKED:
        raise RuntimeError(f"PyWPS {pywps.__version__} is not among the versions "
                           f"wps_app.wps.pywps_compat was checked on: {PYWPS_VERSIONS_CHECKED}")
    expected = [(r.target, r.signature) for r in REPLACEMENTS] + list(RELIED_ON)
    for target_name, signature in expected:
        try:
            target = _ORIGINALS.get(target_name) or _resolve(target_name)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(f"PyWPS has no {target_name}") from exc
        if signature is not None:
            found = str(inspect.signature(target))
            if found != signature:
                raise RuntimeError(f"{target_name} now takes {found}, not {signature}")


# --- documents and configuration --------------------------------------------------------

def _get_config_value(section, option, default_value=""):
    overrides = public_urls.current_overrides()
    if overrides and (section, option) in overrides:
        return overrides[(section, option)]
    return _ORIGINALS["pywps.configuration:get_config_value"](section, option, default_value)


_VERSION_COMMENT = re.compile(rb"<!--\s*PyWPS[^>]*-->\s*")


def _exception_response(self, environ=None):
    """NoApplicableCode.get_response without the library's version comment; its
    exceptionCode is noted in the request's environ."""
    if environ is not None:
        environ[EXCEPTION_CODE_ENVIRON_KEY] = self.name
    response = _ORIGINALS["pywps.exceptions:NoApplicableCode.get_response"](self, environ)
    response.set_data(_VERSION_COMMENT.sub(b"", response.get_data()))
    return response


class _RandomJobIds:
    """Stands in for the `uuid` module inside pywps.app.Service, whose only use of it is
    minting a request's id with uuid1(): here uuid1() is uuid4()."""

    UUID = uuid.UUID

    @staticmethod
    def uuid1() -> uuid.UUID:
        return uuid.uuid4()

    def __getattr__(self, name: str):
        return getattr(uuid, name)


def _shared_environment_factory(**_kwargs):
    return responses.shared_environment()


def _atomic_write(self: FileStorage, data, destination, data_format=None) -> str:
    """FileStorage.write, but readers see the old or the new document, never a mix."""
    os.makedirs(self.target, exist_ok=True)
    write_text_atomically(Path(self.target) / destination, data)
    return self.url(destination)


def _update_status_doc(self) -> None:
    """Render the status document only when someone can read it: async jobs store it at
    every change, a sync request only returns the final one, a raw output none."""
    original = _ORIGINALS["pywps.response.execute:ExecuteResponse._update_status_doc"]
    if self.store_status_file:
        original(self)
    elif self.status in (WPS_STATUS.SUCCEEDED, WPS_STATUS.FAILED) and not self.wps_request.raw:
        original(self)


# --- pywps.dblog ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Jobs:
    """What the PyWPS glue was handed at start-up."""

    store: JobStore
    limits: Limits
    status_dir: Path
    remote: RemoteJobs | None = None  # [processing] mode = dask: where jobs run


_jobs: _Jobs | None = None  # the one reference the glue keeps (install)


def installed_jobs() -> _Jobs:
    """The store, limits and status folder `install` was handed."""
    if _jobs is None:
        raise RuntimeError("wps_app.wps.pywps_compat.install() was not called")
    return _jobs


def _log_request(uuid, request) -> None:
    """Replaces pywps.dblog.log_request: nothing is logged."""


def _store_status(uuid, wps_status, message=None, status_percentage=None) -> None:
    """Replaces pywps.dblog.store_status: a job's own process records its statuses."""


def _update_pid(uuid, pid) -> None:
    """Replaces pywps.dblog.update_pid: process ids decide nothing."""


def _get_process_counts() -> tuple[int, int]:
    """Replaces pywps.dblog.get_process_counts: (async jobs running, queued) in the store."""
    jobs = installed_jobs()
    admission = jobs.store.admit(jobs.limits)
    return admission.running, admission.queued


def _cleanup_crashed_process() -> None:
    """Replaces pywps.dblog.cleanup_crashed_process: expired leases replace pid checks."""


# --- pywps.Service and pywps.Process ----------------------------------------------------

class CompatService(Service):
    """pywps.Service with the private hooks of REPLACEMENTS overridden."""

    def _parse_and_execute(self, process, wps_request, uuid):
        # `process` is this request's own deep copy, so trimming its outputs is local.
        if wps_request.outputs and not wps_request.raw:
            process.outputs = [o for o in process.outputs if o.identifier in wps_request.outputs]
        try:
            return super()._parse_and_execute(process, wps_request, uuid)
        except Exception:
            # A refusal (bad input, busy): PyWPS made the job's work folder before any
            # check ran, and would leave it behind empty.
            shutil.rmtree(process.workdir, ignore_errors=True)
            raise


class _JobRun:
    """Inside the job's own process: the lease, and the job's status updates.

    Every status update of the job goes to the store first, then (if the job is still this
    process's) to the status document, under one lock; the heartbeat thread takes the same
    lock to end an overdue job, so no later update can overwrite the failure. A process
    frozen between the two (given up for dead, its job failed elsewhere) may write one
    stale document on resuming; its next store call then finds the job lost, and it writes
    the failure back before it ends.
    """

    def __init__(self, jobs: _Jobs, process: Process, wps_response: ExecuteResponse):
        self.jobs = jobs
        self.store = jobs.store
        self.process = process
        self.response = wps_response
        self.job_id = str(process.uuid)
        self.attempt: int | None = None  # JobStore.start's number, once started
        # run_here (a Dask worker) marks the process: the run shares its process with
        # others, so it stops by raising in its own thread instead of exiting
        self.shared = getattr(process, "runs_in_shared_process", False)
        self.worker = getattr(process, "dask_worker", None)
        self._exit = stop_runner(threading.current_thread()) if self.shared else os._exit
        self.lock = threading.RLock()
        self._pywps_update_status = wps_response._update_status  # PyWPS's own, bound
        self.heartbeat = Heartbeat(self.store, self.job_id, on_lost=self._lost,
                                   on_overrun=self._overrun)

    def start(self) -> bool:
        """Mark the job running and start its heartbeat; False when it may not run."""
        if not self.shared:  # a process of its own: all its threads log its request id
            request_ids.pin(request_ids.current())
        self.attempt = self.store.start(self.job_id, self.process.workdir, worker=self.worker)
        if not self.attempt:
            LOGGER.warning("job %s ended before it could start", self.job_id)
            self._restore_failure()  # the accepting worker may have written over it
            self.process.clean()
            return False
        # this response object only (an instance attribute shadows the method)
        self.response._update_status = self._record
        self.heartbeat.start(self.attempt)
        return True

    def stop(self) -> None:
        """Stop renewing the lease (the job ended)."""
        self.heartbeat.stop()

    def _record(self, status, message, status_percentage, clean=True) -> None:
        with self.lock:
            try:
                if status == WPS_STATUS.SUCCEEDED:
                    ours = self.store.finish(self.job_id, str(message), self.attempt)
                elif status == WPS_STATUS.FAILED:
                    ours = self.store.fail(self.job_id, str(message), self.attempt)
                else:
                    percent = (self.response.status_percentage if status_percentage is None
                               else status_percentage)
                    ours = self.store.progress(self.job_id, percent, str(message),
                                               self.attempt)
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
                publish_failures([job], self.process.service.processes, self.jobs.status_dir)
        except Exception:
            LOGGER.exception("job %s: failure document not restored", self.job_id)

    def _lost(self) -> None:
        """Another instance ended the job (or a newer attempt took it over): make its
        document say so again, stop here."""
        with self.lock:  # no status update of this process runs meanwhile, or after
            LOGGER.warning("job %s was ended elsewhere; its process stops", self.job_id)
            self._restore_failure()
            self.process.clean()
            self._exit(0)

    def _overrun(self, message: str) -> None:
        """The maximum run time is reached: fail the job as any failure, then stop."""
        if not self.lock.acquire(timeout=self.store.lease_s):
            self._exit(1)  # the lease then expires and any instance fails the job
            return
        try:
            LOGGER.warning("job %s: %s", self.job_id, message)
            self.response._update_status(WPS_STATUS.FAILED, message, 100)
        finally:
            if self.shared:  # the job's thread goes on to its next write, refused
                self.lock.release()
            self._exit(1)


class CompatProcess(Process):
    """pywps.Process with the private hooks of REPLACEMENTS overridden: async jobs go
    through the JobStore (admission, lease, statuses, queue). Subclasses say what a job
    holds in the store through `admission` (JobStore.register's keyword arguments: owner,
    per-owner cap, reserved storage); the store's refusals (QueueFull as PyWPS's
    ServerBusy, ClientBusy, StorageExhausted) propagate to the service."""

    def admission(self, wps_request) -> dict:
        """Keyword arguments for JobStore.register; default: none."""
        return {}

    def __deepcopy__(self, memo: dict) -> CompatProcess:
        """The copy PyWPS makes of the registered process for every request
        (Service.prepare_process_for_execution: copy.deepcopy), so that requests share no
        state. A request sets the copy's attributes anew (uuid, workdir, service, status
        store) and fills its outputs: the outputs are the copy's own, deep-copied. The
        input declarations are only read (PyWPS parses a request's inputs into clones of
        them; only a ComplexInput's default is set in place, so those are copied), and so
        are the title, keywords and metadata: they are shared. Deep-copying the lot (each
        layer's allowed value) cost about 3 ms a request, for nothing.
        """
        clone = copy.copy(self)
        memo[id(self)] = clone
        clone.outputs = copy.deepcopy(self.outputs, memo)
        clone.inputs = [copy.deepcopy(i, memo) if isinstance(i, ComplexInput) else i
                        for i in self.inputs]
        if getattr(self.handler, "__self__", None) is self:  # bound to the copy instead
            clone.handler = types.MethodType(self.handler.__func__, clone)
        return clone

    def _execute_process(self, async_, wps_request, wps_response):
        if not async_:
            wps_response._update_status(WPS_STATUS.ACCEPTED, "Request accepted", 0)
            return self._run_process(wps_request, wps_response)
        jobs = installed_jobs()
        job_id = str(self.uuid)
        try:
            job = jobs.store.register(job_id, self.identifier, BINDING, limits=jobs.limits,
                                      workdir=self.workdir,
                                      payload=_payload(wps_request),
                                      request_id=request_ids.current(),
                                      **self.admission(wps_request))
        except QueueFull as exc:
            raise ServerBusy("Maximum number of processes in queue reached. "
                             "Please try later.") from exc
        LOGGER.info("job=%s accepted binding=%s queued=%s", job_id, BINDING,
                    str(job.queued).lower())
        try:
            if job.queued:
                wps_response._update_status(WPS_STATUS.ACCEPTED,
                                            "PyWPS Process stored in job queue", 0)
                # PyWPS makes a fresh work folder when it starts the job (start_queued)
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                wps_response._update_status(WPS_STATUS.ACCEPTED, "PyWPS Request accepted", 0)
                if jobs.remote is not None:
                    jobs.remote.submit(BINDING, job_id, _remote_context())
                    shutil.rmtree(self.workdir, ignore_errors=True)  # the worker makes its own
                else:
                    self._run_async(wps_request, wps_response)
        except Exception:
            if jobs.store.fail(job_id, NOT_STARTED):
                publish_failures([jobs.store.get(job_id)], self.service.processes,
                                 jobs.status_dir)
            raise
        return wps_response

    def _run_process(self, wps_request, wps_response):
        if not getattr(self, "async_", False):
            return super()._run_process(wps_request, wps_response)
        run = _JobRun(installed_jobs(), self, wps_response)
        if not run.start():
            return wps_response
        self.job_run = run  # launch_next_process stops it before forking the next job
        try:
            return super()._run_process(wps_request, wps_response)
        finally:
            run.stop()

    def launch_next_process(self):
        if not getattr(self, "async_", False):
            return
        run = getattr(self, "job_run", None)
        if run is not None:
            run.stop()  # no thread of ours crosses the fork below
        try:
            start_queued(self.service)
        except Exception:  # PyWPS's version swallowed errors too: the job itself is over
            LOGGER.exception("queued jobs not started")


def _remote_context() -> dict:
    """What a job run on another host needs besides its stored request (see _payload):
    the accepting request's public URLs."""
    return {"public": public_urls.current_public()}


# Keys of the stored request (_payload): the inputs the client sent, and the public URLs
# it was answered with.
GIVEN_INPUTS_KEY = "edge_given_inputs"
PUBLIC_KEY = "edge_public"


def _payload(wps_request) -> bytes:
    """The request as the job store keeps it: PyWPS's JSON (inputs with PyWPS's defaults
    filled in) plus the names of the inputs the client sent (wps_app.wps.service sets
    `given_inputs`) and the request's public URLs (public_urls.current_public), so that a
    job started later, from the queue or on a Dask worker, validates what was asked (a
    bbox without width or height keeps its aspect) and names the URLs its client knows."""
    stored = json.loads(wps_request.json)
    given = getattr(wps_request, "given_inputs", None)
    if given is not None:
        stored[GIVEN_INPUTS_KEY] = sorted(given)
    public = public_urls.current_public()
    if public is not None:
        stored[PUBLIC_KEY] = public
    return json.dumps(stored, allow_nan=False).encode("utf-8")


def _stored_public(job: Job) -> dict[str, str] | None:
    """The public URLs the request that submitted `job` was answered with (None: the
    configured ones), from its stored request."""
    public = json.loads((job.payload or b"{}").decode("utf-8")).get(PUBLIC_KEY)
    return public if isinstance(public, dict) else None


def _restored(service: Service, job: Job):
    """(process, request, response) of stored job `job`, as PyWPS 4.8.1's
    launch_next_process rebuilds a stored request."""
    request = WPSRequest()
    # saved by us at admission (_payload; literal inputs only), so trusted
    stored = json.loads((job.payload or b"{}").decode("utf-8"))
    request.restore_json(stored)
    if isinstance(stored.get(GIVEN_INPUTS_KEY), list):
        request.given_inputs = frozenset(stored[GIVEN_INPUTS_KEY])
    process = service.prepare_process_for_execution(job.process_id)
    process._set_uuid(job.job_id)
    process._setup_status_storage()
    process.async_ = True
    process.setup_outputs_from_wps_request(request)
    response = ExecuteResponse(request, process=process, uuid=job.job_id)
    response.store_status_file = True
    return process, request, response


def _launch(service: Service, job: Job) -> None:
    """Start queued job `job` in the background: on the Dask cluster with mode = dask,
    else in PyWPS's detached process."""
    remote = installed_jobs().remote
    public = _stored_public(job)  # its client's, not those of whoever starts it
    if remote is not None:
        remote.submit(BINDING, job.job_id, {"public": public})
        return
    process, request, response = _restored(service, job)
    with public_urls.using(public):  # the job's forked process inherits them
        process._run_async(request, response)


def run_here(service: Service, job: Job, worker: str | None) -> None:
    """Run admitted job `job` in this thread (on a Dask worker): rebuilt from its stored
    request, it runs as PyWPS's detached process would run it, as a new attempt."""
    process, request, response = _restored(service, job)
    process.runs_in_shared_process = True  # _JobRun: stop by raising, never exit
    process.dask_worker = worker
    try:
        process._run_process(request, response)
    except JobAbandoned:
        LOGGER.info("job=%s abandoned by this attempt (ended elsewhere or rerun)",
                    job.job_id)


def start_queued(service: Service) -> list[Job]:
    """Start the queued WPS jobs there is room for now; returns those that could not be
    started (failed, their status documents rewritten)."""
    jobs = installed_jobs()
    failed = []
    for job in jobs.store.drain(jobs.limits, binding=BINDING):
        try:
            with request_ids.bound(request_ids.of_job(job)):  # its own, not this one's
                _launch(service, job)
        except Exception:
            LOGGER.exception("queued job %s could not be started", job.job_id)
            if jobs.store.fail(job.job_id, NOT_STARTED):
                failed.append(jobs.store.get(job.job_id))
    publish_failures([job for job in failed if job], service.processes, jobs.status_dir)
    return failed


def install(config: configparser.ConfigParser, store: JobStore, limits: Limits,
            status_dir: Path, remote: RemoteJobs | None = None) -> None:
    """Check PyWPS, then apply every module-level replacement (idempotent).

    Parameters
    ----------
    config
        What PyWPS reads as its configuration (wps_app.wps.config).
    store, limits
        The app's job store (migrated) and async limits.
    status_dir
        Where status documents live ([server] outputpath).
    remote
        Where admitted jobs run with [processing] mode = dask; None: detached processes.
    """
    global _jobs
    check()
    _jobs = _Jobs(store, limits, status_dir, remote)
    pywps_config.CONFIG = config
    pywps_config.get_config_value = _get_config_value
    pywps_basic.RelEnvironment = _shared_environment_factory
    pywps_basic.PackageLoader = lambda *_args, **_kwargs: None
    FileStorage.write = _atomic_write
    ExecuteResponse._update_status_doc = _update_status_doc
    NoApplicableCode.get_response = _exception_response
    service_module = importlib.import_module("pywps.app.Service")  # the module
    service_module.uuid = _RandomJobIds()
    service_module.log_request = _log_request
    service_module.store_status = _store_status
    pywps_basic.store_status = _store_status
    dblog.log_request = _log_request
    dblog.store_status = _store_status
    dblog.update_pid = _update_pid
    dblog.get_process_counts = _get_process_counts
    dblog.cleanup_crashed_process = _cleanup_crashed_process
