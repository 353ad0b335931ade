"""Our pygeoapi plugins as pygeoapi loads them: the processor calls the core through the
task; the manager reads the shared JobStore (uuid4 ids from the binding, both bindings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pygeoapi.plugin import load_plugin
from pygeoapi.process.base import ProcessorExecuteError
from pygeoapi.process.manager.base import JobNotFoundError, UnknownProcessError
from pygeoapi.util import JobStatus

from wps_app.core.errors import InvalidInput
from wps_app.core.pipeline import TileResult
from wps_app.jobs import JobStore, Limits
from wps_app.ogcapi import pygeoapi_front
from wps_app.settings import Settings


@dataclass
class FakeRuntime:
    settings: Settings
    catalogs: dict
    jobs: JobStore


class Layers:
    def cached(self):
        return {"sample_city": "City"}


@dataclass
class FakeTask:
    runtime: FakeRuntime

    def validate(self, values):
        if values.get("wms") != "sample_city":
            raise InvalidInput("unknown layer", "layer")
        return values

    asked: list = field(default_factory=list)

    def run(self, request, workdir: Path, progress, outputs=frozenset({"geotiff", "png"})):
        self.asked.append(outputs)
        png = workdir / "sobel_x.png"
        png.write_bytes(b"\x89PNG fake")
        return TileResult(None if "geotiff" not in outputs else workdir / "sobel_x.tif", png,
                          (), {})


@pytest.fixture
def task(tmp_path):
    store = JobStore.from_url(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    settings = Settings(work_path=tmp_path)
    return FakeTask(FakeRuntime(settings, {"sample": Layers()}, store))


def test_processor_loaded_by_dotted_path_runs_the_core(task):
    """pygeoapi's load_plugin makes our processor; execute returns the PNG; a core error
    becomes ProcessorExecuteError with the core's message for the user."""
    processor = load_plugin("process", {"name": pygeoapi_front.PROCESSOR, "task": task})
    assert processor.metadata["id"] == "get_raster_process"
    assert processor.metadata["inputs"]["wms"]["schema"]["enum"] == ["sample_city"]
    assert processor.execute({"wms": "sample_city"}) == ("image/png", b"\x89PNG fake")
    assert task.asked == [frozenset({"png"})]  # pygeoapi returns the PNG only
    with pytest.raises(ProcessorExecuteError) as raised:
        processor.execute({"wms": "nowhere"})
    assert raised.value.user_msg == "unknown layer"


def test_manager_reads_the_job_store(task, tmp_path):
    """The manager pygeoapi loads lists and reads the store's jobs of both bindings and
    dismisses; it never creates jobs itself."""
    config_path, _ = pygeoapi_front.generate(task, tmp_path / "ogcapi")
    manager = pygeoapi_front.manager(pygeoapi_front.load_config(config_path, task))
    assert list(manager.processes) == ["get_raster_process"]
    with pytest.raises(UnknownProcessError):
        manager.get_processor("nope")
    store = task.runtime.jobs
    store.register("w1", "get_raster_process", "wps", limits=Limits())
    store.register("o1", "get_raster_process", "ogcapi", limits=Limits())
    store.start("o1")
    store.finish("o1")
    assert {j["identifier"] for j in manager.get_jobs()["jobs"]} == {"w1", "o1"}
    done = manager.get_jobs(status=JobStatus.successful)["jobs"]
    assert [j["identifier"] for j in done] == ["o1"]
    assert manager.get_job("w1")["status"] == "accepted"
    with pytest.raises(JobNotFoundError):
        manager.get_job("nope")
    assert manager.delete_job("w1") is True
    assert store.get("w1").status == "dismissed"
    with pytest.raises(NotImplementedError):
        manager.add_job({})
