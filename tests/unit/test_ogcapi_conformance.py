"""Conformance bookkeeping: every abstract test of the core, job-list and dismiss classes is
named by a test of ours that checks a schema and a status code; the pygeoapi 0.21 defects
the binding works around are shown on pygeoapi itself; the schema defect the validator
works around is shown on the schema as published."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from ogcapi.validate_json import validate
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from wps_app.ogcapi import pygeoapi_front
from wps_app.ogcapi.service import CONFORMANCE

TESTS = Path(__file__).resolve().parent.parent
ABSTRACT_TESTS = TESTS / "support" / "ogcapi" / "abstract_tests"
CLASSES = ("core", "job-list", "dismiss")
# A schema check: a JSON answer validated against one of the standard's schemas (a problem
# document against exception.yaml), or, for a raw answer, its media type and bytes checked.
# _problem() checks status, media type and exception.yaml; _parts() the multipart/related
# media type; a 204's whole answer is its Link header.
SCHEMA_CHECKS = (".yaml", "_problem(", "Content-Type", "oas30+json", "openapi", "_parts(",
                 '["Link"]')
LABEL = re.compile(r"^label::\s*(\S+)", re.MULTILINE)


def _labels() -> set[str]:
    return {label for name in CLASSES for path in (ABSTRACT_TESTS / name).glob("*.adoc")
            for label in LABEL.findall(path.read_text())}


def _our_tests() -> list[tuple[str, str, str]]:
    """(name, docstring, source) of every test function in the OGC API test modules."""
    found = []
    for path in [*TESTS.glob("unit/test_ogcapi*.py"), *TESTS.glob("integration/test_ogcapi*.py")]:
        text = path.read_text()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.append((f"{path.name}::{node.name}", ast.get_docstring(node) or "",
                              ast.get_source_segment(text, node) or ""))
    return found


def test_every_abstract_test_is_named_by_a_checking_test():
    """Each label:: of the core, job-list and dismiss abstract tests is named in the
    docstring of a test that checks a status code and validates against a schema (a
    problem document against exception.yaml; a raw output by its media type; the OpenAPI
    document by its media type and version)."""
    labels = _labels()
    assert len(labels) > 60
    tests = _our_tests()
    missing, unchecked = [], []
    for label in sorted(labels):
        naming = [(name, source) for name, doc, source in tests
                  if re.search(re.escape(label) + r"(?![\w-])", doc)]
        if not naming:
            missing.append(label)
            continue
        if not any(("status" in source or "_problem(" in source)
                   and any(check in source for check in SCHEMA_CHECKS)
                   for _, source in naming):
            unchecked.append(label)
    assert missing == [], missing
    assert unchecked == [], unchecked


def test_conformance_is_what_is_served():
    """No html (no HTML is served), no callback (no subscriber support)."""
    assert not any(c.endswith(("/html", "/callback")) for c in CONFORMANCE)
    assert validate({"conformsTo": CONFORMANCE}, "confClasses.yaml") == []


def test_published_schema_rejects_every_string_value():
    """The defect the validator reads around: under the published oneOf, a base64 value in
    a results document (a string: both `string` and binaryInputValue) is never valid."""
    document = {"image": {"value": "aGVsbG8=", "mediaType": "image/png"}}
    assert validate(document, "results.yaml", strict=True) != []
    assert validate(document, "results.yaml") == []


class _Layers:
    def start(self):
        """Nothing to probe."""

    def layers(self, wait_s=0.0):
        return {"sample_city": "City"}

    cached = probe = layers

    def extents(self):
        return {}


@pytest.fixture
def pygeoapi_api(tmp_path):
    """pygeoapi's own API object on the configuration we generate."""
    from pygeoapi.api import API

    from wps_app.web.app import create_app

    config_file = tmp_path / "test.cfg"
    config_file.write_text(
        f"[server]\noutputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        f"[logging]\ndatabase = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\n")
    app = create_app([config_file], catalogs={"sample": _Layers()})
    folder = tmp_path / "ogcapi"
    config = pygeoapi_front.load_config(folder / pygeoapi_front.CONFIG_NAME, app.ogcapi.task)
    return API(config, json.loads((folder / pygeoapi_front.OPENAPI_NAME).read_text()))


def _request(api, path: str, query: str = ""):
    from pygeoapi.api import APIRequest

    return APIRequest(Request(EnvironBuilder(path=path, query_string=query).get_environ()),
                      api.locales)


def test_pygeoapi_exceptions_are_not_rfc7807(pygeoapi_api):
    """Measured on 0.21: an unknown process is {"code": "NoSuchProcess", ...} without the
    standard's type URI (issue #1316): why problems.py answers instead."""
    from pygeoapi.api.processes import describe_processes

    _, status, content = describe_processes(pygeoapi_api, _request(pygeoapi_api, "/p"), "nope")
    body = json.loads(content)
    assert status == 404
    assert body["type"] == "NoSuchProcess" and "status" not in body and "detail" not in body


def test_pygeoapi_conformance_omits_job_list_and_dismiss():
    """Measured on 0.21: its conformance list has callback but neither job-list nor dismiss
    (both served): why ours declares its own."""
    from pygeoapi.api.processes import CONFORMANCE_CLASSES

    assert not any(c.endswith(("/job-list", "/dismiss")) for c in CONFORMANCE_CLASSES)
    assert any(c.endswith("/callback") for c in CONFORMANCE_CLASSES)


def test_pygeoapi_overwrites_output_transmission(pygeoapi_api):
    """Measured on 0.21: the description's outputTransmission is forced to ['value']
    although reference is served: why the description is served from the processor's
    metadata by us."""
    from pygeoapi.api.processes import describe_processes

    _, status, content = describe_processes(
        pygeoapi_api, _request(pygeoapi_api, "/p", "f=json"), "get_raster_process")
    assert status == 200
    assert json.loads(content)["outputTransmission"] == ["value"]
    processor = pygeoapi_api.manager.get_processor("get_raster_process")
    assert processor.metadata["outputTransmission"] == ["value", "reference"]


def test_pygeoapi_is_the_checked_version():
    """The start-up check passes on the installed pygeoapi (0.21.*)."""
    pygeoapi_front.check()
