"""/ogcapi in-process (werkzeug's test client, stub layer catalog): documents, refusals,
job list and dismiss on the shared JobStore, each checked against the standard's schemas."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from ogcapi.validate_json import validate
from stub_catalog import StubCatalog
from werkzeug.test import Client

from wps_app.jobs import Limits
from wps_app.ogcapi import problems
from wps_app.web.app import create_app

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
EXECUTION = "/ogcapi/processes/get_raster_process/execution"


def _app(tmp_path: Path, extra: str = "", server: str = ""):
    config = tmp_path / "test.cfg"
    config.write_text(
        "[server]\n"
        f"url = http://127.0.0.1:5999/wps\noutputurl = http://127.0.0.1:5999/outputs/\n"
        f"outputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        "trusted_proxies = 127.0.0.1\n" + server +
        "[logging]\n"
        f"database = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\ntimeout = 1\nretries = 0\n" + extra
    )
    return create_app([config], catalogs={"sample": StubCatalog({"sample_city": "City"})})


@pytest.fixture
def app(tmp_path):
    return _app(tmp_path)


@pytest.fixture
def client(app):
    return Client(app)


def _json(response, schema: str | None = None):
    document = json.loads(response.get_data())
    if schema is not None:
        assert validate(document, schema) == [], document
    return document


def _problem(response, status: int, type_: str):
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body = _json(response, "exception.yaml")
    assert body["type"] == type_ and body["status"] == status
    return body


def test_landing_page_links(client):
    """/conf/core/landingpage-op, /conf/core/landingpage-success: the landing page links
    service-desc, conformance, processes and jobs."""
    response = client.get("/ogcapi/")
    assert response.status_code == 200
    body = _json(response, "landingPage.yaml")
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["service-desc"] == "http://127.0.0.1:5999/ogcapi/openapi"
    assert rels["conformance"] == "http://127.0.0.1:5999/ogcapi/conformance"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/processes"].endswith("/processes")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/job-list"].endswith("/jobs")


def test_conformance_declares_what_is_served(client):
    """/conf/core/conformance-op, /conf/core/conformance-success: exactly core,
    ogc-process-description, json, oas30, job-list, dismiss (no html, no callback)."""
    response = client.get("/ogcapi/conformance")
    assert response.status_code == 200
    body = _json(response, "confClasses.yaml")
    assert sorted(body["conformsTo"]) == sorted(
        CONF + c for c in ("core", "ogc-process-description", "json", "oas30", "job-list",
                           "dismiss"))


def test_openapi_document_from_pygeoapi(client):
    """/conf/core/api-definition-op, /conf/core/api-definition-success: the OpenAPI 3.0
    document, with this service's URL and the paths served."""
    response = client.get("/ogcapi/openapi")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    body = json.loads(response.get_data())
    assert body["openapi"].startswith("3.0")
    assert body["servers"] == [{"url": "http://127.0.0.1:5999/ogcapi",
                                "description": "this service"}]
    assert "/processes/get_raster_process/execution" in body["paths"]
    assert not any(path.startswith("/collections") for path in body["paths"])


def test_generated_pygeoapi_files_in_var(app, tmp_path):
    """pygeoapi's configuration and OpenAPI document are generated at start-up next to
    the work folder (var/ogcapi by default), the manager by dotted path."""
    folder = tmp_path / "ogcapi"
    config = (folder / "pygeoapi-config.yml").read_text()
    assert "wps_app.ogcapi.pygeoapi_front.JobStoreManager" in config
    assert "http://127.0.0.1:5999/ogcapi" in config
    assert json.loads((folder / "pygeoapi-openapi.json").read_text())["openapi"]
    assert type(app.ogcapi.manager).__name__ == "JobStoreManager"


