"""/ogcapi on a real gunicorn beside /wps: sync and async execution in every response form,
jobs of both bindings, dismiss of a running job, admission, public URLs through the reverse
proxy, OWSLib as a client. Every JSON document is checked against the standard's schemas."""

from __future__ import annotations

import base64
import email

import pytest
import requests
from ogcapi.validate_json import validate
from waiting import wait_until

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
PROCESS = "/ogcapi/processes/get_raster_process"
EXECUTION = PROCESS + "/execution"
POINT = {"wms": "sample_city", "lat": 45.554, "lon": -73.4935, "width": 48, "height": 40}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
ASYNC = {"Prefer": "respond-async"}


def _json(response, schema: str | None = None):
    document = response.json()
    if schema is not None:
        assert validate(document, schema) == [], document
    return document


def _execute(server, body: dict, headers: dict | None = None, base: str | None = None):
    return requests.post((base or server.base) + EXECUTION, json=body, headers=headers,
                         timeout=60)


def _wait_status(server, job_id: str, wanted: tuple[str, ...] = ("successful", "failed"),
                 timeout_s: float = 60):
    def done():
        status = _json(requests.get(f"{server.base}/ogcapi/jobs/{job_id}", timeout=10),
                       "statusInfo.yaml")
        return status if status["status"] in wanted else None

    return wait_until(done, timeout_s, f"job {job_id} to reach {wanted}")


def _submit(server, body: dict, base: str | None = None) -> tuple[str, dict]:
    response = _execute(server, body, ASYNC, base)
    assert response.status_code == 201, response.text
    status = _json(response, "statusInfo.yaml")
    assert response.headers["Location"].endswith(f"/ogcapi/jobs/{status['jobID']}")
    assert any(link["rel"] == "monitor" for link in status["links"])
    assert status["status"] in ("accepted", "running", "successful")
    return status["jobID"], status


def test_sync_raw_one_output_by_value(wps):
    """/conf/core/process-execute-op, /conf/core/process-execute-request,
    /conf/core/process-execute-inputs, /conf/core/process-execute-input-inline,
    /conf/core/process-execute-default-execution-mode,
    /conf/core/process-execute-sync-raw-value-one, /conf/core/job-results-sync,
    /conf/core/process-execute-success: no Prefer is synchronous; raw (the default)
    with one output by value answers its bytes with its media type (200)."""
    response = _execute(wps, {"inputs": POINT, "outputs": {"image": {}}})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_MAGIC)
    tiff = _execute(wps, {"inputs": POINT, "outputs": {
        "image": {"format": {"mediaType": "image/tiff"}}}, "response": "raw"})
    assert tiff.status_code == 200 and tiff.content[:4] in TIFF_MAGIC
    assert tiff.headers["Content-Type"] == "image/tiff"


