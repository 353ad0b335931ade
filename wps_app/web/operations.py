"""What a request was, as a bounded label for /metrics: its operation and outcome.

The bindings leave what only they know in the WSGI environ: WPS whether an Execute ran
sync or async (wps_app.wps.service.EXECUTE_MODE_ENVIRON_KEY) and the exceptionCode of an
ExceptionReport (wps_app.wps.pywps_compat.EXCEPTION_CODE_ENVIRON_KEY); OGC API its route
and problem type (wps_app.ogcapi.service.OPERATION_ENVIRON_KEY, PROBLEM_ENVIRON_KEY).
Anything a client typed becomes one of the fixed values below, never a label of its own.

Operations: `wps:GetCapabilities`, `wps:DescribeProcess`, `wps:Execute:sync`,
`wps:Execute:async`, `wps:Execute` (refused before its response form was read),
`wps:other`; `ogcapi:<route>` (landing, conformance, openapi, processes, process,
execution:sync, execution:async, jobs, job, dismiss, results, preflight, other);
`status` (a WPS status document), `outputs`, `health`, `health_upstream`, `metrics`,
`page`, `static`, `wms` (the page's base map), `other`.
"""

from __future__ import annotations

from wps_app.ogcapi.service import OPERATION_ENVIRON_KEY, PROBLEM_ENVIRON_KEY
from wps_app.wps.exceptions import WPS_EXCEPTION_CODES
from wps_app.wps.pywps_compat import EXCEPTION_CODE_ENVIRON_KEY
from wps_app.wps.service import EXECUTE_MODE_ENVIRON_KEY

_WPS = {"getcapabilities": "GetCapabilities", "describeprocess": "DescribeProcess",
        "execute": "Execute"}
OGCAPI_OPERATIONS = frozenset({
    "landing", "conformance", "openapi", "processes", "process", "execution:sync",
    "execution:async", "jobs", "job", "dismiss", "results", "preflight"})
_MAX_PROBLEM = 40


def wps_operation(environ: dict, request_name: str) -> str:
    """The label of a request to /wps whose `request` (lower case, or '-') is known."""
    name = _WPS.get(request_name)
    if name is None:
        return "wps:other"
    mode = environ.get(EXECUTE_MODE_ENVIRON_KEY)
    if name == "Execute" and mode in ("sync", "async"):
        return f"wps:Execute:{mode}"
    return f"wps:{name}"


def ogcapi_operation(environ: dict) -> str:
    """The label of a request to /ogcapi (its route, as the binding matched it)."""
    route = environ.get(OPERATION_ENVIRON_KEY)
    return f"ogcapi:{route}" if route in OGCAPI_OPERATIONS else "ogcapi:other"


def path_operation(path: str) -> str:
    """The label of a request to a path outside /wps and /ogcapi."""
    if path.startswith("/outputs/"):
        rest = path[len("/outputs/"):]
        return "status" if rest.endswith(".xml") and "/" not in rest else "outputs"
    if path == "/health":
        return "health"
    if path == "/health/upstream":
        return "health_upstream"
    if path == "/metrics":
        return "metrics"
    if path == "/":
        return "page"
    if path.startswith("/static/"):
        return "static"
    if path.startswith("/wms/"):
        return "wms"
    return "other"


def exception_code(environ: dict) -> str:
    """The WPS exceptionCode or OGC API problem type the answer carried, or ''."""
    code = environ.get(EXCEPTION_CODE_ENVIRON_KEY)
    if code is not None:
        return code if code in WPS_EXCEPTION_CODES else "other"
    problem = environ.get(PROBLEM_ENVIRON_KEY)
    if problem:
        # a type URI of ours or the standard's: its last segment names the condition
        tail = problem.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return tail[:_MAX_PROBLEM] or "other"
    return ""
