"""`make cluster` on loopback: HAProxy over two instances, PostgreSQL as the job store, a
Dask scheduler with two workers, one shared output folder.

The cluster is started once for the module, as `make cluster` starts it (python -m
devtools.cluster), reading the sample MapServer through a proxy that holds GetMaps while a
test wants a job observed running. The tests run in this order: instance 1 is killed in
one and restarted (python -m devtools.cluster restart) at its end; every instance is killed
in the one before the last, and restarted; the last one stops the cluster and checks that
nothing it started is left. [jobs] max_per_client is 1: every test waits for its jobs.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from jobs import alive, references_of, status_of, wait_for_end
from lxml import etree
from waiting import wait_until
from wpsclient import NS, document_output, exception_of, execute_body, literal, post

from wps_app.jobs import LEASE_EXPIRED, JobStore
from wps_app.settings import REPO_ROOT

LEASE_S = 8  # short, so a job whose worker died twice fails soon
POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936)]
SMALL = POINT + [literal("width", 64), literal("height", 64)]
GEOTIFF = document_output(("geotiff", "image/tiff"))
BOTH = document_output(("image", "image/png"), ("geotiff", "image/tiff"))
_LINE = re.compile(r"^(WPS|instance \d+|dask scheduler|job store|sample WMS): (\S+)$")


class RunningCluster:
    """The `python -m devtools.cluster` process and the addresses it printed."""

    def __init__(self, rundir: Path, env: dict[str, str]) -> None:
        self.rundir = rundir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.cluster", "--port", "0", "--instances", "2",
             "--workers", "2", "--gunicorn-workers", "1", "--rundir", str(rundir)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.printed = self._printed(timeout_s=150)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line.rstrip("\n"))

    def _printed(self, timeout_s: float) -> dict[str, str]:
        found: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while "job store" not in found:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"make cluster printed {self.output}") from None
            match = _LINE.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def url(self) -> str:
        return self.printed["WPS"]

    @property
    def base(self) -> str:
        return self.url.removesuffix("/wps")

    def instance_base(self, number: int) -> str:
        return self.printed[f"instance {number}"].removesuffix("/wps")

    @property
    def store(self) -> JobStore:
        return JobStore.from_url(self.printed["job store"])

    def stop(self, timeout_s: float = 90) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


@pytest.fixture(scope="module")
def held_wms(wms_server):
    """A proxy in front of the sample MapServer that holds GetMaps while a test says so."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port, hold_cap_s=90)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def cluster(held_wms, tmp_path_factory):
    import keyed

    # keyed in URL and header like every server of the suite; its folder is scanned
    env = dict(os.environ, WPS_WMS_URL=keyed.keyed_url(held_wms.url), WPS_WMS_TIMEOUT="120",
               WPS_WMS_RETRIES="0", WPS_JOBS_LEASE_S=str(LEASE_S), WPS_JOBS_MAX_PER_CLIENT="1",
               **keyed.keyed_environment())
    rundir = tmp_path_factory.mktemp("cluster")
    keyed.ALSO_SCANNED.append((rundir, {rundir / "pywps-cluster.cfg"}))
    running = RunningCluster(rundir, env)
    yield running
    held_wms.release()
    try:
        running.stop()
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)


@pytest.fixture
def hold(held_wms):
    held_wms.hold()
    yield held_wms
    held_wms.release()


