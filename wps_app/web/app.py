"""WSGI application: the PyWPS service at /wps, published outputs at /outputs/, /health.

`gunicorn wps_app.app:application` serves it; `create_app(cfgfiles)` builds another one
(tests do). Configuration layering: repository pywps.cfg -> extra files -> $PYWPS_CFG ->
WPS_<SECTION>_<KEY> environment variables; PyWPS sees the same merged values.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import mimetypes
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl

import pywps.configuration as pywps_config
from pywps.exceptions import NoApplicableCode
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from processes import get_processes
from wps_app import __version__, context
from wps_app.core.errors import WmsError
from wps_app.core.wms import fetch_layers
from wps_app.jobs import store as jobs
from wps_app.settings import REPO_ROOT, Settings, config_files, load_settings, read_config
from wps_app.wps import public_urls, request_guard, responses
from wps_app.wps.service import EdgeService

LOGGER = logging.getLogger(__name__)

_CONTENT_TYPES = {
    ".png": "image/png",
    ".tif": "image/tiff",
    ".xml": "text/xml",
    ".pgw": "text/plain",
}


def _configure_pywps(files: list[Path], settings: Settings) -> None:
    """Load PyWPS's global configuration from the same files, env overrides and paths."""
    pywps_config.load_configuration([str(f) for f in files if f.exists()])
    merged = read_config(files)
    for section in merged.sections():
        if not pywps_config.CONFIG.has_section(section):
            pywps_config.CONFIG.add_section(section)
        for key, value in merged.items(section):
            pywps_config.CONFIG.set(section, key, value)
    pywps_config.CONFIG.set("server", "outputpath", str(settings.output_path))
    pywps_config.CONFIG.set("server", "workdir", str(settings.work_path))
    pywps_config.CONFIG.set("server", "outputurl", settings.output_url)
    database = pywps_config.CONFIG.get("logging", "database")
    if database.startswith("sqlite:///") and not database.startswith("sqlite:////"):
        relative = database[len("sqlite:///") :]
        if relative != ":memory:":
            path = (REPO_ROOT / relative).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            pywps_config.CONFIG.set("logging", "database", f"sqlite:///{path}")
    abstract = pywps_config.CONFIG.get("metadata:main", "identification_abstract",
                                       fallback="")
    pywps_config.CONFIG.set("metadata:main", "identification_abstract",
                            f"{abstract} Service version {__version__}.".strip())
    settings.output_path.mkdir(parents=True, exist_ok=True)
    settings.work_path.mkdir(parents=True, exist_ok=True)


class EdgeApp:
    """Routes requests: /wps (and /) to PyWPS, /outputs/<job>/<file>, /health."""

    def __init__(self, service: EdgeService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.trusted_proxies = public_urls.parse_networks(settings.trusted_proxies)
        self._advertised: dict[str, dict[str, str]] | None = None
        self.max_request_bytes = request_guard.parse_size(
            pywps_config.get_config_value("server", "maxrequestsize") or "1mb"
        )

    def _refresh_layers(self) -> None:
        """Keep the advertised layer lists in step with the WMS capabilities (cached)."""
        layers: dict[str, dict[str, str]] = {}
        for name, catalog in context.catalogs().items():
            try:
                layers[name] = catalog.layers()
            except WmsError as exc:
                LOGGER.warning("WMS %s capabilities unavailable: %s", name, exc)
                layers[name] = catalog.cached()
        if layers == self._advertised:  # the usual case: nothing to rebuild
            return
        self._advertised = layers
        for process in self.service.processes.values():
            refresh = getattr(process, "refresh_layers", None)
            if refresh is not None:
                refresh(layers)

    def _output(self, request: Request, relative: str) -> Response:
        path = safe_join(str(self.settings.output_path), relative)
        if path is None or "/." in "/" + relative or not Path(path).is_file():
            raise NotFound()
        name = Path(path).name
        content_type = (
            "application/xml"
            if name.endswith(".aux.xml")
            else _CONTENT_TYPES.get(Path(name).suffix)
            or mimetypes.guess_type(name)[0]
            or "application/octet-stream"
        )
        handle = open(path, "rb")
        return Response(
            wrap_file(request.environ, handle),
            content_type=content_type,
            direct_passthrough=True,
            headers={"Content-Length": str(Path(path).stat().st_size)},
        )

    def _health(self) -> Response:
        """Readiness: this worker answers and every configured WMS answers GetCapabilities
        right now."""
        body: dict = {"status": "ok", "version": __version__, "sources": {}}
        status = 200
        for server in self.settings.wms_servers:
            try:
                layers = fetch_layers(self.settings.wms_source(server.name))
                body["sources"][server.name] = {"status": "ok", "layers": len(layers)}
            except WmsError as exc:
                body["sources"][server.name] = {"status": "unavailable", "reason": str(exc)}
                body["status"], status = "unavailable", 503
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _reap_jobs(self) -> None:
        try:
            if jobs.reap(self.settings.output_path, self.settings.max_runtime_s) is not None:
                self._drain_queue()
        except Exception:  # the reaper must never break the request that triggered it
            LOGGER.exception("job reaper failed")

    def _drain_queue(self) -> None:
        """Start a queued async job when there is room. PyWPS only starts the next queued
        job when a job ends normally, so a crashed job would stall the queue forever."""
        running, stored = jobs.counts()
        parallel = int(pywps_config.get_config_value("server", "parallelprocesses"))
        if stored and (parallel < 0 or running < parallel):
            launcher = copy.copy(next(iter(self.service.processes.values())))
            launcher.service, launcher.async_ = self.service, True
            launcher.launch_next_process()

    def __call__(self, environ, start_response):
        """Serve one request and log one line for it (operation, status, duration)."""
        started = time.perf_counter()
        status_holder: list[str] = []

        def recording_start_response(status, headers, exc_info=None):
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self._route(environ, recording_start_response)
        finally:
            LOGGER.info(
                "request method=%s path=%s operation=%s identifier=%s job=%s status=%s "
                "duration_ms=%.1f", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                _operation(environ), _query(environ, "identifier") or "-",
                context.pop_current_job() or "-",
                (status_holder[0].split()[0] if status_holder else "-"),
                (time.perf_counter() - started) * 1000,
            )

    def _route(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
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
        request = Request(environ)
        if path.startswith("/outputs/") and request.method in ("GET", "HEAD"):
            if path.endswith(".xml") and path.count("/") == 2:  # a status document
                self._reap_jobs()
            try:
                response = self._output(request, path[len("/outputs/") :])
            except NotFound as exc:
                response = exc.get_response(environ)
        elif path == "/health":
            response = self._health()
        else:
            response = NotFound().get_response(environ)
        return response(environ, start_response)


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


def create_app(cfgfiles: list[str | Path] | None = None) -> EdgeApp:
    """Build the WSGI application from the layered configuration."""
    files = config_files(cfgfiles)
    settings = load_settings(files)
    if not logging.getLogger().handlers:  # gunicorn sends stderr to its error log
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    responses.install()
    public_urls.install()
    jobs.install()
    _configure_pywps(files, settings)
    context.configure(settings)
    for name, catalog in context.catalogs().items():
        try:
            catalog.layers()
        except WmsError as exc:  # the service still starts; the layer list fills in later
            LOGGER.warning("WMS %s capabilities unavailable at start-up: %s", name, exc)
    return EdgeApp(EdgeService(get_processes()), settings)

