"""JobStore on a SQLite file: admission, leases with an injected clock, idempotent endings,
the queue, listing."""

from __future__ import annotations

import datetime
import threading

import pytest
from clocks import T0, FakeClock

from wps_app.jobs import (
    LEASE_EXPIRED,
    ClientBusy,
    JobStore,
    Limits,
    QueueFull,
    StorageExhausted,
    overrun_message,
)
from wps_app.jobs.schema import SCHEMA_VERSION

ROOMY = Limits(parallel=4, queued=4)




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/jobs.sqlite"


@pytest.fixture
def store(url, clock) -> JobStore:
    store = JobStore.from_url(url, lease_s=30, max_runtime_s=600, clock=clock)
    store.migrate()
    return store


def register(store: JobStore, job_id: str, limits: Limits = ROOMY, **kwargs):
    return store.register(job_id, "get_raster_process", "wps", limits=limits, **kwargs)


def test_admission_runs_then_queues_then_refuses(store):
    """Two run, one waits, the fourth is refused and leaves no trace."""
    limits = Limits(parallel=2, queued=1)
    assert [register(store, j, limits).queued for j in "abc"] == [False, False, True]
    with pytest.raises(QueueFull) as refused:
        register(store, "d", limits)
    assert (refused.value.admission.running, refused.value.admission.queued) == (2, 1)
    assert store.get("d") is None
    assert store.admit(limits).decision == "refuse"
    assert store.admit(Limits(parallel=3, queued=1)).decision == "run"
    assert store.admit(Limits(parallel=-1, queued=0)).decision == "run"


def test_admission_counts_only_unfinished_jobs(store):
    """Ended jobs free their slot; a queued job counts as queued, not running."""
    limits = Limits(parallel=1, queued=1)
    register(store, "a", limits)
    register(store, "b", limits)
    assert (store.admit(limits).running, store.admit(limits).queued) == (1, 1)
    store.finish("a")
    assert store.admit(limits).running == 0
    store.fail("b", "dropped")
    assert store.admit(limits).queued == 0


def test_concurrent_registrations_never_exceed_the_limits(url, clock, store):
    """Twelve workers (own stores) registering at once: exactly 3 run, 2 wait, 7 refused."""
    limits = Limits(parallel=3, queued=2)
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def worker(i: int) -> None:
        own = JobStore.from_url(url, clock=clock)
        barrier.wait()
        try:
            outcomes.append("queued" if register(own, f"j{i}", limits).queued else "run")
        except QueueFull:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 2 + ["refused"] * 7 + ["run"] * 3


def test_a_started_job_without_heartbeat_expires(store, clock):
    """No renewal for lease_s: the reaper fails the job with the lease message."""
    register(store, "a")
    assert store.start("a", "/tmp/work-a")
    clock.advance(29.9)
    assert store.reap() == []
    clock.advance(0.2)
    [job] = store.reap()
    assert (job.job_id, job.status, job.message) == ("a", "failed", LEASE_EXPIRED)
    assert job.lease_expires is None and job.finished == clock.now
    assert job.workdir == "/tmp/work-a"
    assert store.heartbeat("a") is False  # its runner learns that it lost the job
    assert store.reap() == []


def test_heartbeats_keep_a_job_alive(store, clock):
    register(store, "a")
    store.start("a")
    for _ in range(30):
        clock.advance(10)  # lease_s / 3, as the runner renews
        assert store.heartbeat("a")
    assert store.reap() == []
    assert store.get("a").lease_expires == clock.now + datetime.timedelta(seconds=30)


def test_progress_renews_the_lease(store, clock):
    register(store, "a")
    store.start("a")
    clock.advance(25)
    assert store.progress("a", 40, "filtering")
    clock.advance(25)
    assert store.reap() == []
    job = store.get("a")
    assert (job.progress, job.message, job.updated) == (40.0, "filtering",
                                                        clock.now - datetime.timedelta(seconds=25))