def submit(url: str, inputs=POINT, form=BOTH, host: str | None = None,
           request_id: str | None = None) -> str:
    """An async Execute to `url`; `host` is the Host header HAProxy would forward,
    `request_id` the X-Request-ID it would set."""
    headers = {"Content-Type": "text/xml"}
    if host:
        headers["Host"] = host
    if request_id:
        headers["X-Request-ID"] = request_id
    answer = requests.post(url, data=execute_body(inputs, form, store=True, status=True),
                           headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    doc = etree.fromstring(answer.content)
    assert doc.find(".//wps:ProcessAccepted", NS) is not None, answer.text[:500]
    return doc.get("statusLocation")


def job_id_of(status_url: str) -> str:
    return status_url.rsplit("/", 1)[1].removesuffix(".xml")


def running_attempt(store: JobStore, job_id: str, attempt: int, timeout_s: float = 60):
    """Wait until attempt `attempt` of the job runs on a Dask worker; the job record."""
    def started():
        job = store.get(job_id)
        return job if (job.attempt == attempt and job.status == "running"
                       and job.worker) else None

    return wait_until(started, timeout_s, lambda: f"attempt {attempt}: {store.get(job_id)}")


def kill_worker(scheduler: str, address: str) -> None:
    """SIGKILL the Dask worker process at `address` (its nanny restarts one)."""
    import distributed

    with distributed.Client(scheduler, timeout=30, set_as_default=False) as client:
        pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)


