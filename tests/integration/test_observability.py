"""One log line per request and per job stage; readiness; the version in capabilities."""

from __future__ import annotations

import re
import time

import requests
from lxml import etree
from wpsclient import NS, document_output, execute_body, get, literal, post, references

from wps_app import __version__


def log_of(server) -> str:
    time.sleep(0.2)  # let gunicorn flush the worker's stderr
    return (server.directory / "gunicorn.log").read_text()


def test_request_and_job_lines(wps):
    body = execute_body([literal("wms", "sample_city"), literal("lat", 45.5543),
                         literal("lon", -73.4932), literal("width", 96), literal("height", 48),
                         literal("method", "prewitt_x")],
                        document_output(("geotiff", "image/tiff")))
    job = references(post(wps.url, body))["geotiff"].rsplit("/", 2)[1]
    log = log_of(wps)
    assert re.search(rf"job={job} start mode=sync layer=sample_city method=prewitt_x "
                     r"size=96x48 bbox=-73\.49\d+,45\.55\d+", log)
    for stage in ("reading the WMS", "filtering", "writing the GeoTIFF", "writing the PNG"):
        assert (f"job={job} stage='{stage}' percent=" in log
                and re.search(rf"job={job} stage='{stage}' percent=\d+ layer=sample_city "
                              r"method=prewitt_x size=96x48", log))
    done = re.search(rf"job={job} outcome=succeeded duration_s=([\d.]+) read_s=([\d.]+) "
                     r"luminance_s=([\d.]+) filter_s=([\d.]+) geotiff_s=([\d.]+) "
                     r"png_s=([\d.]+)", log)
    assert done
    duration, *stages = (float(v) for v in done.groups())
    # each figure is logged rounded to 1 ms: the stages' sum may pass the duration by that
    assert duration + 0.0005 * len(stages) >= sum(stages)
    assert stages[0] > 0  # a 96x48 filter can log 0.000
    assert re.search(rf"request method=POST path=/wps operation=execute identifier=- "
                     rf"job={job} status=200 duration_ms=[\d.]+", log)


def test_failed_job_line_names_the_reason(faulty_wps, fault_proxy):
    fault_proxy.mode = "http500"
    try:
        post(faulty_wps.url, execute_body(
            [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935)],
            document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    assert re.search(r"job=\S+ outcome=failed duration_s=[\d.]+ reason='the WMS answered "
                     r"with HTTP status 500'", log_of(faulty_wps))


def test_get_requests_are_logged_with_operation(wps):
    get(wps.url, request="DescribeProcess", identifier="get_raster_process")
    assert re.search(r"request method=GET path=/wps operation=describeprocess "
                     r"identifier=get_raster_process job=- status=200", log_of(wps))


def test_readiness_checks_the_wms(wps, orphan_wps):
    ready = requests.get(f"{wps.base}/health", timeout=30)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    down = requests.get(f"{orphan_wps.base}/health", timeout=30)
    assert down.status_code == 503 and down.json()["status"] == "unavailable"


def test_version_in_capabilities(wps):
    doc = etree.fromstring(get(wps.url, request="GetCapabilities").content)
    abstract = doc.findtext("ows:ServiceIdentification/ows:Abstract", "", NS)
    assert f"Service version {__version__}" in abstract


def test_async_request_line_names_its_job(wps):
    from jobs import submit, wait_for_end

    url = submit(wps)
    job = url.rsplit("/", 1)[1][: -len(".xml")]
    wait_for_end(url)
    log = log_of(wps)
    assert re.search(rf"operation=execute identifier=- job={job} status=200", log)
    assert re.search(rf"job={job} start mode=async", log)
    assert re.search(rf"job={job} outcome=succeeded", log)
