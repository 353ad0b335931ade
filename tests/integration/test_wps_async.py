"""Async Execute: Accepted -> Started (progress) -> Succeeded or Failed, jobs in a shared
store any worker answers for, and jobs that always end (dead worker, maximum run time)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess

import numpy as np
import rasterio
import requests
from jobs import (
    alive,
    freeze,
    references_of,
    status_of,
    store_row,
    submit,
    wait_for_end,
    wait_started,
)
from lxml import etree
from schemas.validate import validate
from waiting import wait_until
from wpsclient import NS, literal

from wps_app.jobs.schema import SCHEMA_VERSION


def test_async_moves_through_stages_and_succeeds(gated_wps, gate):
    """Accepted, then Started with its progress while the job waits for its GetMap (held by
    the proxy), then Succeeded with both outputs."""
    url = submit(gated_wps)  # answered ProcessAccepted
    gate.wait_held(1)
    name, percent, text, _ = status_of(url)
    assert name == "ProcessStarted", text
    assert percent is not None and 0 < int(percent) < 100, percent
    assert "reading the WMS" in text
    gate.release()
    seen = wait_for_end(url)
    names = [s[0] for s in seen]
    assert names[-1] == "ProcessSucceeded", seen[-1][2]
    started = [int(percent)] + [int(s[1]) for s in seen if s[0] == "ProcessStarted"]
    assert started == sorted(started), names
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
    # PyWPS removes the job's work folder after it stores the final status: wait for it,
    # so that the next test on this shared server finds it idle
    work = faulty_wps.directory / "work"
    wait_until(lambda: not any(work.iterdir()), 10, f"the failed job's work folder in {work} "
               "to be removed")


def test_killed_worker_ends_the_job_failed(slow_wps):
    """SIGKILL the process running a job (held up by the slow WMS): its lease (3 s) expires
    and the job ends Failed, in the store and in a valid status document."""
    url = submit(slow_wps)
    os.kill(wait_started(url, slow_wps), signal.SIGKILL)
    name, _, text, doc = wait_for_end(url, timeout_s=30)[-1]
    assert name == "ProcessFailed", text
    assert "stopped answering" in text
    assert validate(etree.tostring(doc)) == []
    assert doc.findtext("wps:Process/ows:Identifier", None, NS) == "get_raster_process"
    row = store_row(slow_wps, url.rsplit("/", 1)[1][:-4])
    assert row["status"] == "failed" and "stopped answering" in row["message"]
    assert row["lease_expires"] is None and row["finished"]
    assert list(slow_wps.output_path.glob("*/*")) == []


def test_a_hung_job_that_comes_back_gives_up(slow_wps):
    """SIGSTOP the job's process: its lease expires and the job is failed elsewhere; once
    resumed, the process learns it lost the job and ends without touching its status."""
    url = submit(slow_wps)
    pid = wait_started(url, slow_wps)
    freeze(pid, slow_wps)
    try:
        final = wait_for_end(url, timeout_s=30)[-1]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert final[0] == "ProcessFailed" and "stopped answering" in final[2]
    wait_until(lambda: not alive(pid), 20, "the resumed process ends")
    name, _, text, _ = status_of(url)
    assert name == "ProcessFailed" and "stopped answering" in text
    assert store_row(slow_wps, url.rsplit("/", 1)[1][:-4])["message"] == text


def test_job_over_the_maximum_run_time_is_stopped(slow_wps):
    """The job's own process fails it at max_runtime (4 s) and ends itself."""
    url = submit(slow_wps)
    pid = wait_started(url, slow_wps)
    seen = wait_for_end(url, timeout_s=30)
    assert seen[-1][0] == "ProcessFailed"
    assert "maximum run time of 4 s" in seen[-1][2]
    wait_until(lambda: not alive(pid), 20, "the job's process ends")
    assert store_row(slow_wps, url.rsplit("/", 1)[1][:-4])["status"] == "failed"


def test_jobs_in_postgresql_are_answered_by_any_worker(pg_wps, postgres):
    """Several async jobs through three workers sharing the PostgreSQL job store."""
    urls = [submit(pg_wps, [literal("wms", "sample_city"), literal("lat", 45.5535 + i * 1e-4),
                            literal("lon", -73.4935), literal("width", 128),
                            literal("height", 128)]) for i in range(6)]
    for url in urls:
        assert wait_for_end(url)[-1][0] == "ProcessSucceeded"
    uuids = [u.rsplit("/", 1)[1][:-4] for u in urls]

    def psql(query: str) -> list[str]:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d",
             "wps", "-At", "-c", query], check=True, capture_output=True, text=True
        ).stdout.split()

    rows = psql("SELECT job_id, status, binding, progress FROM edge_jobs")
    statuses = {job_id: rest for job_id, *rest in (row.split("|") for row in rows)}
    assert all(statuses[u] == ["succeeded", "wps", "100"] for u in uuids)
    assert psql("SELECT version FROM edge_schema_version") == [str(SCHEMA_VERSION)]


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