def test_process_list(client):
    """/conf/core/process-list, /conf/core/process-list-success, /conf/core/pl-links,
    /conf/core/pl-limit-definition, /conf/core/pl-limit-response."""
    response = client.get("/ogcapi/processes?limit=1")
    assert response.status_code == 200
    body = _json(response, "processList.yaml")
    assert [p["id"] for p in body["processes"]] == ["get_raster_process"]
    summary = body["processes"][0]
    assert summary["jobControlOptions"] == ["sync-execute", "async-execute"]
    assert {"rel": "self"}.items() <= summary["links"][0].items()
    _problem(client.get("/ogcapi/processes?limit=0"), 400, problems.INVALID_PARAMETER)


def test_process_description(client):
    """/conf/core/process-description, /conf/core/process-description-success: inputs as
    WPS names them, with JSON schemas, enums and the caps as maxima."""
    response = client.get("/ogcapi/processes/get_raster_process")
    assert response.status_code == 200
    body = _json(response, "process.yaml")
    inputs = body["inputs"]
    assert list(inputs) == ["wms", "lat", "lon", "bbox", "width", "height", "method",
                            "stretch", "cog", "source"]
    assert inputs["wms"]["schema"]["enum"] == ["sample_city"]
    assert inputs["width"]["schema"]["maximum"] == 16384
    assert "sobel_x" in inputs["method"]["schema"]["enum"]
    assert inputs["bbox"]["schema"]["properties"]["crs"]["default"] == (
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84")
    assert set(body["outputs"]) == {"image", "geotiff"}


def test_no_such_process(client):
    """/conf/core/process-exception-no-such-process: 404 with the standard's type, for the
    description and the execution."""
    _problem(client.get("/ogcapi/processes/nope"), 404, OGC + "no-such-process")
    _problem(client.post("/ogcapi/processes/nope/execution", json={}), 404,
             OGC + "no-such-process")


@pytest.mark.parametrize(("inputs", "name"), [
    ({"wms": "nowhere", "lat": 45.5, "lon": -73.5}, "wms"),
    ({"wms": "sample_city", "lat": 45.5}, "lon"),
    ({"wms": "sample_city", "lat": 45.5, "lon": -73.5, "width": 999999}, "width"),
    ({"wms": "sample_city", "lat": 45.5, "lon": -73.5, "width": "big"}, "width"),
    ({"wms": "sample_city", "lat": 45.5, "lon": -73.5, "method": "canny"}, "method"),
    ({"wms": "sample_city", "bbox": {"bbox": [1, 2, 3]}}, "bbox"),
    ({"wms": "sample_city", "bbox": {"bbox": [1, 2, 3, 4], "crs": "EPSG:3857"}}, "bbox"),
    ({"wms": "sample_city", "bbox": {"bbox": [0, 0, 5, 5]}}, "bbox"),
    ({"wms": {"href": "http://127.0.0.1:9/x"}, "lat": 1, "lon": 1}, "wms"),
    ({"wms": "sample_city", "lat": 1, "lon": 1, "colour": "red"}, "colour"),
])
def test_invalid_inputs_are_refused_before_any_job(client, app, inputs, name):
    """/conf/core/process-execute-input-validation, /conf/core/process-execute-input-ref:
    400, RFC 7807, the detail naming the input; nothing is stored as a job."""
    for headers in ({}, {"Prefer": "respond-async"}):
        body = _problem(client.post(EXECUTION, json={"inputs": inputs}, headers=headers),
                        400, problems.MISSING_PARAMETER if name == "lon"
                        else problems.INVALID_PARAMETER)
        assert body["input"] == name and name in body["detail"]
    assert app.runtime.jobs.list() == []


def test_unknown_output_and_bad_body(client):
    """Outputs not offered, a response form not defined and a body not JSON are refused."""
    base = {"wms": "sample_city", "lat": 45.5, "lon": -73.5}
    body = _problem(client.post(EXECUTION, json={"inputs": base, "outputs": {"x": {}}}),
                    400, problems.INVALID_PARAMETER)
    assert "image" in body["detail"] and "geotiff" in body["detail"]
    _problem(client.post(EXECUTION, json={"inputs": base, "response": "both"}), 400,
             problems.INVALID_PARAMETER)
    _problem(client.post(EXECUTION, data=b"<xml/>"), 400, problems.INVALID_PARAMETER)


def test_oversized_value_output_is_refused(tmp_path):
    """As WPS: an output over [limits] max_raw_mb is only returned by reference."""
    client = Client(_app(tmp_path, "[limits]\nmax_raw_mb = 0.01\n"))
    body = _problem(client.post(EXECUTION, json={
        "inputs": {"wms": "sample_city", "lat": 45.5, "lon": -73.5, "width": 512,
                   "height": 512}, "outputs": {"geotiff": {}}}), 400,
        problems.INVALID_PARAMETER)
    assert "by reference only" in body["detail"] and body["input"] == "geotiff"


def test_no_layer_list_yet_is_busy(tmp_path):
    """A WMS that never answered (no layer list yet): 503 server-busy with Retry-After,
    never the WMS's URL."""
    config = tmp_path / "test.cfg"
    config.write_text(
        f"[server]\noutputpath = {tmp_path / 'o'}\nworkdir = {tmp_path / 'w'}\n"
        f"[logging]\ndatabase = sqlite:///{tmp_path / 'j.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\n")
    client = Client(create_app([config], catalogs={"sample": StubCatalog(None)}))
    response = client.post(EXECUTION, json={"inputs": {"wms": "x", "lat": 1, "lon": 1}})
    body = _problem(response, 503, problems.SERVER_BUSY)
    assert "127.0.0.1:9" not in json.dumps(body)
    assert int(response.headers["Retry-After"]) > 0


def _job(app, job_id, binding="ogcapi", status="succeeded", owner=None,
         process_id="get_raster_process"):
    store = app.runtime.jobs
    store.register(job_id, process_id, binding, limits=Limits(-1, -1), owner=owner)
    if status in ("running", "succeeded", "failed"):
        store.start(job_id)
    if status == "succeeded":
        store.finish(job_id, "done")
    elif status == "failed":
        store.fail(job_id, "the WMS did not answer")


def test_job_list_of_both_bindings_and_its_parameters(client, app):
    """/conf/job-list/job-list-op, /conf/job-list/job-list-success, /conf/job-list/links,
    /conf/job-list/type-definition, /conf/job-list/type-response,
    /conf/job-list/processID-definition, /conf/job-list/processID-mandatory,
    /conf/job-list/processID-response, /conf/job-list/status-definition,
    /conf/job-list/status-response, /conf/job-list/limit-definition,
    /conf/job-list/limit-response, /conf/job-list/datetime-definition,
    /conf/job-list/datetime-response, /conf/job-list/duration-definition,
    /conf/job-list/duration-response."""
    _job(app, "a-ogc", status="succeeded")
    _job(app, "b-wps", binding="wps", status="running")
    _job(app, "c-ogc", status="failed")
    body = _json(client.get("/ogcapi/jobs"), "jobList.yaml")
    assert {j["jobID"]: j["processID"] for j in body["jobs"]} == {
        "a-ogc": "get_raster_process", "b-wps": "get_raster_process",
        "c-ogc": "get_raster_process"}
    assert all(j["type"] == "process" for j in body["jobs"])

    def ids(query):
        response = client.get(f"/ogcapi/jobs?{query}")
        assert response.status_code == 200
        return sorted(j["jobID"] for j in _json(response, "jobList.yaml")["jobs"])

    assert ids("status=successful") == ["a-ogc"]
    assert ids("status=running,failed") == ["b-wps", "c-ogc"]
    assert ids("type=process") == ["a-ogc", "b-wps", "c-ogc"]
    assert ids("type=other") == []
    assert ids("processID=get_raster_process&processID=x") == ["a-ogc", "b-wps", "c-ogc"]
    assert ids("processID=x") == []
    now = datetime.datetime.now(datetime.UTC)
    later = (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"datetime={earlier}/..") == ["a-ogc", "b-wps", "c-ogc"]
    assert ids(f"datetime={later}/..") == []
    assert ids(f"datetime=../{earlier}") == []
    assert ids("minDuration=0") == ["a-ogc", "b-wps", "c-ogc"]
    assert ids("minDuration=3600") == []
    assert ids("maxDuration=3600") == ["a-ogc", "b-wps", "c-ogc"]
    page = _json(client.get("/ogcapi/jobs?limit=2"), "jobList.yaml")
    assert len(page["jobs"]) == 2
    next_link = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert next_link.startswith("http://127.0.0.1:5999/ogcapi/jobs?")
    second = _json(client.get(next_link.replace("http://127.0.0.1:5999", "")),
                   "jobList.yaml")
    assert len(second["jobs"]) == 1
    assert any(link["rel"] == "prev" for link in second["links"])
    for bad in ("status=done", "limit=0", "limit=x", "datetime=yesterday",
                "minDuration=-1"):
        _problem(client.get(f"/ogcapi/jobs?{bad}"), 400, problems.INVALID_PARAMETER)


def test_job_status_and_results_states(client, app):
    """/conf/core/job-op, /conf/core/job-success, /conf/core/job-exception-no-such-job,
    /conf/core/job-results-exception-no-such-job,
    /conf/core/job-results-exception-results-not-ready, /conf/core/job-results-failed."""
    _job(app, "run-1", status="running")
    _job(app, "fail-1", status="failed")
    body = _json(client.get("/ogcapi/jobs/run-1"), "statusInfo.yaml")
    assert body["status"] == "running" and body["jobID"] == "run-1"
    assert {"created", "started", "updated"} <= set(body)
    _problem(client.get("/ogcapi/jobs/run-1/results"), 404, OGC + "result-not-ready")
    failed = _problem(client.get("/ogcapi/jobs/fail-1/results"), 500, problems.JOB_FAILED)
    assert failed["detail"] == "the WMS did not answer"
    _problem(client.get("/ogcapi/jobs/nope"), 404, OGC + "no-such-job")
    _problem(client.get("/ogcapi/jobs/nope/results"), 404, OGC + "no-such-job")


def test_dismiss(client, app, tmp_path):
    """/conf/dismiss/job-dismiss-op, /conf/dismiss/job-dismiss-success: DELETE answers the
    dismissed status (with its type), deletes the outputs; then 404 no-such-job."""
    _job(app, "done-1", status="succeeded")
    _job(app, "wait-1", status="accepted")
    folder = app.settings.output_path / "done-1"
    folder.mkdir(parents=True)
    (folder / "sobel_x.png").write_bytes(b"png")
    for job_id in ("done-1", "wait-1"):
        response = client.delete(f"/ogcapi/jobs/{job_id}")
        assert response.status_code == 200
        body = _json(response, "statusInfo.yaml")
        assert body["status"] == "dismissed" and body["type"] == "process"
        assert app.runtime.jobs.get(job_id).status == "dismissed"
        _problem(client.get(f"/ogcapi/jobs/{job_id}"), 404, OGC + "no-such-job")
        _problem(client.delete(f"/ogcapi/jobs/{job_id}"), 404, OGC + "no-such-job")
    assert not folder.exists()
    assert [j["jobID"] for j in _json(client.get("/ogcapi/jobs"))["jobs"]] == []


def test_links_follow_trusted_forwarded_headers(client):
    """Behind a trusted proxy, links follow X-Forwarded-Proto/Host/Prefix."""
    response = client.get("/ogcapi/", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "127.0.0.2:8443",
        "X-Forwarded-Prefix": "/geo"}, environ_overrides={"REMOTE_ADDR": "127.0.0.1"})
    hrefs = [link["href"] for link in _json(response)["links"]]
    assert all(h.startswith("https://127.0.0.2:8443/geo/ogcapi/") for h in hrefs)
    untrusted = client.get("/ogcapi/", headers={"X-Forwarded-Host": "evil.test"},
                           environ_overrides={"REMOTE_ADDR": "192.0.2.1"})
    assert "evil" not in untrusted.get_data(as_text=True)


