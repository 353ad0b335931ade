"""Refusals before a job starts (ExceptionReports with locators) and failures during one
(ProcessFailed with a message a person can act on), leaving no output behind."""

from __future__ import annotations

import os

import pytest
from wpsclient import (
    bbox_input,
    document_output,
    exception_of,
    execute_body,
    failure_of,
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


FAULTS = [
    ("hold", "sample_city", "timeout"),  # no answer before the WPS gives up (released after)
    ("http500", "sample_city", "HTTP status 500"),
    ("not_image", "sample_city", "usable image"),
    ("truncated", "sample_city", "usable image"),
    ("pass", "broken_layer", "refused"),
]


@pytest.mark.parametrize(("mode", "layer", "message"), FAULTS)
def test_wms_failure_during_the_job_is_process_failed(faulty_wps, fault_proxy, mode, layer,
                                                      message):
    """ResponseDocument: ProcessFailed with a short reason; nothing written; still up."""
    before = snapshot(faulty_wps)
    fault_proxy.mode = mode
    try:
        answer = post(faulty_wps.url, execute_body(
            [literal("wms", layer), *POINT], document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    assert answer.status_code == 200
    assert message.lower() in failure_of(answer).lower()
    assert snapshot(faulty_wps) == before
    assert get(faulty_wps.url, request="GetCapabilities").status_code == 200


def test_wms_failure_with_raw_output_is_an_exception_report(faulty_wps, fault_proxy):
    before = snapshot(faulty_wps)
    fault_proxy.mode = "http500"
    try:
        answer = post(faulty_wps.url, execute_body([LAYER, *POINT], raw_output()))
    finally:
        fault_proxy.mode = "pass"
    assert answer.status_code >= 400
    code, _, text = exception_of(answer)
    assert code == "NoApplicableCode"
    assert "HTTP status 500" in text
    assert snapshot(faulty_wps) == before


def test_wms_down_during_the_job(orphan_wps):
    before = snapshot(orphan_wps)
    answer = post(orphan_wps.url, execute_body(
        [LAYER, *POINT], document_output(("geotiff", "image/tiff"))))
    assert "not reachable" in failure_of(answer)
    assert snapshot(orphan_wps) == before


def test_wrong_image_size_is_process_failed(faulty_wps, fault_proxy):
    before = snapshot(faulty_wps)
    fault_proxy.mode = "wrong_size"
    try:
        answer = post(faulty_wps.url, execute_body(
            [LAYER, *POINT], document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    text = failure_of(answer)
    assert "WMS" in text, text
    assert snapshot(faulty_wps) == before


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
    """Always failing: 1 + 2 attempts, then ProcessFailed."""
    fault_proxy.mode, fault_proxy.getmaps = "http500", 0
    try:
        answer = post(retrying_wps.url, execute_body(
            [LAYER, *POINT], document_output(("geotiff", "image/tiff"))))
    finally:
        fault_proxy.mode = "pass"
    assert "HTTP status 500" in failure_of(answer)
    assert fault_proxy.getmaps == 3
