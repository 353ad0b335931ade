"""Every replacement of PyWPS behaviour, in one place, checked at start-up.

PyWPS is a dependency, not the standard: where it emits documents the OGC schemas reject,
loses jobs or wastes time, the fix is one entry of REPLACEMENTS below, each saying what
is replaced, by what and why, with the PyWPS versions it was checked against. No other
module of wps_app or processes defines, overrides or assigns a PyWPS name starting with
'_', or replaces a PyWPS function (tests/unit/test_pywps_compat.py enforces this).

`check()` runs before `install()` at start-up: it refuses to start on another PyWPS
version, or when a target is gone or its signature changed, rather than degrade silently.
"""

from __future__ import annotations

import configparser
import importlib
import inspect
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass

import pywps
import pywps.configuration as pywps_config
import pywps.response.basic as pywps_basic
from pywps import Process, Service
from pywps.exceptions import NoApplicableCode
from pywps.inout.storage.file import FileStorage
from pywps.response.execute import ExecuteResponse
from pywps.response.status import WPS_STATUS

from wps_app.wps import public_urls, responses

PYWPS_VERSIONS_CHECKED = ("4.8.1",)


@dataclass(frozen=True)
class Replacement:
    """One change to PyWPS: `target` is 'module:attribute[.attribute]'."""

    target: str
    by: str
    why: str
    signature: str | None = None  # of the target, as inspect.signature prints it
    upstream: str = ""  # an upstream issue, where there is one


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
        "PyWPS counts sync requests against async admission (a database query each) and "
        "refuses sync requests when parallelprocesses jobs of any kind run; the worker "
        "pool bounds sync requests. A queued job's first work folder is removed (PyWPS "
        "makes another when it launches it).", "(self, async_, wps_request, wps_response)"),
    Replacement(
        "pywps.app.Process:Process._run_async", "CompatProcess._run_async",
        "an accepted async job must be in the job store before it runs, so admission "
        "counts it and the reaper watches it (hook: job_accepted).",
        "(self, wps_request, wps_response)"),
    Replacement(
        "pywps.app.Process:Process._run_process", "CompatProcess._run_process",
        "the process that runs an async job records itself before the handler starts "
        "(hook: job_running).", "(self, wps_request, wps_response)"),
)


def _resolve(target: str):
    module_name, _, path = target.partition(":")
    value = importlib.import_module(module_name)
    for name in path.split("."):
        value = getattr(value, name)
    return value


def check() -> None:
    """Refuse to start unless PyWPS is a checked version and every target is as expected.

    Raises RuntimeError naming what differs.
    """
    if pywps.__version__ not in PYWPS_VERSIONS_CHECKED:
        raise RuntimeError(f"PyWPS {pywps.__version__} is not among the versions "
                           f"wps_app.wps.pywps_compat was checked on: {PYWPS_VERSIONS_CHECKED}")
    for replacement in REPLACEMENTS:
        try:
            target = _resolve(replacement.target)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(f"PyWPS has no {replacement.target}") from exc
        if replacement.signature is not None:
            original = _ORIGINALS.get(replacement.target, target)
            found = str(inspect.signature(original))
            if found != replacement.signature:
                raise RuntimeError(f"{replacement.target} now takes {found}, "
                                   f"not {replacement.signature}")


# --- the replacements -------------------------------------------------------------------

_ORIGINALS = {
    "pywps.exceptions:NoApplicableCode.get_response": NoApplicableCode.get_response,
    "pywps.configuration:get_config_value": pywps_config.get_config_value,
    "pywps.inout.storage.file:FileStorage.write": FileStorage.write,
    "pywps.response.execute:ExecuteResponse._update_status_doc":
        ExecuteResponse._update_status_doc,
}


def _get_config_value(section, option, default_value=""):
    overrides = public_urls.current_overrides()
    if overrides and (section, option) in overrides:
        return overrides[(section, option)]
    return _ORIGINALS["pywps.configuration:get_config_value"](section, option, default_value)


_VERSION_COMMENT = re.compile(rb"<!--\s*PyWPS[^>]*-->\s*")


def _exception_response(self, environ=None):
    """NoApplicableCode.get_response without the library's version comment."""
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
    final = os.path.join(self.target, destination)
    fd, tmp = tempfile.mkstemp(prefix=".status-", dir=os.path.dirname(final))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        os.unlink(tmp)
        raise
    return self.url(destination)


def _update_status_doc(self) -> None:
    """Render the status document only when someone can read it: async jobs store it at
    every change, a sync request only returns the final one, a raw output none."""
    original = _ORIGINALS["pywps.response.execute:ExecuteResponse._update_status_doc"]
    if self.store_status_file:
        original(self)
    elif self.status in (WPS_STATUS.SUCCEEDED, WPS_STATUS.FAILED) and not self.wps_request.raw:
        original(self)


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


class CompatProcess(Process):
    """pywps.Process with the private hooks of REPLACEMENTS overridden; subclasses get
    public hooks instead: job_accepted(job_id) and job_running(job_id, workdir)."""

    def job_accepted(self, job_id: str) -> None:
        """An async job was accepted (before it runs or is queued); default: nothing."""

    def job_running(self, job_id: str, workdir: str) -> None:
        """This process now runs async job `job_id`; default: nothing."""

    def _execute_process(self, async_, wps_request, wps_response):
        if async_:
            self.launched_now = False
            response = super()._execute_process(async_, wps_request, wps_response)
            if not self.launched_now:
                # queued: PyWPS makes a fresh work folder when it launches the job later
                shutil.rmtree(self.workdir, ignore_errors=True)
            return response
        wps_response._update_status(WPS_STATUS.ACCEPTED, "Request accepted", 0)
        return self._run_process(wps_request, wps_response)

    def _run_async(self, wps_request, wps_response):
        self.launched_now = True
        self.job_accepted(str(self.uuid))
        return super()._run_async(wps_request, wps_response)

    def _run_process(self, wps_request, wps_response):
        if getattr(self, "async_", False):  # sync requests do not pay for a job record
            self.job_running(str(self.uuid), self.workdir)
        return super()._run_process(wps_request, wps_response)


def install(config: configparser.ConfigParser) -> None:
    """Check PyWPS, then apply every module-level replacement (idempotent); `config` is
    what PyWPS reads as its configuration. The class hooks apply through CompatService
    and CompatProcess."""
    check()
    pywps_config.CONFIG = config
    pywps_config.get_config_value = _get_config_value
    pywps_basic.RelEnvironment = _shared_environment_factory
    pywps_basic.PackageLoader = lambda *_args, **_kwargs: None
    FileStorage.write = _atomic_write
    ExecuteResponse._update_status_doc = _update_status_doc
    NoApplicableCode.get_response = _exception_response
    importlib.import_module("pywps.app.Service").uuid = _RandomJobIds()
