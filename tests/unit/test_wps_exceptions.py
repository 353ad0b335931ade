"""Core errors become WPS 1.0.0 exceptions in one place, with standard codes only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pywps import exceptions as pywps_exceptions

from wps_app.core import errors
from wps_app.wps.exceptions import WPS_EXCEPTION_CODES, from_core

REPO_ROOT = Path(__file__).resolve().parents[2]

# OGC 05-007r7 table 62 (WPS 1.0.0) plus OWS 1.1 (OGC 06-121r3 table 25), typed here
# from the standards, not from the code under test.
STANDARD_CODES = {
    "MissingParameterValue", "InvalidParameterValue", "NoApplicableCode", "NotEnoughStorage",
    "ServerBusy", "FileSizeExceeded", "VersionNegotiationFailed", "OperationNotSupported",
}


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def _instance(cls: type) -> errors.EdgeServiceError:
    if issubclass(cls, errors.InvalidInput):
        return cls("bad value", "layer")
    return cls("it went wrong")


def test_the_table_is_the_standards():
    assert WPS_EXCEPTION_CODES == STANDARD_CODES


CORE_ERRORS = [errors.EdgeServiceError, *_all_subclasses(errors.EdgeServiceError)]


@pytest.mark.parametrize("cls", CORE_ERRORS, ids=lambda c: c.__name__)
def test_every_core_error_maps_to_a_standard_code_and_status(cls):
    """Walks every core error class: a WPS 1.0.0 exceptionCode and an explicit status."""
    exception = from_core(_instance(cls))
    assert exception.name in STANDARD_CODES
    assert exception.code in {400, 500, 502, 503, 504, 507}
    assert exception.description


@pytest.mark.parametrize(("error", "code", "status", "locator"), [
    (errors.MissingInput("lat is required", "lat"), "MissingParameterValue", 400, "lat"),
    (errors.InvalidInput("unknown layer", "layer"), "InvalidParameterValue", 400, "wms"),
    (errors.InvalidInput("too wide", "width"), "InvalidParameterValue", 400, "width"),
    (errors.StorageFull("full"), "NotEnoughStorage", 507, ""),
    (errors.Busy("queue full", retry_after_s=12), "ServerBusy", 503, ""),
    (errors.WmsUnavailable("refused", source="ortho"), "NoApplicableCode", 503, "ortho"),
    (errors.WmsTimeout("slow"), "NoApplicableCode", 504, "wms"),
    (errors.WmsBadResponse("HTTP 500", http_status=500), "NoApplicableCode", 502, "wms"),
    (errors.WmsServiceException("refused", code="LayerNotDefined"), "NoApplicableCode", 502,
     "wms"),
    (errors.OutputError("disk"), "NoApplicableCode", 500, ""),
])
def test_each_condition_gets_its_code_status_and_locator(error, code, status, locator):
    exception = from_core(error)
    assert (exception.name, exception.code, exception.locator) == (code, status, locator)


def test_server_busy_says_when_to_retry():
    response = from_core(errors.Busy("queue full", retry_after_s=12)).get_response(
        {"HTTP_ACCEPT": "text/xml"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "12"
    assert b'exceptionCode="ServerBusy"' in response.get_data()


def _pywps_exception_names() -> set[str]:
    return {name for name, value in vars(pywps_exceptions).items()
            if isinstance(value, type) and issubclass(value, pywps_exceptions.NoApplicableCode)}


def test_only_the_exceptions_module_subclasses_pywps_exceptions():
    """A PyWPS exception subclass reports its class name as exceptionCode: one module,
    reviewed, may define them."""
    pywps_names = _pywps_exception_names()
    allowed = REPO_ROOT / "wps_app" / "wps" / "exceptions.py"
    for path in [*(REPO_ROOT / "wps_app").rglob("*.py"), *(REPO_ROOT / "processes").rglob("*.py")]:
        if path == allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not bases & pywps_names, f"{path.name}: {node.name}"
