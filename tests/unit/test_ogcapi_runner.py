"""The OGC API job runner in-process (no fork): a job's end in the store, its progress
milestones, a core failure, a dismiss noticed mid-run, the reaper step's hook, and the
Dask side (a job handed to remote jobs; a run on a worker that a rerun took over)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wps_app.core.errors import WmsTimeout
from wps_app.core.pipeline import TileResult
from wps_app.jobs import JobStore, Limits
from wps_app.ogcapi import runner
from wps_app.ogcapi.execute import ExecuteRequest, OutputChoice


class Exited(BaseException):
    """What the runner's os._exit does here."""


@dataclass
class FakeSettings:
    work_path: Path
    output_path: Path
    parallel_processes: int = 2
    max_queued_processes: int = 2


@dataclass
class FakeRuntime:
    settings: FakeSettings
    jobs: JobStore
    remote: object = None


@dataclass
class FakeTask:
    """EdgeTask's surface: validate, run (calls `during` between milestones), publish."""

    runtime: FakeRuntime
    fail: Exception | None = None
    during: object = None
    seen: list = field(default_factory=list)

    def validate(self, values):
        return values

    def run(self, request, workdir, progress):
        progress("reading", 50)
        if self.during is not None:
            self.during()
            progress("filtering", 60)
        if self.fail is not None:
            raise self.fail
        png, tif = workdir / "sobel_x.png", workdir / "sobel_x.tif"
        png.write_bytes(b"png")
        tif.write_bytes(b"tif")
        return TileResult(tif, png, (), {})

    def publish(self, request, result, job_id, owner=None):
        folder = self.runtime.settings.output_path / job_id
        folder.mkdir(parents=True)
        for path in (result.png, result.geotiff):
            path.rename(folder / path.name)
        self.runtime.jobs.record_output(job_id, 6, owner)
        return folder


@pytest.fixture
def task(tmp_path):
    store = JobStore.from_url(f"sqlite:///{tmp_path / 'jobs.sqlite'}", lease_s=30)
    store.migrate()
    settings = FakeSettings(tmp_path / "work", tmp_path / "outputs")
    return FakeTask(FakeRuntime(settings, store))


def _job(task, job_id="j1"):
    request = ExecuteRequest({"wms": "x"}, (OutputChoice("image", "image/png", "value"),),
                             "raw")
    task.runtime.jobs.register(job_id, "get_raster_process", runner.BINDING,
                               limits=Limits(), payload=request.to_json())
    return task.runtime.jobs.get(job_id)


def _exit(code):
    raise Exited(code)


def test_job_succeeds_with_outputs_published(task):
    """The job ends succeeded (progress 100), its outputs under outputpath/<id>/, no
    work folder left."""
    job = runner.JobRun(task, _job(task), exit_=_exit)
    job.run()
    stored = task.runtime.jobs.get("j1")
    assert stored.status == "succeeded" and stored.progress == 100
    assert (task.runtime.settings.output_path / "j1" / "sobel_x.png").read_bytes() == b"png"
    assert list(task.runtime.settings.work_path.iterdir()) == []


def test_progress_reaches_the_store(task):
    """Milestones are recorded in the store as the job reaches them."""
    seen = []
    task.during = lambda: seen.append(task.runtime.jobs.get("j1").progress)
    runner.JobRun(task, _job(task), exit_=_exit).run()
    assert seen == [50.0]


def test_core_failure_fails_the_job_with_its_message(task):
    """A WMS timeout ends the job failed with the core's (client-safe) message."""
    task.fail = WmsTimeout("the WMS did not answer within 2 s")
    runner.JobRun(task, _job(task), exit_=_exit).run()
    stored = task.runtime.jobs.get("j1")
    assert stored.status == "failed" and stored.message == "the WMS did not answer within 2 s"


def test_dismissed_while_running_stops_and_leaves_nothing(task):
    """A job dismissed mid-run stops at its next milestone; nothing stays behind."""
    task.during = lambda: task.runtime.jobs.dismiss("j1")
    with pytest.raises(Exited):
        runner.JobRun(task, _job(task), exit_=_exit).run()
    assert task.runtime.jobs.get("j1").status == "dismissed"
    assert not (task.runtime.settings.output_path / "j1").exists()
    assert list(task.runtime.settings.work_path.iterdir()) == []


def test_payload_round_trip():
    """What admission stores is what the runner reads back (bbox as a BBox)."""
    from wps_app.core.types import BBox

    request = ExecuteRequest({"bbox": BBox(1.0, 2.0, 3.0, 4.0), "wms": "x"},
                             (OutputChoice("geotiff", "image/tiff; application=geotiff",
                                           "reference"),), "document")
    assert json.loads(request.to_json())["values"]["bbox"] == [1.0, 2.0, 3.0, 4.0]
    assert ExecuteRequest.from_json(request.to_json()) == request


def test_queued_jobs_start_when_there_is_room(task):
    """start_queued drains this binding's queue within the shared limits."""
    store = task.runtime.jobs
    limits = Limits(1, 5)
    store.register("run", "p", "wps", limits=limits)
    store.register("wait", "p", runner.BINDING, limits=limits)
    launched = []
    original = runner.launch
    runner.launch = lambda _task, job_id: launched.append(job_id)
    try:
        task.runtime.settings.parallel_processes = 1
        assert runner.start_queued(task) == []
        store.finish("run")
        assert runner.start_queued(task) == ["wait"]
    finally:
        runner.launch = original
    assert launched == ["wait"]


class FakeRemote:
    def __init__(self):
        self.submitted = []

    def submit(self, binding, job_id, context):
        self.submitted.append((binding, job_id, context))


def test_with_remote_jobs_launch_hands_the_job_over(task):
    """[processing] mode = dask: no fork, the job goes to the cluster."""
    task.runtime.remote = FakeRemote()
    runner.launch(task, "j1")
    assert task.runtime.remote.submitted == [(runner.BINDING, "j1", {})]


def test_on_a_worker_a_run_taken_over_by_a_rerun_stops_without_exiting(task):
    """run_here records the worker with attempt 1; when attempt 2 starts meanwhile, attempt
    1's next write is refused and it stops (JobAbandoned, caught), publishing nothing and
    leaving the job to attempt 2."""
    store = task.runtime.jobs
    seen = []

    def rerun_starts():
        seen.append((store.get("j1").attempt, store.get("j1").worker))
        store.start("j1", worker="tcp://127.0.0.1:2")

    task.during = rerun_starts
    runner.run_here(task, _job(task), "tcp://127.0.0.1:1")
    assert seen == [(1, "tcp://127.0.0.1:1")]
    job = store.get("j1")
    assert (job.status, job.attempt, job.worker) == ("running", 2, "tcp://127.0.0.1:2")
    assert not (task.runtime.settings.output_path / "j1").exists()
    assert list(task.runtime.settings.work_path.iterdir()) == []
