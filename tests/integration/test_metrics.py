"""/metrics (Prometheus text format) of a real gunicorn with two workers: counters equal
the requests made, by operation, status and exception code, summed over both workers and
the async jobs' own processes; gauges equal what the job store holds."""

from __future__ import annotations

import collections
import threading
import uuid

import pytest
import requests
from keyed import start_keyed_wps as start_wps
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until
from wpsclient import (
    NS,
    document_output,
    exception_of,
    execute_body,
    literal,
    raw_output,
)

from wps_app.jobs import JobStore, Limits

POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 64), literal("height", 64)]
OGC_BODY = {"inputs": {"wms": "sample_city", "lat": 45.5541, "lon": -73.4936, "width": 64,
                       "height": 64},
            "outputs": {"geotiff": {"transmissionMode": "reference"}}}


@pytest.fixture(scope="module")
def metered(wms_server, faults_wms, tmp_path_factory):
    """A fresh WPS (two workers) only this module talks to: one async job runs at a time
    and two may queue; its default WMS is held by a proxy the tests work; a second
    source, `faults`, has a layer MapServer refuses to draw."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port)
    server = start_wps(tmp_path_factory.mktemp("wps-metered"), proxy.url, workers=2,
                       overrides={"wms": {"timeout": 60, "name": "sample"},
                                  "wms:faults": {"url": faults_wms.url, "timeout": 10},
                                  "server": {"parallelprocesses": 1, "maxprocesses": 2}})
    yield server, proxy
    proxy.release()
    server.stop()
    proxy.close()


class Client:
    """Requests to one server, each tallied under the labels /metrics should count it by."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.made: collections.Counter = collections.Counter()
        self.lock = threading.Lock()

    def _tally(self, operation: str, answer: requests.Response, exception_code: str = ""):
        with self.lock:
            self.made[(operation, str(answer.status_code), exception_code)] += 1
        return answer

    def get(self, operation: str, path: str, exception_code: str = "", **params):
        return self._tally(operation, requests.get(self.base + path, params=params,
                                                   timeout=120), exception_code)

    def post(self, operation: str, path: str, exception_code: str = "", **kwargs):
        return self._tally(operation, requests.post(self.base + path, timeout=120, **kwargs),
                           exception_code)

    def scrape(self) -> dict[str, dict[tuple, float]]:
        """Every sample of /metrics, by name then by label values (sorted by label)."""
        answer = self.get("metrics", "/metrics")
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        samples: dict[str, dict[tuple, float]] = collections.defaultdict(dict)
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
        return samples


def _requests_counted(samples) -> dict[tuple[str, str, str], float]:
    counted = {}
    for labels, value in samples.get("wps_requests_total", {}).items():
        named = dict(labels)
        counted[(named["operation"], named["code"], named["exception_code"])] = value
    return counted


def _difference(after: dict, before: dict) -> dict:
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys
            if after.get(k, 0) != before.get(k, 0)}


def _wps_execute(client: Client, form: str, operation: str, **flags) -> requests.Response:
    return client.post(operation, "/wps", data=execute_body(POINT, form, **flags).encode(),
                       headers={"Content-Type": "text/xml"})