def test_an_accepted_job_whose_runner_never_starts_expires(store, clock):
    """The accepting worker holds the lease until the runner starts; if it dies first, the
    job still ends."""
    register(store, "a")
    clock.advance(31)
    assert [j.job_id for j in store.reap()] == ["a"]
    assert store.start("a") == 0


def test_queued_jobs_have_no_lease_and_never_expire(store, clock):
    register(store, "a", Limits(0, 5))
    clock.advance(10 * 3600)
    assert store.reap() == []
    assert store.get("a").lease_expires is None


def test_a_job_running_past_max_runtime_plus_a_lease_is_reaped(store, clock):
    """Its own process should have stopped it at max_runtime; a lease later, any instance
    fails it even though it still renews its lease."""
    register(store, "a")
    store.start("a")
    for _ in range(62):
        clock.advance(10)
        store.heartbeat("a")
    assert store.reap() == []  # 620 s: within max_runtime + lease_s
    clock.advance(10.1)
    store.heartbeat("a")
    [job] = store.reap()
    assert job.message == overrun_message(600) == (
        "the job exceeded the maximum run time of 600 s and was stopped")


def test_finish_and_fail_are_idempotent(store):
    """The first ending wins; later ones change nothing and say so."""
    register(store, "a")
    store.start("a")
    assert store.finish("a", "done")
    assert store.finish("a", "again") is False
    assert store.fail("a", "too late") is False
    job = store.get("a")
    assert (job.status, job.message, job.progress) == ("succeeded", "done", 100.0)
    register(store, "b")
    assert store.fail("b", "broken")
    assert store.fail("b", "broken twice") is False
    assert store.finish("b") is False
    assert (store.get("b").status, store.get("b").message) == ("failed", "broken")


def test_updates_after_the_end_are_refused(store):
    register(store, "a")
    store.start("a")
    store.progress("a", 30, "reading")
    store.fail("a", "reaped")
    assert store.progress("a", 60, "filtering") is False
    assert store.heartbeat("a") is False
    assert store.start("a") == 0
    job = store.get("a")
    assert (job.progress, job.message) == (30.0, "reaped")


def test_two_instances_reaping_fail_a_job_once(url, clock, store):
    other = JobStore.from_url(url, lease_s=30, max_runtime_s=600, clock=clock)
    register(store, "a")
    clock.advance(31)
    assert [j.job_id for j in other.reap()] == ["a"]
    assert store.reap() == []


def test_drain_starts_the_oldest_queued_jobs_there_is_room_for(store, clock):
    limits = Limits(parallel=1, queued=5)
    register(store, "a", limits)
    for job_id in "bcd":
        clock.advance(1)
        register(store, job_id, limits, payload=job_id.encode())
    assert store.drain(limits) == []  # a runs: no room
    store.finish("a")
    [job] = store.drain(limits)
    assert (job.job_id, job.payload, job.queued) == ("b", b"b", False)
    assert job.lease_expires == clock.now + datetime.timedelta(seconds=30)
    assert store.drain(limits) == []  # b holds the slot now
    assert [j.job_id for j in store.drain(Limits(parallel=3, queued=5))] == ["c", "d"]


def test_drain_takes_only_the_callers_binding(store):
    limits = Limits(parallel=0, queued=5)
    store.register("o", "p", "ogcapi", limits=limits)
    store.register("w", "p", "wps", limits=limits)
    assert [j.job_id for j in store.drain(Limits(2, 5), binding="wps")] == ["w"]
    assert store.get("o").queued


def test_dismissing_a_queued_job_takes_it_out_of_the_queue(store):
    limits = Limits(parallel=0, queued=5)
    register(store, "a", limits)
    assert store.dismiss("a")
    assert store.admit(limits).queued == 0
    assert (store.get("a").status, store.get("a").queued) == ("dismissed", False)
    assert store.drain(Limits(1, 5)) == []


