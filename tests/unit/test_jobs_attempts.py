"""The attempt guard of the JobStore: a rerun (a Dask worker starting a job again after the
first one died) takes the job over, and only its writes count; the reaper never fails a
job a rerun has taken."""

from __future__ import annotations

import pytest
from clocks import FakeClock

from wps_app.jobs import LEASE_EXPIRED, Heartbeat, JobStore, Limits


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock) -> JobStore:
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite", lease_s=30,
                              max_runtime_s=600, clock=clock)
    store.migrate()
    store.register("a", "get_raster_process", "wps", limits=Limits(4, 4))
    return store


def test_each_start_is_a_new_attempt_naming_its_worker(store):
    assert store.get("a").attempt == 0
    assert store.start("a", worker="tcp://127.0.0.1:1001") == 1
    assert store.start("a", worker="tcp://127.0.0.1:1002") == 2
    job = store.get("a")
    assert (job.attempt, job.worker, job.status) == (2, "tcp://127.0.0.1:1002", "running")


def test_an_older_attempt_may_write_nothing(store):
    """Attempt 1 (frozen, then back) is refused everything once attempt 2 started."""
    first = store.start("a")
    second = store.start("a")
    assert not store.heartbeat("a", first)
    assert not store.progress("a", 60, "stale progress", first)
    assert not store.finish("a", "stale success", first)
    assert not store.fail("a", "stale failure", first)
    job = store.get("a")
    assert (job.status, job.progress, job.message) == ("running", 0.0, "")
    assert store.progress("a", 50, "reading", second)
    assert store.finish("a", "done", second)
    assert store.get("a").status == "succeeded"


def test_without_an_attempt_writes_are_unguarded(store):
    """An instance failing a job it could not start names no attempt, and may."""
    store.start("a")
    store.start("a")
    assert store.fail("a", "could not be started")
    assert store.get("a").status == "failed"


def test_the_reaper_leaves_a_rerun_alone(store, clock):
    """Attempt 1's lease expired; attempt 2 started before the reaper looked: it stays."""
    store.start("a")
    clock.advance(31)
    store.start("a")  # the rerun: a fresh lease
    assert store.reap() == []
    assert store.get("a").status == "running"


def test_the_reaper_fails_the_latest_attempt_once_its_lease_expires(store, clock):
    store.start("a")
    attempt = store.start("a")
    clock.advance(31)
    (reaped,) = store.reap()
    assert (reaped.job_id, reaped.status, reaped.message) == ("a", "failed", LEASE_EXPIRED)
    assert not store.finish("a", "too late", attempt)


def test_the_reapers_update_names_the_attempt_it_saw(store, clock, monkeypatch):
    """A rerun starting between the reaper's read and its write wins: the write is
    conditional on the attempt the read saw (and on the lease)."""
    store.start("a")
    clock.advance(31)
    original = store.engine.connect
    calls = {"n": 0}

    def connect_then_rerun():
        # the reaper's first connection is its read; the rerun starts right after it
        calls["n"] += 1
        if calls["n"] == 2:
            monkeypatch.setattr(store.engine, "connect", original)
            store.start("a")
        return original()

    monkeypatch.setattr(store.engine, "connect", connect_then_rerun)
    assert store.reap() == []
    job = store.get("a")
    assert (job.status, job.attempt) == ("running", 2)


def test_a_heartbeat_stops_when_a_newer_attempt_runs(store):
    lost = []
    beat = Heartbeat(store, "a", on_lost=lambda: lost.append(True),
                     on_overrun=lambda message: None)
    beat.attempt = store.start("a")
    assert beat.beat() == 10.0
    store.start("a")
    assert beat.beat() is None
    assert lost == [True]
