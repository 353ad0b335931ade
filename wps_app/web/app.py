"""WSGI application: the PyWPS service at /wps, published outputs at /outputs/, /health,
/metrics.

`gunicorn wps_app.app:application` serves it; `create_app(cfgfiles)` builds another one
(tests do). Configuration layering: repository pywps.cfg -> extra files -> $PYWPS_CFG ->
WPS_<SECTION>_<KEY> environment variables; PyWPS sees the same merged values.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl

from pywps.exceptions import NoApplicableCode
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from processes import get_processes
from wps_app import __version__, instance, metrics, request_ids
from wps_app.core.wms import LayerCatalog
from wps_app.jobs import JobStore, Limits
from wps_app.ogcapi import build as build_ogcapi
from wps_app.ogcapi.service import OPERATION_ENVIRON_KEY
from wps_app.runtime import Runtime
from wps_app.settings import Settings, config_files, read_config
from wps_app.task import EdgeTask
from wps_app.web import auth, logs, operations, page
from wps_app.web.files import serve_output
from wps_app.wps import public_urls, pywps_compat, request_guard
from wps_app.wps.config import pywps_configuration
from wps_app.wps.exceptions import ServerBusyRetryLater
from wps_app.wps.job_status import publish_failures
from wps_app.wps.reaper import Reaper
from wps_app.wps.service import JOB_ID_ENVIRON_KEY, EdgeService

LOGGER = logging.getLogger(__name__)



class EdgeApp:
    """Routes requests: /wps (and / with WPS parameters, or POST) to PyWPS, / to the map
    page, /static/, /wms/<source> (the page's base map), /outputs/<job>/<file>, /health,
    /metrics. Every request gets an id (X-Request-ID), is counted for /metrics and is
    refused while the instance drains (wps_app.ops.gunicorn_drain)."""

    def __init__(self, service: EdgeService, runtime: Runtime, reaper: Reaper,
                 ogcapi=None) -> None:
        self.service = service
        self.ogcapi = ogcapi  # the OGC API - Processes app (wps_app.ogcapi), if mounted
        self.runtime = runtime
        self.reaper = reaper
        self.settings = runtime.settings
        settings = runtime.settings
        self.trusted_proxies = public_urls.parse_networks(settings.trusted_proxies)
        self._advertised: dict[str, dict[str, str]] | None = None
        self.max_request_bytes = settings.max_request_bytes
        self.keys = auth.KeyRing.load(settings.keys_file) if settings.keys_file else None
        self.gauges = metrics.StoreGauges(
            runtime.jobs, Limits(settings.parallel_processes, settings.max_queued_processes),
            int(settings.max_output_mb * 1024 * 1024), instance.draining)

    def _refresh_layers(self) -> None:
        """Keep the advertised layer lists in step with the catalogs (which the background
        probes keep fresh: nothing here waits on a WMS)."""
        layers = {name: catalog.cached() for name, catalog in self.runtime.catalogs.items()}
        if layers == self._advertised:  # the usual case: nothing to rebuild
            return
        self._advertised = layers
        for process in self.service.processes.values():
            refresh = getattr(process, "refresh_layers", None)
            if refresh is not None:
                refresh(layers)

    def _health(self, upstream: bool) -> Response:
        """/health: 200 while this instance serves, "degraded" when a WMS source is down
        (a load balancer keeps it: it still answers, and other sources may work);
        /health/upstream: 503 while any source is down (for monitoring). Both read the
        background probes' last result, at most [wms] probe_interval seconds old: a health
        check never waits on a WMS."""
        sources = {}
        for name, catalog in self.runtime.catalogs.items():
            state = catalog.state()
            sources[name] = {"status": state.status, "since": _iso(state.since),
                             "checked": _iso(state.checked)}
        all_ok = all(source["status"] == "ok" for source in sources.values())
        body = {"status": "ok" if all_ok else "degraded", "version": __version__,
                "instance": self.settings.instance, "sources": sources}
        if self.settings.expose_pid:  # [server] expose_pid: which gunicorn master answered
            body["pid"] = os.getppid()  # a gunicorn worker's parent is its master
        status = 503 if upstream and not all_ok else 200
        if instance.draining():  # SIGTERM: a load balancer takes this instance out first
            body["status"], status = "draining", 503
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _reap_jobs(self) -> None:
        try:
            self.reaper.run_if_due()
        except Exception:  # the reaper must never break the request that triggered it
            LOGGER.exception("job reaper failed")

    def __call__(self, environ, start_response):
        """Serve one request as its X-Request-ID (every log line names it, the answer
        carries it), log one line for it (operation, status, duration) and count it."""
        started = time.perf_counter()
        status_holder: list[str] = []
        request_id = request_ids.from_environ(environ)
        token = request_ids.set_current(request_id)

        def recording_start_response(status, headers, exc_info=None):
            status_holder.append(status)
            headers = [(name, value) for name, value in headers
                       if name.lower() != "x-request-id"]
            headers.append((request_ids.HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            refusal = self._authenticate(environ)
            if refusal is None:
                refusal = self._refuse_while_draining(environ)
            if refusal is not None:
                return refusal(environ, recording_start_response)
            return self._route(environ, recording_start_response)
        finally:
            status = status_holder[0].split()[0] if status_holder else "-"
            operation = _operation(environ)
            LOGGER.info(
                "request method=%s path=%s operation=%s identifier=%s job=%s status=%s "
                "duration_ms=%.1f client=%s", environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"), _logged_operation(environ, operation),
                _identifier(environ) or "-", environ.get(JOB_ID_ENVIRON_KEY) or "-",
                status, (time.perf_counter() - started) * 1000,
                environ.get(auth.CLIENT_ENVIRON_KEY, "-"),
            )
            metrics.count_request(_operation_label(environ, operation), status,
                                  operations.exception_code(environ))
            request_ids.reset(token)

    @staticmethod
    def _refuse_while_draining(environ: dict) -> Response | None:
        """In the drain's second phase (after [server] drain_s, once a load balancer had
        time to take this instance out), 503 with Retry-After for any new request but
        /health and /metrics (nothing was done: a load balancer may send it elsewhere)."""
        path = environ.get("PATH_INFO", "") or "/"
        if path in instance.UNTRACKED_PATHS or not instance.refusing():
            return None
        message = "this instance is shutting down; please send the request again"
        if path in ("/", "/wps", "/wps/") and not page.wants_page(environ):
            return ServerBusyRetryLater(message, retry_after_s=1).get_response(environ)
        response = Response(json.dumps({"status": 503, "detail": message}), status=503,
                            content_type="application/json")
        response.headers["Retry-After"] = "1"
        return response

    def _check_owner(self, environ: dict, relative: str) -> None:
        """With API keys configured, a job's status document and outputs are its owner's:
        NotFound for anyone else (as if they did not exist)."""
        if self.keys is None:
            return
        job_id = relative.split("/", 1)[0].removesuffix(".xml")
        known, owner = self.runtime.jobs.output_owner(job_id)
        if not known or owner != environ.get(auth.CLIENT_ENVIRON_KEY):
            raise NotFound()

    def _authenticate(self, environ: dict) -> Response | None:
        """With API keys configured: the 401 for a request without a valid key (None when
        it may go on); the client's name goes into the environ for logs and job owners.
        Without keys, the client is its address (after trusted-proxy resolution)."""
        if self.keys is None:
            environ[auth.CLIENT_ENVIRON_KEY] = public_urls.client_address(
                environ, self.trusted_proxies)
            return None
        name = self.keys.name_of(auth.presented_key(environ))
        if name is not None:
            environ[auth.CLIENT_ENVIRON_KEY] = name
            return None
        if auth.is_public(environ) or self._is_ogcapi_preflight(environ):
            return None
        message = "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        path = environ.get("PATH_INFO", "") or "/"
        if path in ("/", "/wps", "/wps/"):
            response = NoApplicableCode(message, code=401).get_response(environ)
        else:
            response = Response(json.dumps({"status": 401, "detail": message}), status=401,
                                content_type="application/json")
        response.headers["WWW-Authenticate"] = 'Bearer realm="wps"'
        return response

    @staticmethod
    def _is_ogcapi_preflight(environ: dict) -> bool:
        """A browser's CORS preflight to /ogcapi: browsers send it without credentials, and
        it answers nothing but the CORS headers."""
        path = environ.get("PATH_INFO", "") or "/"
        return environ.get("REQUEST_METHOD") == "OPTIONS" and (
            path == "/ogcapi" or path.startswith("/ogcapi/"))

    def _route(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        if page.wants_page(environ):  # `/` without WPS parameters: the map page
            response = page.page_response(self.settings, self.runtime.catalogs)
            return response(environ, start_response)
        if path in ("/", "/wps", "/wps/"):
            if environ.get("REQUEST_METHOD") == "POST":
                try:
                    request_guard.read_checked_body(environ, self.max_request_bytes)
                except request_guard.RejectedBody as exc:
                    refusal = NoApplicableCode(str(exc), code=exc.status)
                    return refusal(environ, start_response)
            self._refresh_layers()
            self._reap_jobs()
            with public_urls.serving(environ, self.trusted_proxies):
                # PyWPS renders the whole body inside this call (no lazy iterator).
                return self.service(environ, start_response)
        if self.ogcapi is not None and (path == "/ogcapi" or path.startswith("/ogcapi/")):
            return self.ogcapi(environ, start_response)
        request = Request(environ)
        if path.startswith("/outputs/") and request.method in ("GET", "HEAD"):
            if path.endswith(".xml") and path.count("/") == 2:  # a status document
                self._reap_jobs()
            try:
                relative = path[len("/outputs/") :]
                self._check_owner(environ, relative)
                response = serve_output(environ, self.settings.output_path, relative)
            except NotFound as exc:
                response = exc.get_response(environ)
        elif path.startswith("/static/") and request.method in ("GET", "HEAD"):
            response = self._static(environ, path[len("/static/"):])
        elif path.startswith("/wms/") and path.count("/") == 2:
            response = page.wms_response(environ, self.settings, self.runtime.catalogs,
                                         path[len("/wms/"):])
        elif path in ("/health", "/health/upstream"):
            response = self._health(upstream=path == "/health/upstream")
        elif path == "/metrics" and request.method in ("GET", "HEAD"):
            # with API keys configured, a key is needed (as for any path but /health)
            response = Response(metrics.render(self.gauges), content_type=metrics.CONTENT_TYPE)
        else:
            response = NotFound().get_response(environ)
        return response(environ, start_response)


    @staticmethod
    def _static(environ: dict, relative: str) -> Response:
        """/static/leaflet/... (Debian's libjs-leaflet) and /static/page/... (the page's
        own files); NotFound for anything else."""
        folder, _, rest = relative.partition("/")
        roots = {"leaflet": page.LEAFLET_DIR, "page": page.STATIC_DIR}
        try:
            if folder not in roots:
                raise NotFound()
            return page.static_response(environ, roots[folder], rest)
        except NotFound as exc:
            return exc.get_response(environ)


def _iso(seconds: float | None) -> str | None:
    """Seconds since the epoch as an ISO 8601 UTC time."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