def test_list_filters_and_pages_newest_first(store, clock):
    for i in range(7):
        clock.advance(1)
        store.register(f"j{i}", "even" if i % 2 == 0 else "odd", "wps", limits=Limits(-1, -1),
                       payload=b"request")
    store.fail("j1", "x")
    store.finish("j2")
    pages = [store.list(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[j.job_id for j in page] for page in pages] == [
        ["j6", "j5", "j4"], ["j3", "j2", "j1"], ["j0"], []]
    assert all(j.payload is None for page in pages for j in page)  # list leaves it out
    assert store.get("j0").payload == b"request"
    assert [j.job_id for j in store.list(status="failed")] == ["j1"]
    assert [j.job_id for j in store.list(status=["succeeded", "failed"])] == ["j2", "j1"]
    assert [j.job_id for j in store.list(process_id="odd", status="accepted")] == ["j5", "j3"]
    assert store.list(binding="ogcapi") == []
    with pytest.raises(ValueError):
        store.list(limit=-1)


def test_times_are_the_clocks_in_utc(store, clock):
    register(store, "a")
    clock.advance(5)
    store.start("a")
    job = store.get("a")
    assert job.created == T0 and job.started == clock.now
    assert job.created.tzinfo is datetime.UTC
    assert (job.binding, job.process_id, job.ended) == ("wps", "get_raster_process", False)


def test_migrating_a_new_database_twice(url, clock):
    store = JobStore.from_url(url, clock=clock)
    assert store.migrate() == (0, SCHEMA_VERSION)
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)


def test_an_owner_has_at_most_its_share_of_unfinished_jobs(store):
    """[jobs] max_per_client: queued and running jobs of one client count; ended ones do
    not; other clients are unaffected."""
    for job_id in ("a1", "a2"):
        register(store, job_id, owner="alice", max_per_owner=2)
    with pytest.raises(ClientBusy) as info:
        register(store, "a3", owner="alice", max_per_owner=2)
    assert info.value.count == 2 and store.get("a3") is None
    register(store, "b1", owner="bob", max_per_owner=2)
    store.finish("a1")
    register(store, "a3", owner="alice", max_per_owner=2)
    assert {job.job_id for job in store.list(owner="alice")} == {"a1", "a2", "a3"}


def test_storage_is_reserved_by_admitted_jobs_and_released_at_their_end(store):
    """Queued jobs hold their upper bound too: 20 queued large jobs cannot overfill a cap."""
    cap = 1000
    register(store, "j1", reserve_bytes=400, storage_cap_bytes=cap)
    register(store, "j2", reserve_bytes=400, storage_cap_bytes=cap)
    assert store.storage_used() == 800
    with pytest.raises(StorageExhausted) as info:
        register(store, "j3", reserve_bytes=400, storage_cap_bytes=cap)
    assert (info.value.used_bytes, info.value.wanted_bytes) == (800, 400)
    store.record_output("j1", 150)
    store.finish("j1")  # its reservation goes; what it published stays
    assert store.storage_used() == 150 + 400
    register(store, "j3", reserve_bytes=400, storage_cap_bytes=cap)
    assert store.forget_outputs(["j1", "nothing"]) == 1
    assert store.storage_used() == 800


def test_outputs_know_their_owner(store):
    store.record_output("sync-1", 10, owner="alice")
    register(store, "async-1", owner="bob")
    assert store.output_owner("sync-1") == (True, "alice")
    assert store.output_owner("async-1") == (True, "bob")
    assert store.output_owner("nobody") == (False, None)


def test_the_submitting_requests_id_is_kept(tmp_path):
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite")
    store.migrate()
    store.register("j1", "p", "wps", limits=Limits(1, 1), request_id="req-42")
    store.register("j2", "p", "wps", limits=Limits(1, 1))
    assert store.get("j1").request_id == "req-42" and store.get("j2").request_id is None
