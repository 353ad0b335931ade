"""Async job helpers: submit, read a status document, wait for the end with a deadline."""

from __future__ import annotations

import sqlite3
import time

import requests
from lxml import etree
from waiting import wait_until
from wpsclient import NS, document_output, execute_body, literal, post

POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 300), literal("height", 200)]


BOTH = document_output(("image", "image/png"), ("geotiff", "image/tiff"))


def submit(server, inputs=POINT, form=BOTH) -> str:
    answer = post(server.url, execute_body(inputs, form, store=True, status=True))
    assert answer.status_code == 200, answer.text[:500]
    doc = etree.fromstring(answer.content)
    assert doc.find(".//wps:ProcessAccepted", NS) is not None
    return doc.get("statusLocation")


def status_of(url: str) -> tuple[str, str | None, str, etree._Element]:
    doc = etree.fromstring(requests.get(url, timeout=30).content)
    status = doc.find("wps:Status", NS)[0]
    text = " ".join("".join(status.itertext()).split())
    return etree.QName(status).localname, status.get("percentCompleted"), text, doc


def wait_for_end(url: str, timeout_s: float = 60) -> list[tuple]:
    """Poll the status document until the job succeeds or fails; every distinct state seen
    (name, percent, text, document), in order."""
    seen: list[tuple] = []

    def ended() -> bool:
        state = status_of(url)
        if not seen or state[:3] != seen[-1][:3]:
            seen.append(state)
        return state[0] in ("ProcessSucceeded", "ProcessFailed")

    wait_until(ended, timeout_s, lambda: f"the job to end: {[s[:3] for s in seen]}")
    return seen


def references_of(doc) -> dict[str, str]:
    return {
        o.findtext("ows:Identifier", "", NS): o.find("wps:Reference", NS).get("href")
        for o in doc.iterfind(".//wps:ProcessOutputs/wps:Output", NS)
    }


def job_pid(server, uuid: str) -> int:
    with sqlite3.connect(server.directory / "pywps-logs.sqlite") as db:
        row = db.execute("SELECT pid FROM edge_job_owners WHERE uuid = ?", (uuid,)).fetchone()
    return row[0] if row else 0


def wait_started(url: str, server) -> int:
    uuid = url.rsplit("/", 1)[1][: -len(".xml")]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # The job's own pid is recorded before it reports Started (the accepting
        # worker's pid is recorded before that): read it only once Started is seen.
        if status_of(url)[0] == "ProcessStarted":
            return job_pid(server, uuid)
        time.sleep(0.05)
    raise AssertionError("job never started")

