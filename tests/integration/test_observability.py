"""One log line per request and per job stage; readiness; the version in capabilities."""

from __future__ import annotations

import re
from decimal import Decimal

import requests
from lxml import etree
from waiting import wait_until
from wpsclient import NS, document_output, execute_body, get, literal, post, references

from wps_app import __version__


def log_end(server) -> int:
    """Where the server's log ends now (a byte offset for log_after)."""
    return (server.directory / "gunicorn.log").stat().st_size


def log_after(server, since: int, last: str, timeout_s: float = 10) -> str:
    """The server's log from byte offset `since`, read once a line matching the regex `last`
    (the last line expected) is in it: lines come from other processes (workers, jobs)."""
    path = server.directory / "gunicorn.log"

    def written() -> str | None:
        text = path.read_bytes()[since:].decode(errors="replace")
        return text if re.search(last, text) else None

    return wait_until(written, timeout_s, f"a line matching {last!r} in {path}")


def test_request_and_job_lines(wps):
    body = execute_body([literal("wms", "sample_city"), literal("lat", 45.5543),
                         literal("lon", -73.4932), literal("width", 96), literal("height", 48),
                         literal("method", "prewitt_x")],
                        document_output(("geotiff", "image/tiff")))
    since = log_end(wps)
    job = references(post(wps.url, body))["geotiff"].rsplit("/", 2)[1]
    log = log_after(wps, since, rf"request method=POST .* job={job} ")
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
    duration, *stages = (Decimal(v) for v in done.groups())
    # Each figure is logged rounded to the millisecond (so off by up to 0.5 ms): the stages
    # fit in the job's duration when their sum, less those errors, does.
    rounding = Decimal("0.0005") * (len(stages) + 1)
    assert duration >= sum(stages) - rounding, (duration, stages)
    assert stages[0] > 0  # a 96x48 filter can log 0.000, a WMS read cannot
    assert re.search(rf"request method=POST path=/wps operation=execute "
                     rf"identifier=get_raster_process "
                     rf"job={job} status=200 duration_ms=[\d.]+", log)


def test_failed_job_line_names_the_reason(faulty_wps, fault_proxy):
    since = log_end(faulty_wps)
    fault_proxy.mode = "http500"
    try:
        post(faulty_wps.url, execute_body(
            [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935)],
            document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    log = log_after(faulty_wps, since, r"request method=POST path=/wps operation=execute ")
    assert re.search(r"job=\S+ outcome=failed duration_s=[\d.]+ reason='the WMS answered "
                     r"with HTTP status 500'", log)


def test_get_requests_are_logged_with_operation(wps):
    since = log_end(wps)
    get(wps.url, request="DescribeProcess", identifier="get_raster_process")
    log = log_after(wps, since, r"request method=GET path=/wps ")
    assert re.search(r"request method=GET path=/wps operation=describeprocess "
                     r"identifier=get_raster_process job=- status=200", log)


def test_health_reports_the_wms_from_its_probes(wps, orphan_wps):
    """/health: 200 while the instance serves, "degraded" with a source down (a load
    balancer keeps the instance); /health/upstream: 503 then, for monitoring."""
    from waiting import wait_until

    ready = wait_until(lambda: (r := requests.get(f"{wps.base}/health", timeout=30)).json()[
        "status"] == "ok" and r, 30, "the sample WMS probed ok")
    assert ready.status_code == 200 and ready.json()["sources"]["sample"]["checked"]
    assert requests.get(f"{wps.base}/health/upstream", timeout=30).status_code == 200
    down = wait_until(lambda: (r := requests.get(f"{orphan_wps.base}/health", timeout=30)).json()[
        "status"] == "degraded" and r, 30, "the stopped WMS probed down")
    assert down.status_code == 200
    source = down.json()["sources"]["sample"]
    assert source["status"] == "down" and source["since"] <= source["checked"]
    assert requests.get(f"{orphan_wps.base}/health/upstream", timeout=30).status_code == 503


def test_version_in_capabilities(wps):
    doc = etree.fromstring(get(wps.url, request="GetCapabilities").content)
    abstract = doc.findtext("ows:ServiceIdentification/ows:Abstract", "", NS)
    assert f"Service version {__version__}" in abstract


def test_async_request_line_names_its_job(wps):
    from jobs import submit, wait_for_end

    since = log_end(wps)
    url = submit(wps)
    job = url.rsplit("/", 1)[1][: -len(".xml")]
    wait_for_end(url)
    log = log_after(wps, since, rf"job={job} outcome=")
    assert re.search(rf"operation=execute identifier=get_raster_process job={job} status=200", log)
    assert re.search(rf"job={job} start mode=async", log)
    assert re.search(rf"job={job} outcome=succeeded", log)
