"""X-Request-ID: kept when it is a plain token, replaced otherwise (never logged raw),
answered back, and on every log line about the request and the async job it started, in
the job's own process too; through the nginx front, which sets one when none is given."""

from __future__ import annotations

import re
import uuid

import requests
from lxml import etree
from waiting import wait_until
from wpsclient import document_output, execute_body, literal

POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 64), literal("height", 64)]
HEX32 = re.compile(r"[0-9a-f]{32}")


def _log(server) -> str:
    return (server.directory / "gunicorn.log").read_text(errors="replace")


def _lines_with(server, marker: str, expected: str) -> list[str]:
    """The log lines naming `marker`, once one matching the regex `expected` is written
    (job lines come from other processes)."""
    def found():
        lines = [line for line in _log(server).splitlines() if marker in line]
        return lines if any(re.search(expected, line) for line in lines) else None

    return wait_until(found, 30, f"a log line matching {expected!r}")


def _access_log(front) -> str:
    return (front.directory / "access.log").read_text(errors="replace")


def _caps(url: str, **headers) -> requests.Response:
    return requests.get(url, params={"service": "WPS", "request": "GetCapabilities"},
                        headers=headers, timeout=60)


def test_a_plain_id_is_kept_answered_and_logged(wps):
    given = f"lb-{uuid.uuid4()}"
    answer = _caps(wps.url, **{"X-Request-ID": given})
    assert answer.headers["X-Request-ID"] == given
    lines = _lines_with(wps, given, r"request method=GET path=/wps operation=getcapabilities")
    assert all(f"request_id={given}:" in line for line in lines)


def test_without_an_id_the_app_makes_one(wps):
    made = _caps(wps.url).headers["X-Request-ID"]
    assert HEX32.fullmatch(made)
    _lines_with(wps, f"request_id={made}:", "request method=GET")


def test_an_id_that_is_not_a_plain_token_is_replaced_and_never_logged(wps):
    marker = uuid.uuid4().hex[:12]
    for bad in (f"{marker} <script>", f"{marker}" + "x" * 200, f"{marker};drop",
                f"{marker}\u00e9"):
        answer = _caps(wps.url, **{"X-Request-ID": bad.encode("utf-8")})
        made = answer.headers["X-Request-ID"]
        assert made != bad and HEX32.fullmatch(made)
        _lines_with(wps, f"request_id={made}:", "request method=GET")
    assert marker not in _log(wps)


def test_async_jobs_log_the_id_of_the_request_that_started_them(wps):
    """WPS: the job's lines, written by its own process, carry the Execute's id."""
    given = f"async-{uuid.uuid4()}"
    answer = requests.post(wps.url, timeout=60, headers={
        "Content-Type": "text/xml", "X-Request-ID": given},
        data=execute_body(POINT, document_output(("geotiff", "image/tiff")), store=True,
                          status=True).encode())
    assert answer.headers["X-Request-ID"] == given
    job = etree.fromstring(answer.content).get("statusLocation").rsplit("/", 1)[1][:-4]
    lines = _lines_with(wps, f"job={job} ", rf"job={job} outcome=succeeded")
    assert any(f"job={job} accepted binding=wps" in line for line in lines)
    assert any(f"job={job} stage=" in line for line in lines)
    assert all(f"request_id={given}:" in line for line in lines), lines


def test_ogcapi_async_jobs_log_the_id_too(wps):
    given = f"ogc-{uuid.uuid4()}"
    answer = requests.post(
        f"{wps.base}/ogcapi/processes/get_raster_process/execution", timeout=60,
        headers={"Prefer": "respond-async", "X-Request-ID": given},
        json={"inputs": {"wms": "sample_city", "lat": 45.5541, "lon": -73.4936,
                         "width": 64, "height": 64}})
    assert answer.status_code == 201 and answer.headers["X-Request-ID"] == given
    job = answer.json()["jobID"]
    lines = _lines_with(wps, f"job={job} ", rf"job={job} outcome=succeeded")
    assert any(f"job={job} accepted binding=ogcapi" in line for line in lines)
    assert all(f"request_id={given}:" in line for line in lines), lines


def test_the_front_passes_an_id_or_sets_one(front_wps):
    """Through nginx: a plain id passes; without one (or with a bad one) nginx's own
    $request_id is what the app logs and what the client gets (one header); nginx's access
    log has it too."""
    wps = front_wps.wps
    given = f"haproxy-{uuid.uuid4()}"
    assert _caps(front_wps.url, **{"X-Request-ID": given}).headers["X-Request-ID"] == given
    _lines_with(wps, f"request_id={given}:", "request method=GET")
    marker = uuid.uuid4().hex[:12]
    for headers in ({}, {"X-Request-ID": f"{marker} bad"}):
        made = _caps(front_wps.url, **headers).headers["X-Request-ID"]
        assert HEX32.fullmatch(made)  # one header (two would be joined by ", ")
        _lines_with(wps, f"request_id={made}:", "request method=GET")
        logged = f"request_id={made}"
        wait_until(lambda logged=logged: logged in _access_log(front_wps), 30,
                   "the id in nginx's access log")
    assert marker not in _log(wps)


def test_a_queued_job_started_later_logs_its_own_requests_id(busy_wps, busy_gate):
    """The job store keeps each job's request id: a queued job, started later by whichever
    process ends the job before it, logs the id of the request that submitted it, not the
    id of the request or job that happened to start it."""
    from jobs import wait_for_end

    ids, locations = [f"first-{uuid.uuid4()}", f"queued-{uuid.uuid4()}"], []
    for given in ids:
        answer = requests.post(busy_wps.url, timeout=60, headers={
            "Content-Type": "text/xml", "X-Request-ID": given},
            data=execute_body(POINT, document_output(("geotiff", "image/tiff")), store=True,
                              status=True).encode())
        locations.append(etree.fromstring(answer.content).get("statusLocation"))
        if len(locations) == 1:
            busy_gate.wait_held(1)  # the first one runs; the second will be queued
    busy_gate.release()
    for location in locations:
        assert wait_for_end(location, 60)[-1][0] == "ProcessSucceeded"
    job = locations[1].rsplit("/", 1)[1][:-4]
    lines = _lines_with(busy_wps, f"job={job} ", rf"job={job} outcome=succeeded")
    assert any(f"job={job} stage=" in line for line in lines)
    assert all(f"request_id={ids[1]}:" in line for line in lines), lines