def test_cors_and_preflight(client):
    """Browser clients: CORS headers on every answer, preflight answered."""
    response = client.options(EXECUTION, headers={
        "Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Prefer" in response.headers["Access-Control-Allow-Headers"]
    answer = client.get("/ogcapi/jobs/nope")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in answer.headers["Access-Control-Expose-Headers"]


def test_method_not_allowed_is_a_problem(client):
    """/conf/core/http: HTTP methods not served answer 405 with a problem document."""
    response = client.put("/ogcapi/processes")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"


def test_owners_see_only_their_jobs(tmp_path):
    """With API keys configured, the job list and jobs are the caller's only."""
    keys = tmp_path / "keys"
    keys.write_text("aaaaaaaaaaaaaaaaaaaa alice\nbbbbbbbbbbbbbbbbbbbb bob\n")
    app = _app(tmp_path, f"[auth]\nkeys_file = {keys}\n")
    client = Client(app)
    _job(app, "alice-1", owner="alice")
    _job(app, "bob-1", owner="bob")
    alice = {"X-API-Key": "aaaaaaaaaaaaaaaaaaaa"}
    body = _json(client.get("/ogcapi/jobs", headers=alice), "jobList.yaml")
    assert [j["jobID"] for j in body["jobs"]] == ["alice-1"]
    _problem(client.get("/ogcapi/jobs/bob-1", headers=alice), 404, OGC + "no-such-job")
    _problem(client.delete("/ogcapi/jobs/bob-1", headers=alice), 404, OGC + "no-such-job")
    assert client.get("/ogcapi/jobs").status_code == 401
    preflight = client.options("/ogcapi/jobs", headers={
        "Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key"})
    assert preflight.status_code == 204
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]


def test_reaper_step_fails_expired_jobs_and_rewrites_wps_documents(tmp_path):
    """The /ogcapi reaper step fails jobs whose lease expired; a WPS job among them gets
    its ProcessFailed status document (through the hook the app wires)."""
    from waiting import wait_until

    app = _app(tmp_path, "[jobs]\nlease_s = 0.2\n")
    store = app.runtime.jobs
    store.register("wps-1", "get_raster_process", "wps", limits=Limits(-1, -1))
    store.register("ogc-1", "get_raster_process", "ogcapi", limits=Limits(-1, -1))
    app.ogcapi.reap_interval_s = 0.0

    def both_failed():
        app.ogcapi.reap_if_due()
        return all(store.get(j).status == "failed" for j in ("wps-1", "ogc-1"))

    wait_until(both_failed, 10, "both leases to expire and be reaped")
    document = (app.settings.output_path / "wps-1.xml").read_text()
    assert "ProcessFailed" in document


def test_retention_cleanup_covers_ogcapi_jobs(client, app):
    """Once the retention clean-up removed a job's outputs, its results are gone (404)."""
    import time

    from wps_app.ops.cleanup import remove_expired

    _job(app, "old-1", status="succeeded")
    folder = app.settings.output_path / "old-1"
    folder.mkdir(parents=True)
    (folder / "sobel_x.tif").write_bytes(b"tif")
    assert folder in remove_expired(app.settings, 60, now=time.time() + 3600)
    _problem(client.get("/ogcapi/jobs/old-1/results"), 404, OGC + "no-such-job")


def test_request_body_over_the_limit_is_413(tmp_path):
    """An execute body over [server] maxrequestsize is refused before it is read whole."""
    client = Client(_app(tmp_path, server="maxrequestsize = 1kb\n"))
    response = client.post(EXECUTION, data=b"{" + b" " * 4096 + b"}",
                           content_type="application/json")
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