def health(base: str) -> dict:
    answer = requests.get(f"{base}/health", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def restart(cluster: RunningCluster, *numbers: int) -> dict[int, int]:
    """`python -m devtools.cluster restart` for instances `numbers` (none: all); instance
    number -> its new gunicorn master's pid, as printed."""
    command = [sys.executable, "-m", "devtools.cluster", "restart", "--rundir",
               str(cluster.rundir)]
    for number in numbers:
        command += ["--instance", str(number)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return {int(m[1]): int(m[2]) for m in re.finditer(
        r"^instance (\d+): restarted, gunicorn master (\d+)$", done.stdout, re.MULTILINE)}


def _accepted(answer: requests.Response) -> str:
    """The statusLocation of an accepted async Execute."""
    assert answer.status_code == 200, answer.text[:500]
    doc = etree.fromstring(answer.content)
    assert doc.find(".//wps:ProcessAccepted", NS) is not None, answer.text[:500]
    return doc.get("statusLocation")


def _submit_from(session: requests.Session, url: str, **headers: str) -> requests.Response:
    return session.post(url, data=execute_body(SMALL, BOTH, store=True, status=True),
                        headers={"Content-Type": "text/xml", **headers}, timeout=60)


def test_haproxy_spreads_requests_over_the_instances(cluster):
    """Round robin: four /health requests through HAProxy meet both instances, each with
    its own gunicorn master (both in HAProxy's rotation first: a health check that met a
    busy instance may have taken it out for a moment)."""
    from wps_app.ops import balancer

    for number in (1, 2):
        balancer.wait_until_up(cluster.rundir / "haproxy", f"instance-{number}")
    seen = [health(cluster.base) for _ in range(4)]
    assert {h["instance"] for h in seen} == {"instance-1", "instance-2"}
    pids = {h["instance"]: h["pid"] for h in seen}
    assert pids["instance-1"] == health(cluster.instance_base(1))["pid"]
    assert pids["instance-1"] != pids["instance-2"]


def test_clients_behind_haproxy_are_counted_apart(cluster, hold):
    """Clients at 127.0.0.2 and 127.0.0.3 each get their one job (max_per_client = 1)
    through HAProxy: the fronts believe the X-Forwarded-For HAProxy adds, and only that
    (a client's own value before it changes nothing); a client at 127.0.0.4 talking to an
    instance's front directly, claiming 127.0.0.2, is 127.0.0.4; a client at HAProxy's
    own address (trusted as a balancer) claiming 127.0.0.5 through HAProxy is 127.0.0.1:
    only the address HAProxy appended counts, not what stands before it."""
    from source_addresses import session_from

    first_client, second_client, third_client = (session_from(f"127.0.0.{n}")
                                                 for n in (2, 3, 4))
    first = _accepted(_submit_from(first_client, cluster.url))
    again = _submit_from(first_client, cluster.url, **{"X-Forwarded-For": "127.0.0.9"})
    assert again.status_code == 503 and exception_of(again)[0] == "ServerBusy", again.text
    second = _accepted(_submit_from(second_client, cluster.url))
    third = _accepted(_submit_from(third_client, f"{cluster.instance_base(1)}/wps",
                                   **{"X-Forwarded-For": "127.0.0.2"}))
    fourth = _accepted(_submit_from(session_from("127.0.0.1"), cluster.url,
                                    **{"X-Forwarded-For": "127.0.0.5"}))
    store = cluster.store
    assert [store.get(job_id_of(url)).owner for url in (first, second, third, fourth)] == [
        "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.1"]
    hold.release()
    for url in (first, second, third, fourth):
        assert wait_for_end(url, timeout_s=90)[-1][0] == "ProcessSucceeded"


_PNG = b"\x89PNG\r\n\x1a\n"


class Load:
    """A steady mix through HAProxy, one request at a time, each with its own
    X-Request-ID: GetCapabilities, a status document, a sync Execute (a 64x64 PNG), in
    turn. `results`: (request id, kind, what was wrong or "")."""

    KINDS = ("capabilities", "status", "execute")

    def __init__(self, cluster: RunningCluster, status_url: str) -> None:
        self.cluster = cluster
        self.status_url = status_url
        self.results: list[tuple[str, str, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.prefix = f"load-{os.getpid()}-{time.monotonic_ns()}"

    def _run(self) -> None:
        session = requests.Session()
        number = 0
        while not self.stopping.is_set():
            kind = self.KINDS[number % len(self.KINDS)]
            request_id = f"{self.prefix}-{number}"
            try:
                wrong = self._check(kind, self._send(session, kind, request_id))
            except requests.RequestException as exc:
                wrong = repr(exc)
            self.results.append((request_id, kind, wrong))
            number += 1

    def _send(self, session: requests.Session, kind: str, request_id: str
              ) -> requests.Response:
        headers = {"X-Request-ID": request_id}
        if kind == "capabilities":
            return session.get(self.cluster.url, params={
                "service": "WPS", "request": "GetCapabilities"}, headers=headers, timeout=60)
        if kind == "status":
            return session.get(self.status_url, headers=headers, timeout=60)
        body = execute_body(SMALL, '<wps:RawDataOutput mimeType="image/png">'
                            "<ows:Identifier>image</ows:Identifier></wps:RawDataOutput>")
        return session.post(self.cluster.url, data=body,
                            headers={**headers, "Content-Type": "text/xml"}, timeout=120)

    @staticmethod
    def _check(kind: str, answer: requests.Response) -> str:
        """What is wrong with `answer` ("" when nothing)."""
        if answer.status_code != 200:
            return f"{answer.status_code}: {answer.text[:200]}"
        if kind == "execute":
            # a PNG's IHDR: width and height right after the signature and chunk header
            if (answer.content[:8] != _PNG
                    or struct.unpack(">II", answer.content[16:24]) != (64, 64)):
                return f"not a 64x64 PNG: {answer.content[:40]!r}"
            return ""
        root = etree.fromstring(answer.content)
        expected = "Capabilities" if kind == "capabilities" else "ExecuteResponse"
        if etree.QName(root).localname != expected:
            return f"not a {expected}: {answer.text[:200]}"
        if kind == "status" and root.find(".//wps:ProcessSucceeded", NS) is None:
            return f"not a succeeded job's status: {answer.text[:200]}"
        return ""

    def served_by(self, number: int) -> set[str]:
        """The load's request ids in instance `number`'s front's access log."""
        log = self.cluster.rundir / f"instance-{number}" / "front" / "access.log"
        return set(re.findall(rf"request_id=({re.escape(self.prefix)}-\d+)",
                              log.read_text(errors="replace")))


def test_an_instance_restarts_under_load_without_a_failed_request(cluster):
    """`python -m devtools.cluster restart --instance 1` while GETs and sync POST Executes
    go through HAProxy: instance 1 answers /health 503 while it still serves, HAProxy takes
    it out, it finishes and leaves, a new gunicorn master takes its place. Every request
    of the load succeeds, and both instances serve the load afterwards."""
    status_url = submit(cluster.url, SMALL)
    assert wait_for_end(status_url)[-1][0] == "ProcessSucceeded"
    old_master = health(cluster.instance_base(1))["pid"]
    load = Load(cluster, status_url)
    load.thread.start()
    try:
        wait_until(lambda: len(load.results) >= 2 * len(Load.KINDS), 60, "the load to run")
        before = len(load.results)
        pids = restart(cluster, 1)
        during = len(load.results) - before
        since = len(load.results)

        def both_served() -> bool:
            ids = {request_id for request_id, _, _ in load.results[since:]}
            return all(ids & load.served_by(number) for number in (1, 2))

        wait_until(both_served, 60, "both instances to serve the load after the restart")
    finally:
        load.stopping.set()
        load.thread.join(180)
    assert during > 0, "no request of the load went on during the restart"
    failed = [result for result in load.results if result[2]]
    assert failed == [], failed[:5]
    assert {kind for _, kind, _ in load.results} == set(Load.KINDS)
    assert pids == {1: health(cluster.instance_base(1))["pid"]} and pids[1] != old_master
    wait_until(lambda: not alive(old_master), 30, "the old master to be gone")


def test_a_job_accepted_by_one_instance_is_answered_by_any(cluster, hold):
    """Submitted to instance 1 (as HAProxy forwards it), observed running through instance
    2 and through HAProxy; its URLs are HAProxy's, and its outputs equal a sync run's."""
    public = cluster.base.removeprefix("http://")
    request_id = f"cluster-{os.getpid()}-{time.monotonic_ns()}"
    status_url = submit(f"{cluster.instance_base(1)}/wps", host=public, request_id=request_id)
    assert status_url == f"{cluster.base}/outputs/{job_id_of(status_url)}.xml"
    hold.wait_held(1)
    job_id = job_id_of(status_url)
    via_2 = f"{cluster.instance_base(2)}/outputs/{job_id}.xml"
    for url in (via_2, status_url):
        name, percent, text, _ = status_of(url)
        assert name == "ProcessStarted" and int(percent) < 100, text
    hold.release()
    assert wait_for_end(via_2)[-1][0] == "ProcessSucceeded"
    seen = wait_for_end(status_url)
    refs = references_of(seen[-1][3])
    assert all(href.startswith(f"{cluster.base}/outputs/{job_id}/") for href in refs.values())
    job = cluster.store.get(job_id)
    assert (job.status, job.attempt) == ("succeeded", 1) and job.worker.startswith("tcp://")
    assert job.worker not in etree.tostring(seen[-1][3]).decode()  # operators only
    # the request's id is in the job record and on the Dask worker's lines about the job
    assert job.request_id == request_id
    worker_lines = [line for log in cluster.rundir.rglob("*.log")
                    for line in log.read_text(errors="replace").splitlines()
                    if f"job={job_id} " in line and "Dask worker" in line]
    assert worker_lines and all(f"request_id={request_id}:" in line for line in worker_lines)
    ogc = requests.get(f"{cluster.base}/ogcapi/jobs/{job_id}", timeout=30)
    assert ogc.status_code == 200 and job.worker not in ogc.text
    sync = post(cluster.url, execute_body(POINT, '<wps:RawDataOutput mimeType="image/tiff">'
                                          "<ows:Identifier>geotiff</ows:Identifier>"
                                          "</wps:RawDataOutput>"))
    assert sync.status_code == 200, sync.text[:300]
    with rasterio.open(io.BytesIO(requests.get(refs["geotiff"], timeout=30).content)) as a, \
            rasterio.open(io.BytesIO(sync.content)) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        np.testing.assert_array_equal(a.read(), b.read())


def test_instance_1_dies_while_a_large_job_runs(cluster, hold):
    """A 4096x4096 job accepted by instance 1 succeeds on the Dask workers after instance 1
    is killed; HAProxy keeps answering every poll, and serves the outputs."""
    public = cluster.base.removeprefix("http://")
    status_url = submit(f"{cluster.instance_base(1)}/wps",
                        POINT + [literal("width", 4096), literal("height", 4096)],
                        GEOTIFF, host=public)
    hold.wait_held(1)
    master = health(cluster.instance_base(1))["pid"]
    assert os.getpgid(master) == master  # its own session: the instance dies alone
    os.killpg(master, signal.SIGKILL)
    wait_until(lambda: requests.get(f"{cluster.instance_base(1)}/health",
                                    timeout=30).status_code >= 500, 30, "instance 1 gone")
    hold.release()
    seen = wait_for_end(status_url, timeout_s=120)  # every poll answered through HAProxy
    assert seen[-1][0] == "ProcessSucceeded", seen[-1][2]
    for _ in range(4):
        assert health(cluster.base)["instance"] == "instance-2"
    geotiff = requests.get(references_of(seen[-1][3])["geotiff"], timeout=120)
    assert geotiff.status_code == 200
    with rasterio.open(io.BytesIO(geotiff.content)) as ds:
        assert ds.shape == (4096, 4096) and ds.crs.to_epsg() == 4326
        assert np.isfinite(ds.read(1, window=((0, 64), (0, 64)))).all()
    # `make cluster` starts it again (on its ports, front and all), and HAProxy uses it
    pids = restart(cluster, 1)
    assert pids == {1: health(cluster.instance_base(1))["pid"]} and pids[1] != master
    wait_until(lambda: {health(cluster.base)["instance"] for _ in range(4)}
               == {"instance-1", "instance-2"}, 30, "HAProxy to use both instances")


def test_a_worker_killed_once_the_rerun_succeeds(cluster, hold):
    """The Dask worker running a job is killed: Dask runs it again (attempt 2, another
    worker process), and it succeeds."""
    status_url = submit(cluster.url)
    job_id = job_id_of(status_url)
    store = cluster.store
    first = running_attempt(store, job_id, 1)
    hold.wait_held(1)
    kill_worker(cluster.printed["dask scheduler"], first.worker)
    second = running_attempt(store, job_id, 2)
    assert second.worker != first.worker
    hold.release()
    seen = wait_for_end(status_url)
    assert seen[-1][0] == "ProcessSucceeded", seen[-1][2]
    assert (store.get(job_id).status, store.get(job_id).attempt) == ("succeeded", 2)
    assert requests.get(references_of(seen[-1][3])["image"], timeout=30).content.startswith(
        b"\x89PNG")


def test_a_worker_killed_twice_the_job_fails_with_a_message(cluster, hold):
    """allowed-failures = 1: after the second worker dies, Dask gives the task up; the
    job's lease expires and it ends Failed, saying why."""
    status_url = submit(cluster.url)
    job_id = job_id_of(status_url)
    store = cluster.store
    scheduler = cluster.printed["dask scheduler"]
    kill_worker(scheduler, running_attempt(store, job_id, 1).worker)
    kill_worker(scheduler, running_attempt(store, job_id, 2).worker)
    hold.release()
    seen = wait_for_end(status_url, timeout_s=LEASE_S * 6)
    assert seen[-1][0] == "ProcessFailed", seen[-1][2]
    assert LEASE_EXPIRED in failure_of_document(seen[-1][3])
    job = store.get(job_id)
    assert (job.status, job.attempt, job.message) == ("failed", 2, LEASE_EXPIRED)


def _refused(base: str) -> bool:
    try:
        requests.get(f"{base}/health", timeout=10)
    except requests.ConnectionError:
        return True
    return False


def test_killing_every_instance_leaves_running_jobs_alone(cluster, hold):
    """A job held at the WMS on a Dask worker keeps running while every instance is
    killed (gunicorn masters and nginx fronts, SIGKILL); released, it succeeds in the job
    store with its outputs in the shared folder; the instances restarted, HAProxy serves
    its status document and outputs."""
    status_url = submit(cluster.url, SMALL, GEOTIFF)
    job_id = job_id_of(status_url)
    store = cluster.store
    running = running_attempt(store, job_id, 1)
    hold.wait_held(1)
    for number in (1, 2):
        master = health(cluster.instance_base(number))["pid"]
        front = cluster.rundir / f"instance-{number}" / "front" / "nginx.pid"
        for group in (master, int(front.read_text())):
            os.killpg(group, signal.SIGKILL)
    for number in (1, 2):
        wait_until(lambda n=number: _refused(cluster.instance_base(n)), 30,
                   f"instance {number} gone")
    job = store.get(job_id)
    assert (job.status, job.attempt, job.worker) == ("running", 1, running.worker)
    hold.release()
    wait_until(lambda: store.get(job_id).status != "running", 60, "the job to end")
    job = store.get(job_id)
    assert (job.status, job.attempt) == ("succeeded", 1), job
    outputs = cluster.rundir / "shared" / "outputs"
    document = etree.parse(str(outputs / f"{job_id}.xml")).getroot()
    assert document.find(".//wps:ProcessSucceeded", NS) is not None
    href = references_of(document)["geotiff"]
    assert href.startswith(f"{cluster.base}/outputs/{job_id}/")
    written = (outputs / href.removeprefix(f"{cluster.base}/outputs/")).read_bytes()
    with rasterio.open(io.BytesIO(written)) as ds:
        assert ds.shape == (64, 64) and np.isfinite(ds.read(1)).all()

    pids = restart(cluster)  # every instance, one at a time
    assert sorted(pids) == [1, 2]
    seen = wait_for_end(status_url)  # through HAProxy
    assert seen[-1][0] == "ProcessSucceeded"
    fetched = requests.get(references_of(seen[-1][3])["geotiff"], timeout=60)
    assert fetched.status_code == 200 and fetched.content == written


def failure_of_document(doc) -> str:
    failed = doc.find(".//wps:Status/wps:ProcessFailed", NS)
    assert failed is not None
    return " ".join(failed.findtext(".//ows:ExceptionText", "", NS).split())


def _cluster_processes(rundir: Path, postgres_port: str) -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of every process of this cluster: those
    reading its configuration file, those whose command line names its run folder, and
    its PostgreSQL server."""
    marker = f"PYWPS_CFG={rundir}/pywps-cluster.cfg".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            mine = (marker in environ or str(rundir) in command
                    or ("postgres" in command and f"-p {postgres_port}" in command))
            if mine and int(entry) != os.getpid() and alive(int(entry)):
                found[int(entry)] = (os.getpgid(int(entry)), command)
        except (OSError, ProcessLookupError):
            continue
    return found


def test_stopping_make_cluster_leaves_no_process(cluster):
    """SIGTERM to `make cluster` stops HAProxy, the fronts, gunicorn, the Dask scheduler,
    workers and nannies, and PostgreSQL: no process and no process group is left."""
    postgres_port = cluster.printed["job store"].rsplit(":", 1)[1].split("/")[0]
    before = _cluster_processes(cluster.rundir, postgres_port)
    commands = " | ".join(command for _, command in before.values())
    for part in ("haproxy", "nginx", "gunicorn", "dask_scheduler", "dask_worker", "postgres"):
        assert part in commands, part
    assert cluster.stop() == 0, "".join(cluster.output[-20:])
    groups = {group for group, _ in before.values()}
    # a group's last members may take a moment to die after their SIGKILL
    wait_until(lambda: not _live_in(groups), 30, lambda: f"groups left: {_live_in(groups)}")
    assert _cluster_processes(cluster.rundir, postgres_port) == {}


def _live_in(groups: set[int]) -> dict[int, str]:
    """pid -> command line of the live (not zombie) processes in `groups`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not alive(int(entry)):
            continue
        try:
            if os.getpgid(int(entry)) in groups:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found[int(entry)] = handle.read().replace(b"\0", b" ").decode()
        except (OSError, ProcessLookupError):
            continue
    return found
