"""Async Execute: Accepted -> Started (progress) -> Succeeded or Failed, jobs in a shared
store any worker answers for, and jobs that always end (dead worker, maximum run time)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import rasterio
import requests
from jobs import references_of, status_of, submit, wait_for_end, wait_started
from lxml import etree
from wpsclient import literal


@pytest.fixture(scope="module")
def held_wps(wms_server, tmp_path_factory):
    """A WPS whose WMS holds every GetMap for 1 s: a job stays Started (reading the WMS)
    long enough for a poll to see it; unheld, a small job can end between two polls."""
    from fault_proxy import FaultProxy

    from devtools.servers import start_wps

    proxy = FaultProxy(wms_server.port, mode="delay", delay_s=1.0)
    server = start_wps(tmp_path_factory.mktemp("wps-held"), proxy.url, workers=1)
    yield server
    server.stop()
    proxy.close()


def test_async_moves_through_stages_and_succeeds(held_wps):
    url = submit(held_wps)
    seen = wait_for_end(url)
    names = [s[0] for s in seen]
    assert names[-1] == "ProcessSucceeded"
    started = [int(s[1]) for s in seen if s[0] == "ProcessStarted"]
    assert started == sorted(started) and started, names
    refs = references_of(seen[-1][3])
    with rasterio.open(io.BytesIO(requests.get(refs["geotiff"], timeout=30).content)) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.shape == (200, 300)
        assert np.isfinite(ds.read(1)).all()
    assert requests.get(refs["image"], timeout=30).content.startswith(b"\x89PNG")


def test_async_progress_reaches_real_milestones(wps):
    """The job reports each stage with a rising percentage (read back from the log, since
    a poll can miss a stage that lasts a millisecond)."""
    url = submit(wps)
    assert wait_for_end(url)[-1][0] == "ProcessSucceeded"
    uuid = url.rsplit("/", 1)[1][: -len(".xml")]
    log = (wps.directory / "gunicorn.log").read_text()
    stages = re.findall(rf"job={uuid} stage='([^']*)' percent=(\d+)", log)
    assert [s for s, _ in stages] == [
        "inputs checked against the WMS capabilities", "reading the WMS", "filtering",
        "writing the GeoTIFF", "writing the PNG", "publishing outputs"]
    percents = [int(p) for _, p in stages]
    assert percents == sorted(percents) and percents[-1] < 100


def test_async_failure_carries_the_reason(faulty_wps, fault_proxy):
    fault_proxy.mode = "http500"
    try:
        seen = wait_for_end(submit(faulty_wps))
    finally:
        fault_proxy.mode = "pass"
    assert seen[-1][0] == "ProcessFailed"
    assert "HTTP status 500" in seen[-1][2]


def test_killed_worker_ends_the_job_failed(slow_wps):
    """SIGKILL the process running a job (held up by the slow WMS): the job ends Failed."""
    url = submit(slow_wps)
    os.kill(wait_started(url, slow_wps), signal.SIGKILL)
    time.sleep(2.5)  # the reaper runs at most every 2 s per worker
    name, _, text, _ = status_of(url)
    assert name == "ProcessFailed", text
    assert "died" in text
    assert list(slow_wps.output_path.glob("*/*")) == []


def test_job_over_the_maximum_run_time_is_stopped(slow_wps):
    url = submit(slow_wps)
    pid = wait_started(url, slow_wps)
    seen = wait_for_end(url, timeout_s=15)
    assert seen[-1][0] == "ProcessFailed"
    assert "maximum run time of 4 s" in seen[-1][2]
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_jobs_in_postgresql_are_answered_by_any_worker(pg_wps, postgres):
    """Several async jobs through three workers sharing the PostgreSQL job store."""
    urls = [submit(pg_wps, [literal("wms", "sample_city"), literal("lat", 45.5535 + i * 1e-4),
                            literal("lon", -73.4935), literal("width", 128),
                            literal("height", 128)]) for i in range(6)]
    for url in urls:
        assert wait_for_end(url)[-1][0] == "ProcessSucceeded"
    uuids = [u.rsplit("/", 1)[1][:-4] for u in urls]
    rows = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", "wps",
         "-At", "-c", "SELECT uuid, status FROM pywps_requests WHERE operation = 'execute'"],
        check=True, capture_output=True, text=True).stdout.split()
    statuses = dict(row.split("|") for row in rows)
    assert all(statuses[u] == "4" for u in uuids)  # WPS_STATUS.SUCCEEDED
    owners = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", "wps",
         "-At", "-c", "SELECT count(*) FROM edge_job_owners"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert int(owners) >= 6


def test_async_by_key_value_pairs(wps):
    """The README's GET form: storeExecuteResponse=true&status=true."""
    from wpsclient import get

    answer = get(wps.url, request="Execute", identifier="get_raster_process",
                 DataInputs="wms=sample_city;lat=45.554;lon=-73.4935;width=64;height=64",
                 ResponseDocument="geotiff@asReference=true", storeExecuteResponse="true",
                 status="true")
    url = etree.fromstring(answer.content).get("statusLocation")
    final = wait_for_end(url)[-1]
    assert final[0] == "ProcessSucceeded"
    assert list(references_of(final[3])) == ["geotiff"]