_POST_OPERATION = re.compile(rb"<(?:[\w.-]+:)?(Execute|GetCapabilities|DescribeProcess)\b")


def _query(environ: dict, key: str) -> str:
    for name, value in parse_qsl(environ.get("QUERY_STRING", "")):
        if name.lower() == key:
            return value[:80]
    return ""


def _operation(environ: dict) -> str:
    if environ.get("REQUEST_METHOD") == "POST":
        stream = environ.get("wsgi.input")
        head = stream.getvalue()[:2048] if isinstance(stream, io.BytesIO) else b""
        match = _POST_OPERATION.search(head)
        return match.group(1).decode().lower() if match else "-"
    return _query(environ, "request").lower() or "-"


# the process identifier of a POSTed WPS request (its first ows:Identifier)
_POST_IDENTIFIER = re.compile(rb"<(?:[\w.-]+:)?Identifier\b[^>]*>\s*([^<\s]{1,80})\s*<")
_OGCAPI_PROCESS = re.compile(r"^/ogcapi/processes/([^/]{1,80})")


def _identifier(environ: dict) -> str:
    """The process a request names: `identifier` of a KVP request, the first ows:Identifier
    of a POSTed one, the path's process of an OGC API one; "" for none. Client text: the
    log formatter escapes it."""
    given = _query(environ, "identifier")
    if given:
        return given
    process = _OGCAPI_PROCESS.match(environ.get("PATH_INFO", "") or "")
    if process:
        return process.group(1)
    stream = environ.get("wsgi.input")
    if environ.get("REQUEST_METHOD") == "POST" and isinstance(stream, io.BytesIO):
        match = _POST_IDENTIFIER.search(stream.getvalue()[:4096])
        return match.group(1).decode("utf-8", "replace") if match else ""
    return ""


