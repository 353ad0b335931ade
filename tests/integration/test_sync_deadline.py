"""A sync Execute ends before gunicorn's timeout, with an ExceptionReport and no work folder
left, however long its WMS takes ([jobs] sync_max_runtime)."""

from __future__ import annotations

import os

from wpsclient import exception_of, execute_body, literal, post, raw_output


def test_a_sync_execute_held_by_its_wms_ends_with_an_exception(deadline_wps, gate):
    work = deadline_wps.directory / "work"
    before = sorted(os.listdir(work)) if work.exists() else []
    # The WMS never answers while the gate is closed. Its own 30 s timeout is cut to fit
    # the 3 s limit: the answer comes long before this client's 20 s deadline, which an
    # Execute waiting for the WMS's timeout (or gunicorn's) would miss.
    answer = post(deadline_wps.url, execute_body(
        [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936)],
        raw_output()), timeout=20)
    assert answer.status_code in (503, 504)
    code, _, text = exception_of(answer)
    assert code == "NoApplicableCode"
    assert "asynchronously" in text or "did not answer" in text
    assert (sorted(os.listdir(work)) if work.exists() else []) == before
