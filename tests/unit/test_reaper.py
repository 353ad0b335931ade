"""The WPS binding's reaper: at most one pass per interval, failed jobs' status documents
rewritten, queued jobs that cannot start failed rather than stalled."""

from __future__ import annotations

import datetime

import pytest
from lxml import etree
from pywps import Process, Service
from schemas.validate import validate

from wps_app.jobs import LEASE_EXPIRED, JobStore, Limits
from wps_app.wps import pywps_compat
from wps_app.wps.reaper import Reaper

T0 = datetime.datetime(2024, 5, 1, 8, 0, 0, tzinfo=datetime.UTC)
NS = {"wps": "http://www.opengis.net/wps/1.0.0", "ows": "http://www.opengis.net/ows/1.1"}


class Clocks:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wall(self) -> datetime.datetime:
        return T0 + datetime.timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def store(tmp_path, clocks) -> JobStore:
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite", lease_s=30,
                              clock=clocks.wall)
    store.migrate()
    return store


@pytest.fixture
def reaper(store, clocks, tmp_path, monkeypatch) -> Reaper:
    monkeypatch.setattr(pywps_compat, "_jobs", pywps_compat._Jobs(store, Limits(), tmp_path))
    edge = Process(handler=lambda request, response: response, identifier="edge",
                   title="Edge filter", store_supported=True, status_supported=True)
    return Reaper(store, Service(processes=[edge]), tmp_path, interval_s=2.0,
                  monotonic=clocks.monotonic)


def failure_text(path) -> str:
    content = path.read_bytes()
    assert validate(content) == [], validate(content)
    return etree.fromstring(content).findtext(".//ows:ExceptionText", None, NS)


def test_one_pass_per_interval(reaper, store, clocks, tmp_path):
    store.register("a", "edge", "wps", limits=Limits())
    clocks.seconds = 31
    assert [job.job_id for job in reaper.run_if_due()] == ["a"]
    assert failure_text(tmp_path / "a.xml") == LEASE_EXPIRED
    store.register("b", "edge", "wps", limits=Limits())
    clocks.seconds = 32
    assert reaper.run_if_due() is None  # within the interval: no pass
    clocks.seconds = 62
    assert [job.job_id for job in reaper.run_if_due()] == ["b"]
    clocks.seconds = 64
    assert reaper.run_if_due() == []


def test_a_queued_job_that_cannot_start_ends_failed(reaper, store, tmp_path, monkeypatch):
    """Its process is no longer offered: failed, with a valid document, not left queued."""
    store.register("q", "retired", "wps", limits=Limits(parallel=0, queued=5),
                   payload=b'{"identifier": "retired"}')
    monkeypatch.setattr(pywps_compat, "_jobs",
                        pywps_compat._Jobs(store, Limits(parallel=0, queued=5), tmp_path))
    assert pywps_compat.start_queued(reaper.service) == []  # no room yet
    monkeypatch.setattr(pywps_compat, "_jobs",
                        pywps_compat._Jobs(store, Limits(parallel=1, queued=5), tmp_path))
    failed = reaper.run_if_due()
    assert failed == []  # nothing reaped: the job failed when it could not start
    assert (store.get("q").status, store.get("q").message) == ("failed",
                                                               pywps_compat.NOT_STARTED)
    assert failure_text(tmp_path / "q.xml") == pywps_compat.NOT_STARTED