def _logged_operation(environ: dict, wps_request: str) -> str:
    """The operation of the request line: the WPS request's name, or the OGC API route
    the binding matched."""
    if wps_request == "-" and (environ.get("PATH_INFO") or "").startswith("/ogcapi"):
        return environ.get(OPERATION_ENVIRON_KEY) or "-"
    return wps_request


def _operation_label(environ: dict, wps_request: str) -> str:
    """The request's operation as /metrics labels it (wps_app.web.operations)."""
    path = environ.get("PATH_INFO", "") or "/"
    if path in ("/", "/wps", "/wps/") and not page.wants_page(environ):
        return operations.wps_operation(environ, wps_request)
    if path == "/ogcapi" or path.startswith("/ogcapi/"):
        return operations.ogcapi_operation(environ)
    return operations.path_operation(path)


def create_app(cfgfiles: list[str | Path] | None = None, *,
               catalogs: Mapping[str, LayerCatalog] | None = None) -> EdgeApp:
    """Build the WSGI application from the layered configuration.

    `catalogs` (source name -> layer catalog) replaces the WMS capabilities catalogs, for
    in-process tests; by default each configured source gets one.
    """
    parser = read_config(config_files(cfgfiles))
    settings = Settings.from_parser(parser)
    settings.output_path.mkdir(parents=True, exist_ok=True)
    settings.work_path.mkdir(parents=True, exist_ok=True)
    if settings.database.startswith("sqlite:///"):
        Path(settings.database[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    logs.configure(secrets=settings.secret_values)
    store = JobStore.from_url(settings.database, lease_s=settings.lease_s,
                              max_runtime_s=settings.max_runtime_s)
    store.migrate()
    remote = None
    if settings.processing_mode == "dask":  # async jobs run on the Dask cluster
        from wps_app.cluster.submit import DaskJobs

        remote = DaskJobs(settings.dask_scheduler)
    pywps_compat.install(pywps_configuration(parser, settings), store,
                         Limits(settings.parallel_processes, settings.max_queued_processes),
                         settings.output_path, remote)
    runtime = (Runtime.build(settings, store, remote) if catalogs is None
               else Runtime(settings, catalogs, store, remote))
    for catalog in runtime.catalogs.values():
        catalog.start()  # start-up never waits on a WMS: the layer lists fill in meanwhile
    service = EdgeService(get_processes(runtime))
    ogcapi = build_ogcapi(  # WPS jobs /ogcapi ends (dismissed, reaped) get their documents
        EdgeTask(runtime), public_urls.parse_networks(settings.trusted_proxies),
        settings.work_path.parent / "ogcapi",
        lambda jobs: publish_failures(jobs, service.processes, settings.output_path))
    return EdgeApp(service, runtime, Reaper(store, service, settings.output_path), ogcapi)