def test_unknown_prefer_values_are_ignored(wps):
    """/conf/core/process-execute-auto-execution-mode: a Prefer the server does not
    know runs synchronously, as if absent."""
    response = _execute(wps, {"inputs": POINT, "outputs": {"geotiff": {}}},
                        {"Prefer": "return=minimal, wait=10"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/tiff; application=geotiff"
    assert response.content[:4] in TIFF_MAGIC


def test_sync_raw_one_output_by_reference(wps):
    """/conf/core/process-execute-sync-raw-ref: 204 with a Link header to the output,
    published under /outputs/<id>/ with the PNG's sidecars."""
    response = _execute(wps, {"inputs": POINT, "outputs": {
        "image": {"transmissionMode": "reference"}}})
    assert response.status_code == 204 and response.content == b""
    link = response.headers["Link"]
    assert 'type="image/png"' in link
    href = link[1:link.index(">")]
    assert href.startswith(f"{wps.base}/outputs/") and href.endswith("/sobel_x.png")
    assert requests.get(href, timeout=10).content.startswith(PNG_MAGIC)
    for sidecar in (".png.aux.xml", ".pgw"):
        assert requests.get(href[: -len(".png")] + sidecar, timeout=10).status_code == 200


def _parts(response) -> dict[str, email.message.Message]:
    message = email.message_from_bytes(
        b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n"
        + response.content)
    assert message.get_content_type() == "multipart/related"
    return {part["Content-ID"].strip("<>"): part for part in message.get_payload()}


def test_sync_raw_several_outputs_are_multipart(wps):
    """/conf/core/process-execute-sync-raw-value-multi,
    /conf/core/process-execute-default-outputs: with no outputs named, every output is
    returned, by value, as multipart/related (one part per output)."""
    response = _execute(wps, {"inputs": POINT})
    assert response.status_code == 200
    parts = _parts(response)
    assert set(parts) == {"image", "geotiff"}
    assert parts["image"].get_payload(decode=True).startswith(PNG_MAGIC)
    assert parts["geotiff"]["Content-Type"] == "image/tiff; application=geotiff"
    assert parts["geotiff"].get_payload(decode=True)[:4] in TIFF_MAGIC


def test_sync_raw_mixed_outputs(wps):
    """/conf/core/process-execute-sync-raw-mixed-multi: a part by value, a part by
    reference (Content-Location, empty body)."""
    response = _execute(wps, {"inputs": POINT, "outputs": {
        "image": {}, "geotiff": {"transmissionMode": "reference"}}})
    assert response.status_code == 200
    parts = _parts(response)
    assert parts["image"].get_payload(decode=True).startswith(PNG_MAGIC)
    location = parts["geotiff"]["Content-Location"]
    assert requests.get(location, timeout=10).content[:4] in TIFF_MAGIC


def test_sync_document(wps):
    """/conf/core/process-execute-sync-document, /conf/core/process-execute-input-inline-bbox,
    /conf/core/process-execute-input-inline-object, /conf/core/process-execute-input-inline-mixed,
    /conf/core/process-execute-input-array, /conf/core/process-execute-input-inline-binary:
    a results document (by value: base64 qualified values; by reference: href and type);
    the bbox object, qualified and bare values and a one-value array as inputs (the process
    has no binary input: qualified values with a media type are what it takes inline)."""
    inputs = {"wms": ["sample_city"],
              "bbox": {"bbox": [-73.4940, 45.5535, -73.4930, 45.5545],
                       "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
              "width": 40, "height": {"value": 40},
              "method": {"value": "prewitt_y", "mediaType": "text/plain"}}
    response = _execute(wps, {"inputs": inputs, "response": "document", "outputs": {
        "image": {"transmissionMode": "value"},
        "geotiff": {"transmissionMode": "reference"}}})
    assert response.status_code == 200
    body = _json(response, "results.yaml")
    assert body["image"]["mediaType"] == "image/png"
    assert base64.b64decode(body["image"]["value"]).startswith(PNG_MAGIC)
    assert body["geotiff"]["type"] == "image/tiff; application=geotiff"
    assert body["geotiff"]["href"].endswith("/prewitt_y.tif")
    assert requests.get(body["geotiff"]["href"], timeout=10).content[:4] in TIFF_MAGIC
    two = _execute(wps, {"inputs": {**POINT, "method": ["sobel_x", "sobel_y"]}})
    assert two.status_code == 400 and _json(two, "exception.yaml")["input"] == "method"


def test_sync_runs_are_not_jobs(wps):
    """Sync runs leave no job in the job list."""
    before = {j["jobID"] for j in _json(requests.get(
        f"{wps.base}/ogcapi/jobs?limit=1000", timeout=10), "jobList.yaml")["jobs"]}
    assert _execute(wps, {"inputs": POINT, "outputs": {"image": {}}}).status_code == 200
    after = {j["jobID"] for j in _json(requests.get(
        f"{wps.base}/ogcapi/jobs?limit=1000", timeout=10), "jobList.yaml")["jobs"]}
    assert after == before


def test_async_job_and_its_results_in_every_form(wps):
    """/conf/core/process-execute-success-async, /conf/core/job-op, /conf/core/job-success,
    /conf/core/job-results, /conf/core/job-results-async-document,
    /conf/core/job-results-async-raw-value-one, /conf/core/job-results-async-raw-ref,
    /conf/core/job-results-async-raw-value-multi,
    /conf/core/job-results-async-raw-mixed-multi: 201 + Location + statusInfo, polled to
    successful (progress 100, times), the results as the request asked."""
    forms = {
        "document": {"response": "document", "outputs": {
            "image": {"transmissionMode": "reference"}, "geotiff": {}}},
        "value-one": {"outputs": {"image": {}}},
        "ref": {"outputs": {"geotiff": {"transmissionMode": "reference"}}},
        "value-multi": {},
        "mixed": {"outputs": {"image": {"transmissionMode": "reference"}, "geotiff": {}}},
    }
    jobs = {form: _submit(wps, {"inputs": POINT, **extra})[0] for form, extra in forms.items()}
    for form, job_id in jobs.items():
        status = _wait_status(wps, job_id)
        assert status["status"] == "successful", status
        assert status["progress"] == 100
        assert {"created", "started", "finished", "updated"} <= set(status)
        results_link = next(link["href"] for link in status["links"]
                            if link["rel"].endswith("/results"))
        response = requests.get(results_link, timeout=30)
        if form == "document":
            body = _json(response, "results.yaml")
            assert body["image"]["href"] == f"{wps.base}/outputs/{job_id}/sobel_x.png"
            assert base64.b64decode(body["geotiff"]["value"])[:4] in TIFF_MAGIC
        elif form == "value-one":
            assert response.status_code == 200 and response.content.startswith(PNG_MAGIC)
        elif form == "ref":
            assert response.status_code == 204
            assert f"/outputs/{job_id}/sobel_x.tif" in response.headers["Link"]
        else:
            assert response.status_code == 200
            parts = _parts(response)
            assert set(parts) == {"image", "geotiff"}
    listed = _json(requests.get(f"{wps.base}/ogcapi/jobs?limit=1000", timeout=10),
                   "jobList.yaml")
    assert set(jobs.values()) <= {j["jobID"] for j in listed["jobs"]}


def test_wps_jobs_are_listed(wps):
    """A WPS async job appears in /ogcapi/jobs with its process id."""
    answer = requests.get(wps.url, params={
        "service": "WPS", "version": "1.0.0", "request": "Execute",
        "identifier": "get_raster_process",
        "DataInputs": "wms=sample_city;lat=45.554;lon=-73.4935;width=32;height=32",
        "ResponseDocument": "geotiff@asReference=true", "storeExecuteResponse": "true",
        "status": "true"}, timeout=30)
    assert answer.status_code == 200
    jobs = wait_until(lambda: [j for j in _json(requests.get(
        f"{wps.base}/ogcapi/jobs?limit=1000", timeout=10), "jobList.yaml")["jobs"]
        if j["jobID"] in answer.text], 30, "the WPS job in the OGC API job list")
    assert jobs[0]["processID"] == "get_raster_process"
    assert jobs[0]["type"] == "process"


def test_running_job_progress_not_ready_and_dismiss(gated_wps, gate):
    """A running job shows progress at the WPS milestones; its results are not ready
    (404 result-not-ready); DELETE stops it, no output stays, later 404 no-such-job."""
    job_id, _ = _submit(gated_wps, {"inputs": POINT, "outputs": {"image": {}}})
    gate.wait_held(1, timeout_s=30)
    status = _wait_status(gated_wps, job_id, ("running",))
    assert 10 <= status["progress"] < 100
    not_ready = requests.get(f"{gated_wps.base}/ogcapi/jobs/{job_id}/results", timeout=10)
    assert not_ready.status_code == 404
    assert _json(not_ready, "exception.yaml")["type"] == OGC + "result-not-ready"
    dismissed = requests.delete(f"{gated_wps.base}/ogcapi/jobs/{job_id}", timeout=10)
    assert dismissed.status_code == 200
    assert _json(dismissed, "statusInfo.yaml")["status"] == "dismissed"
    gate.release()
    gone = requests.get(f"{gated_wps.base}/ogcapi/jobs/{job_id}", timeout=10)
    assert gone.status_code == 404
    assert _json(gone, "exception.yaml")["type"] == OGC + "no-such-job"
    folder = gated_wps.output_path / job_id
    wait_until(lambda: not folder.exists() and not list(
        (gated_wps.directory / "tmp").glob(f"ogcapi-{job_id}-*")
        if (gated_wps.directory / "tmp").is_dir() else []), 30,
        "the dismissed job's files to be gone")


def test_admission_limits_answer_503_with_retry_after(busy_wps, busy_gate):
    """One job runs, one waits (shared limits); the next is refused 503 + Retry-After;
    the queued one starts once the first ends."""
    first, _ = _submit(busy_wps, {"inputs": POINT, "outputs": {"image": {}}})
    busy_gate.wait_held(1, timeout_s=30)
    second, status = _submit(busy_wps, {"inputs": POINT, "outputs": {"image": {}}})
    assert status["status"] == "accepted"
    refused = _execute(busy_wps, {"inputs": POINT, "outputs": {"image": {}}}, ASYNC)
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["Content-Type"] == "application/problem+json"
    _json(refused, "exception.yaml")
    busy_gate.release()
    assert _wait_status(busy_wps, first)["status"] == "successful"
    assert _wait_status(busy_wps, second)["status"] == "successful"


def test_failed_job_results_are_its_exception(faulty_wps, fault_proxy):
    """/conf/core/job-results-failed: a job whose WMS failed is failed; its results are
    the exception (RFC 7807) with the failure's reason, no URL."""
    fault_proxy.mode = "http500"
    try:
        job_id, _ = _submit(faulty_wps, {"inputs": POINT, "outputs": {"image": {}}})
        status = _wait_status(faulty_wps, job_id)
    finally:
        fault_proxy.mode = "pass"
    assert status["status"] == "failed"
    response = requests.get(f"{faulty_wps.base}/ogcapi/jobs/{job_id}/results", timeout=10)
    assert response.status_code == 500
    body = _json(response, "exception.yaml")
    assert "HTTP status 500" in body["detail"]
    assert "127.0.0.1" not in body["detail"]


def test_sync_wms_failure_is_502(faulty_wps, fault_proxy):
    """An upstream WMS answering 500 is 502 Bad Gateway for a sync run."""
    fault_proxy.mode = "http500"
    try:
        response = _execute(faulty_wps, {"inputs": POINT, "outputs": {"image": {}}})
    finally:
        fault_proxy.mode = "pass"
    assert response.status_code == 502
    assert "HTTP status 500" in _json(response, "exception.yaml")["detail"]


def test_links_through_the_reverse_proxy(proxied_wps):
    """Links, Location and output references follow the trusted proxy's X-Forwarded-*."""
    server, proxy = proxied_wps
    base = f"http://127.0.0.1:{proxy.port}/geo"
    landing = _json(requests.get(f"{base}/ogcapi/", timeout=10), "landingPage.yaml")
    assert all(link["href"].startswith(f"{base}/ogcapi/") for link in landing["links"])
    document = _json(_execute(server, {"inputs": POINT, "response": "document", "outputs": {
        "image": {"transmissionMode": "reference"}}}, base=base), "results.yaml")
    assert document["image"]["href"].startswith(f"{base}/outputs/")
    assert requests.get(document["image"]["href"], timeout=10).content.startswith(PNG_MAGIC)
    job_id, status = _submit(server, {"inputs": POINT, "outputs": {"image": {}}}, base=base)
    assert status["links"][0]["href"] == f"{base}/ogcapi/jobs/{job_id}"
    oas = requests.get(f"{base}/ogcapi/openapi", timeout=10).json()
    assert oas["servers"][0]["url"] == f"{base}/ogcapi"


def test_owslib_processes_client(wps):
    """OWSLib's owslib.ogcapi.processes.Processes lists, describes and executes."""
    owslib_processes = pytest.importorskip("owslib.ogcapi.processes")
    client = owslib_processes.Processes(f"{wps.base}/ogcapi")
    assert [p["id"] for p in client.processes()] == ["get_raster_process"]
    described = client.process("get_raster_process")
    assert "sample_city" in described["inputs"]["wms"]["schema"]["enum"]
    result = client.execute("get_raster_process", POINT,
                            {"image": {"transmissionMode": "reference"}})
    assert validate(result, "results.yaml") == []
    assert result["image"]["href"].startswith(f"{wps.base}/outputs/")
    status = client.execute("get_raster_process", POINT, {"image": {}}, async_=True)
    assert validate(status, "statusInfo.yaml") == []
    assert _wait_status(wps, status["jobID"])["status"] == "successful"


@pytest.mark.parametrize("path", ["/ogcapi/", "/ogcapi/processes", PROCESS, "/ogcapi/jobs"])
def test_json_documents_and_cors_on_the_server(wps, path):
    """/conf/core/http: every document is JSON over HTTP/1.1 with CORS headers."""
    response = requests.get(wps.base + path, headers={"Origin": "http://127.0.0.1:1"},
                            timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    schema = {"/ogcapi/": "landingPage.yaml", "/ogcapi/processes": "processList.yaml",
              PROCESS: "process.yaml", "/ogcapi/jobs": "jobList.yaml"}[path]
    _json(response, schema)


def test_dismissing_a_wps_job(gated_wps, gate):
    """A running WPS job dismissed through /ogcapi stops; its WPS status document says
    ProcessFailed, dismissed; /ogcapi then answers 404 no-such-job."""
    answer = requests.get(gated_wps.url, params={
        "service": "WPS", "version": "1.0.0", "request": "Execute",
        "identifier": "get_raster_process",
        "DataInputs": "wms=sample_city;lat=45.554;lon=-73.4935;width=32;height=32",
        "ResponseDocument": "geotiff@asReference=true", "storeExecuteResponse": "true",
        "status": "true"}, timeout=30)
    assert answer.status_code == 200
    location = answer.text.split('statusLocation="', 1)[1].split('"', 1)[0]
    job_id = location.rsplit("/", 1)[1].removesuffix(".xml")
    gate.wait_held(1, timeout_s=30)
    dismissed = requests.delete(f"{gated_wps.base}/ogcapi/jobs/{job_id}", timeout=10)
    assert dismissed.status_code == 200
    assert _json(dismissed, "statusInfo.yaml")["status"] == "dismissed"
    document = requests.get(location, timeout=10).text
    assert "ProcessFailed" in document and "dismissed" in document
    gate.release()
    gone = requests.get(f"{gated_wps.base}/ogcapi/jobs/{job_id}", timeout=10)
    assert gone.status_code == 404
    assert _json(gone, "exception.yaml")["type"] == OGC + "no-such-job"
    assert "ProcessFailed" in requests.get(location, timeout=10).text


def test_storage_full_is_507(small_disk_wps):
    """Outputs by reference that could overfill [limits] max_output_mb: 507, sync or async
    (nothing admitted)."""
    big = {**POINT, "width": 512, "height": 512}
    body = {"inputs": big, "outputs": {"geotiff": {"transmissionMode": "reference"}}}
    for headers in ({}, ASYNC):
        response = _execute(small_disk_wps, body, headers)
        assert response.status_code == 507
        assert "storage" in _json(response, "exception.yaml")["detail"]


def test_wms_timeout_is_504(faulty_wps, fault_proxy):
    """A WMS slower than its timeout is 504 Gateway Timeout for a sync run."""
    fault_proxy.mode = "delay"
    try:
        response = _execute(faulty_wps, {"inputs": POINT, "outputs": {"image": {}}})
    finally:
        fault_proxy.mode = "pass"
    assert response.status_code == 504
    _json(response, "exception.yaml")
