"""Refusals before a job starts (ExceptionReports with locators) and failures during one
(a sync request: an ExceptionReport with a 5xx status naming the WMS source; an async job:
ProcessFailed), each with a message a person can act on, leaving no output behind."""

from __future__ import annotations

import os

import pytest
from jobs import submit, wait_for_end
from schemas.validate import validate
from wpsclient import (
    bbox_input,
    document_output,
    exception_of,
    execute_body,
    get,
    literal,
    post,
    raw_output,
)

POINT = [literal("lat", 45.554), literal("lon", -73.4935)]
LAYER = literal("wms", "sample_city")


def entries(path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


@pytest.mark.parametrize(
    ("inputs", "code", "locator", "hint"),
    [
        ([LAYER, *POINT, literal("method", "laplace")], "InvalidParameterValue", "method",
         "sobel_x"),
        ([literal("wms", "no_such_layer"), *POINT], "InvalidParameterValue", "wms",
         "sample_city"),
        ([LAYER, literal("lat", "NaN"), literal("lon", -73.4935)], "InvalidParameterValue",
         "lat", "-90"),
        ([LAYER, literal("lat", "abc"), literal("lon", -73.4935)], "InvalidParameterValue",
         "lat", "float"),
        ([LAYER, literal("lat", 91), literal("lon", -73.4935)], "InvalidParameterValue",
         "lat", "90"),
        ([LAYER, literal("lat", 45.5), literal("lon", "1e309")], "InvalidParameterValue",
         "lon", "180"),
        ([LAYER, bbox_input("45.56 -73.49", "45.55 -73.50")], "InvalidParameterValue",
         "bbox", "inverted"),
        ([LAYER, bbox_input("45.55 -73.49", "45.55 -73.48")], "InvalidParameterValue",
         "bbox", "empty"),
        ([LAYER, bbox_input("40 -80", "46 -70")], "InvalidParameterValue", "bbox",
         "maximum"),
        ([LAYER, bbox_input("-8182000 5700000", "-8181000 5701000", "EPSG:3857")],
         "InvalidParameterValue", "bbox", "EPSG:4326"),
        ([LAYER, *POINT, literal("width", 20000)], "InvalidParameterValue", "width", "16384"),
        ([LAYER, *POINT, literal("height", 0)], "InvalidParameterValue", "height",
         "positive"),
        ([LAYER, *POINT, literal("width", -1)], "InvalidParameterValue", "width", "positive"),
        ([LAYER, *POINT, literal("stretch", "log")], "InvalidParameterValue", "stretch",
         "signed"),
        ([*POINT], "MissingParameterValue", "wms", "wms"),
        ([LAYER, literal("lon", -73.4935)], "MissingParameterValue", "lat", "bbox"),
        ([LAYER, *POINT, literal("colour", "red")], "InvalidParameterValue", "colour",
         "has:"),
        ([LAYER, *POINT, literal("lat", 45.6)], "InvalidParameterValue", "lat", "2 times"),
    ],
)
def test_bad_input_is_refused_before_the_job(wps, inputs, code, locator, hint):
    before = entries(wps.output_path)
    answer = post(wps.url, execute_body(inputs, document_output(("geotiff", "image/tiff"))))
    assert answer.status_code == 400
    got_code, got_locator, text = exception_of(answer)
    assert (got_code, got_locator) == (code, locator), text
    assert hint.lower() in text.lower()
    assert entries(wps.output_path) == before


def test_bad_input_by_key_value_pairs(wps):
    answer = get(wps.url, request="Execute", identifier="get_raster_process",
                 DataInputs="wms=sample_city;lat=45.554;lon=-73.4935;method=roberts")
    assert answer.status_code == 400
    assert exception_of(answer)[:2] == ("InvalidParameterValue", "method")


def test_unknown_process_is_refused(wps):
    answer = post(wps.url, execute_body([LAYER, *POINT], raw_output(), identifier="nope"))
    assert answer.status_code == 400
    assert exception_of(answer)[:2] == ("InvalidParameterValue", "Identifier")


def test_unknown_output_is_refused(wps):
    answer = post(wps.url, execute_body([LAYER, *POINT], raw_output("thumbnail")))
    assert answer.status_code == 400
    assert exception_of(answer)[:2] == ("InvalidParameterValue", "thumbnail")


def snapshot(server) -> tuple[list[str], list[str]]:
    return entries(server.output_path), entries(server.directory / "work")


# (fault proxy mode, layer, HTTP status, words of the message): an upstream failure is the
# server's problem, never the client's: 502 for a bad answer, 504 for no answer in time.
FAULTS = [
    ("hold", "sample_city", 504, "did not answer"),  # held past the WPS's timeout
    ("http500", "sample_city", 502, "HTTP status 500"),
    ("not_image", "sample_city", 502, "usable image"),
    ("truncated", "sample_city", 502, "usable image"),
    ("wrong_size", "sample_city", 502, "WMS"),
    ("pass", "broken_layer", 502, "refused"),
]
OUTPUT_FORMS = {"document": document_output(("geotiff", "image/tiff")), "raw": raw_output()}


def upstream_failure(answer) -> tuple[int, str, str, str]:
    """(HTTP status, exceptionCode, locator, text) of an ExceptionReport answer."""
    return (answer.status_code, *exception_of(answer))


@pytest.mark.parametrize("form", sorted(OUTPUT_FORMS))
@pytest.mark.parametrize(("mode", "layer", "status", "message"), FAULTS)
def test_wms_failure_during_a_sync_job_is_a_5xx_exception(faulty_wps, fault_proxy, mode, layer,
                                                          status, message, form):
    """A sync Execute whose WMS fails: an ExceptionReport with NoApplicableCode, the source's
    name as locator, a message a person can act on (no URL), HTTP 502/504; nothing
    written; the service still up."""
    before = snapshot(faulty_wps)
    fault_proxy.mode = mode
    try:
        answer = post(faulty_wps.url, execute_body([literal("wms", layer), *POINT],
                                                   OUTPUT_FORMS[form]))
    finally:
        fault_proxy.mode = "pass"
    got_status, code, locator, text = upstream_failure(answer)
    assert (got_status, code, locator) == (status, "NoApplicableCode", "sample"), text
    assert message.lower() in text.lower()
    assert "http://" not in text and "127.0.0.1" not in text
    assert validate(answer.content) == []
    assert snapshot(faulty_wps) == before
    assert get(faulty_wps.url, request="GetCapabilities").status_code == 200


def test_an_async_job_whose_wms_fails_ends_process_failed(faulty_wps, fault_proxy):
    """Async: the status document says ProcessFailed with the same message."""
    fault_proxy.mode = "http500"
    try:
        url = submit(faulty_wps, [LAYER, *POINT], document_output(("geotiff", "image/tiff")))
        final = wait_for_end(url)[-1]
    finally:
        fault_proxy.mode = "pass"
    assert final[0] == "ProcessFailed" and "HTTP status 500" in final[2]


def test_wms_down_during_the_job(orphan_wps):
    """The WMS answered at start-up and is gone now: 503 with Retry-After."""
    before = snapshot(orphan_wps)
    answer = post(orphan_wps.url, execute_body(
        [LAYER, *POINT], document_output(("geotiff", "image/tiff"))))
    status, code, locator, text = upstream_failure(answer)
    assert (status, code, locator) == (503, "NoApplicableCode", "sample")
    assert "not reachable" in text and int(answer.headers["Retry-After"]) > 0
    assert snapshot(orphan_wps) == before


def test_transient_wms_errors_are_retried(retrying_wps, fault_proxy):
    """Two 503 answers, then a good one: with retries = 2 the request succeeds."""
    fault_proxy.mode, fault_proxy.getmaps = "flaky", 0
    try:
        answer = post(retrying_wps.url, execute_body([LAYER, *POINT], raw_output()))
    finally:
        fault_proxy.mode = "pass"
    assert answer.status_code == 200
    assert answer.content.startswith(b"\x89PNG")
    assert fault_proxy.getmaps == 3


def test_retries_are_bounded(retrying_wps, fault_proxy):
    """Always failing: 1 + 2 attempts, then the 502 exception."""
    fault_proxy.mode, fault_proxy.getmaps = "http500", 0
    try:
        answer = post(retrying_wps.url, execute_body(
            [LAYER, *POINT], document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    assert upstream_failure(answer)[0] == 502 and "HTTP status 500" in exception_of(answer)[2]
    assert fault_proxy.getmaps == 3
