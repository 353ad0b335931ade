"""Heartbeat: the runner renews its job's lease, gives up a job ended elsewhere and ends
its job at the maximum run time; clocks injected, the thread observed through events."""

from __future__ import annotations

import datetime
import threading

import pytest

from wps_app.jobs import Heartbeat, JobStore, Limits

T0 = datetime.datetime(2024, 5, 1, 8, 0, 0, tzinfo=datetime.UTC)


class Clocks:
    """The store's wall clock and the runner's monotonic clock, moved together."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wall(self) -> datetime.datetime:
        return T0 + datetime.timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return 1000.0 + self.seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def store(tmp_path, clocks) -> JobStore:
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite", lease_s=30,
                              max_runtime_s=100, clock=clocks.wall)
    store.migrate()
    store.register("a", "p", "wps", limits=Limits())
    store.start("a")
    return store


class Calls:
    def __init__(self) -> None:
        self.lost = threading.Event()
        self.overrun: list[str] = []
        self.overrun_seen = threading.Event()

    def on_lost(self) -> None:
        self.lost.set()

    def on_overrun(self, message: str) -> None:
        self.overrun.append(message)
        self.overrun_seen.set()


def heartbeat(store, clocks, calls) -> Heartbeat:
    return Heartbeat(store, "a", on_lost=calls.on_lost, on_overrun=calls.on_overrun,
                     monotonic=clocks.monotonic)


def test_a_beat_renews_the_lease_every_third_of_it(store, clocks):
    calls = Calls()
    beat = heartbeat(store, clocks, calls)
    clocks.seconds = 20
    assert beat.beat() == 10.0  # lease_s / 3
    assert store.get("a").lease_expires == clocks.wall() + datetime.timedelta(seconds=30)
    assert not calls.lost.is_set() and calls.overrun == []


def test_the_last_wait_ends_at_the_deadline(store, clocks):
    beat = heartbeat(store, clocks, Calls())
    clocks.seconds = 96
    assert beat.beat() == pytest.approx(4.0)


def test_the_deadline_ends_the_job_through_the_runner(store, clocks):
    calls = Calls()
    beat = heartbeat(store, clocks, calls)
    clocks.seconds = 100
    assert beat.beat() is None
    assert calls.overrun == ["the job exceeded the maximum run time of 100 s and was stopped"]
    assert store.get("a").status == "running"  # the runner's callback fails it, not the beat


def test_a_job_ended_elsewhere_is_given_up(store, clocks):
    calls = Calls()
    beat = heartbeat(store, clocks, calls)
    store.fail("a", "reaped by another instance")
    assert beat.beat() is None
    assert calls.lost.is_set()


def test_a_store_error_does_not_stop_the_heartbeat(store, clocks, monkeypatch):
    calls = Calls()
    beat = heartbeat(store, clocks, calls)

    def unreachable(job_id, attempt=None):
        raise OSError("database unreachable")

    monkeypatch.setattr(store, "heartbeat", unreachable)
    assert beat.beat() == 10.0
    assert not calls.lost.is_set()


def test_the_thread_ends_an_overdue_job(store, clocks):
    """Started past its deadline, the thread's first beat calls on_overrun at once."""
    calls = Calls()
    beat = heartbeat(store, clocks, calls)
    clocks.seconds = 150
    beat.start()
    assert calls.overrun_seen.wait(timeout=10)
    beat.stop()
    assert not beat.running


def test_stop_ends_the_thread(store, clocks):
    calls = Calls()
    beat = heartbeat(store, clocks, calls)
    beat.start()
    assert beat.running
    beat.stop()
    beat.stop()  # idempotent
    assert not beat.running
    assert calls.overrun == [] and not calls.lost.is_set()


def test_the_heartbeat_thread_logs_as_the_request_that_started_it():
    """Its context is the starter's: where several jobs share a process (a Dask worker) each
    heartbeat names its own job's request, not a process-wide one."""
    from wps_app import request_ids

    seen, beaten = [], threading.Event()

    class Store:
        lease_s, max_runtime_s = 3.0, 60.0

        def heartbeat(self, job_id, attempt):
            seen.append(request_ids.current())
            beaten.set()
            return False  # one beat, then the runner "lost" it and the thread ends

    with request_ids.bound("req-of-job-a"):
        beat = Heartbeat(Store(), "a", on_lost=lambda: None, on_overrun=lambda _: None)
        beat.start(1)
    assert beaten.wait(10)
    beat._thread.join(10)
    assert seen == ["req-of-job-a"]