def test_counters_and_gauges(metered):
    server, proxy = metered
    client = Client(server.base)
    before = client.scrape()

    caps = [client.get("wps:GetCapabilities", "/wps", service="WPS",
                       request="GetCapabilities") for _ in range(2)]
    assert all(answer.status_code == 200 for answer in caps)
    assert client.get("wps:DescribeProcess", "/wps", service="WPS", version="1.0.0",
                      request="DescribeProcess", identifier="get_raster_process"
                      ).status_code == 200
    unknown = client.get("wps:DescribeProcess", "/wps", "InvalidParameterValue",
                         service="WPS", version="1.0.0", request="DescribeProcess",
                         identifier="nope")
    assert (unknown.status_code, exception_of(unknown)[0]) == (400, "InvalidParameterValue")

    # One async job runs (held at the WMS), the next one waits in the queue.
    proxy.hold()
    accepted = _wps_execute(client, document_output(("geotiff", "image/tiff")),
                            "wps:Execute:async", store=True, status=True)
    assert accepted.status_code == 200
    status_url = etree.fromstring(accepted.content).get("statusLocation")
    proxy.wait_held(1)
    queued = client.post("ogcapi:execution:async", "/ogcapi/processes/get_raster_process/"
                         "execution", json=OGC_BODY, headers={"Prefer": "respond-async"})
    assert queued.status_code == 201
    ogc_job = queued.json()["jobID"]

    store = JobStore.from_url(f"sqlite:///{server.directory}/pywps-logs.sqlite")
    gauges = client.scrape()
    admission = store.admit(Limits(1, 2))
    assert (admission.running, admission.queued) == (1, 1)
    assert gauges["wps_jobs_running"][()] == admission.running
    assert gauges["wps_jobs_queued"][()] == admission.queued
    assert gauges["wps_storage_used_bytes"][()] == store.storage_used() > 0
    assert gauges["wps_job_store_up"][()] == 1 and gauges["wps_draining"][()] == 0

    # Two sync Executes at once: each holds one of the two workers (a sync worker serves
    # one request at a time), so both workers count one.
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(_wps_execute(
        client, raw_output(), "wps:Execute:sync"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    proxy.wait_held(3)
    proxy.release()
    for thread in threads:
        thread.join(120)
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.content.startswith(b"\x89PNG") for a in answers)

    def wps_job_output() -> str | None:
        doc = etree.fromstring(client.get("status", "/" + status_url.split("/", 3)[3]).content)
        if doc.find(".//wps:ProcessSucceeded", NS) is None:
            return None
        return doc.find(".//wps:Reference", NS).get("href")

    geotiff = wait_until(wps_job_output, 60, "the WPS job to succeed")
    wait_until(lambda: client.get("ogcapi:job", f"/ogcapi/jobs/{ogc_job}"
                                  ).json()["status"] == "successful",
               60, "the queued OGC API job to succeed")
    assert client.get("outputs", "/" + geotiff.split("/", 3)[3]).status_code == 200
    assert client.get("outputs", f"/outputs/{uuid.uuid4()}/sobel_x.tif").status_code == 404
    assert client.get("ogcapi:job", f"/ogcapi/jobs/{uuid.uuid4()}", "no-such-job"
                      ).status_code == 404

    # A WMS that refuses to draw: the answer and the WMS error, counted by source name.
    failed = client.post("wps:Execute:sync", "/wps", "NoApplicableCode", data=execute_body(
        [literal("wms", "broken_layer"), literal("source", "faults"), *POINT[1:]],
        document_output(("geotiff", "image/tiff"))).encode(),
        headers={"Content-Type": "text/xml"})
    assert (failed.status_code, exception_of(failed)[0]) == (502, "NoApplicableCode")

    after = client.scrape()
    client.made[("metrics", "200", "")] -= 1  # the last scrape is counted after its answer
    assert _difference(_requests_counted(after), _requests_counted(before)) == {
        key: float(count) for key, count in client.made.items() if count}
    errors = _difference(after.get("wps_wms_errors_total", {}),
                         before.get("wps_wms_errors_total", {}))
    assert errors == {(("kind", "service_exception"), ("source", "faults")): 1.0}
    assert after["wps_jobs_running"][()] == after["wps_jobs_queued"][()] == 0
    assert after["wps_storage_used_bytes"][()] == store.storage_used()


def test_metrics_name_no_wms_url(metered, faults_wms):
    server, proxy = metered
    text = requests.get(f"{server.base}/metrics", timeout=30).text
    assert "wps_wms_errors_total" in text  # the test above failed a read of `faults`
    for url in (faults_wms.url, proxy.url):
        assert url.split("//", 1)[1].split("/", 1)[0] not in text


def test_metrics_need_a_key_when_keys_are_configured(keyed_wps):
    from apikeys import KEY_A

    url = f"{keyed_wps.base}/metrics"
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 401
    allowed = requests.get(url, timeout=30, headers={"X-API-Key": KEY_A})
    assert allowed.status_code == 200
    names = {family.name for family in text_string_to_metric_families(allowed.text)}
    assert {"wps_requests", "wps_jobs_running", "wps_storage_used_bytes"} <= names


def test_ogcapi_routes_are_counted_by_route(metered):
    """Every OGC API route has its own label (and an unknown path none of its text)."""
    server, _ = metered
    client = Client(server.base)
    before = _requests_counted(client.scrape())
    for path in ("/ogcapi", "/ogcapi/conformance", "/ogcapi/processes",
                 "/ogcapi/processes/get_raster_process", "/ogcapi/jobs"):
        assert client.get("ogcapi:" + {
            "/ogcapi": "landing", "/ogcapi/conformance": "conformance",
            "/ogcapi/processes": "processes", "/ogcapi/processes/get_raster_process":
            "process", "/ogcapi/jobs": "jobs"}[path], path).status_code == 200
    assert client.get("ogcapi:other", "/ogcapi/evil%0a-label", "not-found"
                      ).status_code == 404
    after = _requests_counted(client.scrape())
    client.made[("metrics", "200", "")] -= 1
    assert _difference(after, before) == {k: float(v) for k, v in client.made.items() if v}
