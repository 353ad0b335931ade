"""Admission limits: async jobs running and queued (shared store), ServerBusy beyond."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

from jobs import status_of, store_row, submit, wait_for_end, wait_started
from waiting import wait_until
from wpsclient import exception_of, execute_body, literal, post, raw_output

TILE = [literal("wms", "sample_city"), literal("width", 32), literal("height", 32)]


def point(i: int) -> list[str]:
    return [*TILE, literal("lat", 45.5535 + i * 1e-4), literal("lon", -73.4935)]


def test_queue_then_server_busy_then_drain(busy_wps, busy_gate):
    """1 running + 1 queued; the third is ServerBusy (503, Retry-After); both finish."""
    first = submit(busy_wps, point(0))
    second = submit(busy_wps, point(1))
    busy_gate.wait_held(1)  # a job runs, waiting for its GetMap: the first one
    assert status_of(first)[0] == "ProcessStarted"
    assert status_of(second)[0] == "ProcessAccepted"  # waiting in the queue
    third = post(busy_wps.url, execute_body(
        point(2), '<wps:ResponseDocument storeExecuteResponse="true" status="true">'
        '<wps:Output asReference="true"><ows:Identifier>geotiff</ows:Identifier></wps:Output>'
        "</wps:ResponseDocument>"))
    assert third.status_code == 503
    assert third.headers["Retry-After"].isdigit()
    assert exception_of(third)[0] == "ServerBusy"
    # sync requests are bounded by the worker pool, not by the async queue: this one reaches
    # the WMS while the queue is still full
    with ThreadPoolExecutor(1) as pool:
        sync = pool.submit(post, busy_wps.url,
                           execute_body(point(3), raw_output("geotiff", "image/tiff")))
        busy_gate.wait_held(2)
        assert status_of(second)[0] == "ProcessAccepted"
        busy_gate.release()
        assert sync.result().status_code == 200
    assert wait_for_end(first, 30)[-1][0] == "ProcessSucceeded"
    assert wait_for_end(second, 30)[-1][0] == "ProcessSucceeded"


def test_queue_drains_after_a_crashed_job(busy_wps, busy_gate):
    """A running job is killed: its lease expires, the reaper fails it and starts the
    queued one."""
    first = submit(busy_wps, point(4))
    second = submit(busy_wps, point(5))
    busy_gate.wait_held(1)
    pid = wait_started(first, busy_wps)
    assert pid and pid != os.getpid()
    assert status_of(second)[0] == "ProcessAccepted"  # waiting in the queue
    os.kill(pid, signal.SIGKILL)

    def failed() -> tuple | None:
        state = status_of(first)
        return state if state[0] == "ProcessFailed" else None

    assert "stopped answering" in wait_until(failed, 30, "the killed job to end Failed")[2]
    # the queued job starts: its GetMap joins the killed job's, still held by the proxy
    busy_gate.wait_held(2)
    busy_gate.release()
    assert wait_for_end(second, 30)[-1][0] == "ProcessSucceeded"
    row = store_row(busy_wps, second.rsplit("/", 1)[1][:-4])
    assert row["status"] == "succeeded" and row["started"] and not row["queued"]
