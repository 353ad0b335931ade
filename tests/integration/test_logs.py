"""Log lines a client cannot forge; a client's mistake costs one INFO line."""

from __future__ import annotations

import uuid

import requests
from waiting import wait_until


def log_lines_with(server, marker: str, timeout_s: float = 20) -> list[str]:
    """The log's lines once one of them holds `marker` (the request line is written when
    the request ends; gunicorn's error log may lag a little)."""
    def lines() -> list[str] | None:
        text = (server.directory / "gunicorn.log").read_text(errors="replace").splitlines()
        return text if any(marker in line for line in text) else None

    return wait_until(lines, timeout_s, f"a log line holding {marker!r}")


def test_a_newline_in_a_path_cannot_start_a_log_line(wps):
    marker = uuid.uuid4().hex
    forged = f"2026-01-01 00:00:00,000 ERROR forged-{marker}: admin logged in"
    requests.get(f"{wps.base}/outputs/x%0a{forged.replace(' ', '%20')}", timeout=30)
    lines = log_lines_with(wps, marker)
    assert not [line for line in lines if line.startswith("2026-01-01")]
    assert any(f"x\\n2026-01-01 00:00:00,000 ERROR forged-{marker}" in line for line in lines)


def test_a_newline_in_an_identifier_cannot_start_a_log_line(wps):
    marker = uuid.uuid4().hex
    answer = requests.get(wps.url, timeout=30, params={
        "service": "WPS", "version": "1.0.0", "request": "DescribeProcess",
        "identifier": f"nope\r\nINFO forged-{marker}"})
    assert answer.status_code == 400
    lines = log_lines_with(wps, marker)
    assert not [line for line in lines if line.startswith("INFO forged")]
    assert any(f"nope\\r\\nINFO forged-{marker}" in line for line in lines)


def test_a_bad_request_is_one_info_line(wps):
    """PyWPS logs each exception it raises as an ERROR with a traceback; a refusal of a
    client's request leaves the request line only."""
    before = len((wps.directory / "gunicorn.log").read_text(errors="replace").splitlines())
    marker = uuid.uuid4().hex
    for params in ({"request": "DescribeProcess", "identifier": f"nope-{marker}"},
                   {"request": "Execute", "identifier": f"nope-{marker}",
                    "DataInputs": "wms=sample_city;lat=45;lon=-73"}):
        answer = requests.get(wps.url, timeout=30,
                              params={"service": "WPS", "version": "1.0.0", **params})
        assert answer.status_code == 400
    lines = log_lines_with(wps, f"operation=execute identifier=nope-{marker}")[before:]
    mentioning = [line for line in lines if marker in line]
    assert len(mentioning) == 2 and all(" INFO " in line for line in mentioning), mentioning
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line], lines
