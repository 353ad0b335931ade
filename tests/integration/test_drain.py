"""SIGTERM to an instance's gunicorn master, behind its nginx front: /health answers 503
"draining" while a sync Execute is in flight, new requests are refused with 503 and
Retry-After (at once with drain_s = 0; after drain_s, during which they are still served),
the Execute is answered in full, then the master leaves with every worker."""

from __future__ import annotations

import io
import os
import signal
import threading

import numpy as np
import pytest
import rasterio
import requests
from keyed import start_keyed_wps as start_wps
from reference import aligned, expected_gradient
from waiting import wait_until
from wpsclient import bbox_input, exception_of, execute_body, literal, post, raw_output

from devtools.servers import start_front

WINDOW = (700, 600, 96, 64)  # col, row, width, height in the sample


@pytest.fixture
def instance_factory(wms_server, tmp_path):
    """Start instances (gunicorn with two workers behind its nginx front) reading the
    sample WMS through a proxy the test can hold; everything is stopped afterwards."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port)
    started = []

    def start(name: str, **server):
        wps = start_wps(tmp_path / name, proxy.url, workers=2,
                        overrides={"wms": {"timeout": 60}, "server": server})
        front = start_front(wps, tmp_path / f"{name}-front")
        started.append(front)
        return front

    yield start, proxy
    proxy.release()
    for front in started:
        front.stop()
        front.wps.stop()
    proxy.close()


def _health(front) -> tuple[int, str]:
    answer = requests.get(f"{front.base}/health", timeout=30)
    try:
        return answer.status_code, answer.json().get("status")
    except ValueError:  # nginx's own 502 once gunicorn is gone
        return answer.status_code, ""


def _group_left(pid: int) -> bool:
    """Whether any process of the group `pid` leads (the master and its workers) is left."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _execute_geotiff(front, sample) -> requests.Response:
    west, south, east, north = aligned(sample, *WINDOW)
    body = execute_body([literal("wms", "sample_city"),
                         bbox_input(f"{south!r} {west!r}", f"{north!r} {east!r}"),
                         literal("width", WINDOW[2]), literal("height", WINDOW[3]),
                         literal("method", "sobel_x")],
                        raw_output("geotiff", "image/tiff"))
    return post(front.url, body, timeout=120)


def test_sigterm_drains_then_leaves(instance_factory, sample):
    start, proxy = instance_factory
    front = start("drained")
    master = front.wps.process
    assert _health(front) == (200, "ok")

    proxy.hold()
    answers: list[requests.Response] = []
    in_flight = threading.Thread(target=lambda: answers.append(_execute_geotiff(front, sample)))
    in_flight.start()
    proxy.wait_held(1)  # the Execute is in a worker, waiting for the WMS

    master.send_signal(signal.SIGTERM)
    wait_until(lambda: _health(front) == (503, "draining"), 30, "/health to say draining")
    refused = requests.get(front.url, params={"service": "WPS", "request": "GetCapabilities"},
                           timeout=30)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert exception_of(refused)[0] == "ServerBusy"
    assert master.poll() is None  # it waits for the Execute

    proxy.release()
    in_flight.join(120)
    assert [a.status_code for a in answers] == [200]
    with rasterio.open(io.BytesIO(answers[0].content)) as tif:
        values = tif.read(1)
    np.testing.assert_allclose(values, expected_gradient(sample, "sobel_x", *WINDOW),
                               atol=1e-3)
    assert master.wait(timeout=60) == 0
    wait_until(lambda: not _group_left(master.pid), 30, "no process of the instance left")
    assert _health(front)[0] == 502  # the front stays; nothing answers behind it


def test_drain_s_keeps_an_idle_instance_draining(instance_factory):
    """With [server] drain_s, an idle instance keeps answering /health 503 (and /metrics)
    for a load balancer to notice, and still serves every other request meanwhile (the
    drain's first phase); a second SIGTERM ends the drain at once."""
    start, _ = instance_factory
    front = start("lingering", drain_s=600)
    master = front.wps.process
    master.send_signal(signal.SIGTERM)
    wait_until(lambda: _health(front) == (503, "draining"), 30, "/health to say draining")
    assert "wps_draining 1.0" in requests.get(f"{front.base}/metrics", timeout=30).text
    served = requests.get(f"{front.base}/ogcapi/processes", timeout=30)
    assert served.status_code == 200 and "get_raster_process" in served.text
    assert master.poll() is None
    master.send_signal(signal.SIGTERM)
    assert master.wait(timeout=60) == 0
    wait_until(lambda: not _group_left(master.pid), 30, "no process of the instance left")
