"""Async job helpers: submit, read a status document, wait for the end with a deadline."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
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


def store_row(server, uuid: str) -> dict | None:
    """Job `uuid` as the server's JobStore (a file SQLite) holds it."""
    with sqlite3.connect(server.directory / "pywps-logs.sqlite") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM edge_jobs WHERE job_id = ?", (uuid,)).fetchone()
    return dict(row) if row else None


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].decode().split()


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not)."""
    try:
        return _stat(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def job_processes(server) -> list[int]:
    """The live processes running async jobs of `server`: forks of its gunicorn (the same
    command line) outside gunicorn's session (PyWPS detaches a job with setsid).

    Tests only: the service itself never looks at process ids."""
    with open(f"/proc/{server.process.pid}/cmdline", "rb") as handle:
        command = handle.read()
    session = _stat(server.process.pid)[3]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read() != command:
                    continue
            fields = _stat(int(entry))
        except (OSError, IndexError):
            continue
        if fields[3] != session and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def freeze(pid: int, server, timeout_s: float = 20) -> None:
    """SIGSTOP process `pid` at a moment it holds no lock on the server's SQLite store (a
    process frozen inside a write transaction would stall every other writer): stop it,
    try a write that needs the whole database at once, resume it and retry if that fails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        os.kill(pid, signal.SIGSTOP)
        try:
            with sqlite3.connect(server.directory / "pywps-logs.sqlite", timeout=0,
                                 isolation_level=None) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("UPDATE edge_schema_version SET version = version")
                db.execute("COMMIT")
            return
        except sqlite3.OperationalError:  # "database is locked": by the frozen process
            os.kill(pid, signal.SIGCONT)
            threading.Event().wait(0.01)
    raise AssertionError("the process always held the database")


def wait_started(url: str, server, timeout_s: float = 20) -> int:
    """Wait until the job reports Started; returns the id of the process running it (the
    only job process of `server` then)."""
    def started() -> int | None:
        if status_of(url)[0] == "ProcessStarted":
            running = job_processes(server)
            if len(running) == 1:
                return running[0]
        return None

    return wait_until(started, timeout_s, "the job to start, alone")
