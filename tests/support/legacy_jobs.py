"""The job tables as the code before the JobStore left them (schema version 1), with a few
rows, and the checks a migration to version 2 must pass, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime
import threading

from pywps import dblog
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, select

from wps_app.jobs import LEASE_EXPIRED, JobStore, Limits
from wps_app.jobs.schema import jobs, legacy_requests, legacy_stored

# The old wps_app/jobs/store.py's table, declared exactly as it was.
_metadata = MetaData()
job_owners = Table(
    "edge_job_owners",
    _metadata,
    Column("uuid", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workdir", String(1024), nullable=True),
    Column("started", DateTime, nullable=False),
)

# Local naive times, as the old code and PyWPS wrote them (datetime.now()).
T0 = datetime.datetime(2024, 3, 1, 12, 0, 0)
MIGRATED_AT = datetime.datetime(2024, 3, 1, 13, 0, 0, tzinfo=datetime.UTC)


def _at(minutes: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def create_legacy(engine) -> None:
    """Create version 1 (PyWPS 4.8.1's own tables, and edge_job_owners) with: a running
    job, a succeeded one, a failed one, a queued one, a sync Execute and a GetCapabilities
    logged before sync requests stopped being logged."""
    dblog.ProcessInstance.metadata.create_all(engine)  # PyWPS's pywps_requests and stored
    _metadata.create_all(engine)
    requests = [
        dict(uuid="running", pid=101, operation="execute", version="1.0.0",
             time_start=_at(0), time_end=_at(1), identifier="get_raster_process",
             message="filtering", percent_done=40.0, status=2),
        dict(uuid="succeeded", pid=102, operation="execute", version="1.0.0",
             time_start=_at(-10), time_end=_at(-8), identifier="get_raster_process",
             message="PyWPS Process finished", percent_done=100.0, status=4),
        dict(uuid="failed", pid=103, operation="execute", version="1.0.0",
             time_start=_at(-20), time_end=_at(-19), identifier="get_raster_process",
             message="Process error: the WMS answered with HTTP status 500",
             percent_done=100.0, status=5),
        dict(uuid="queued", pid=104, operation="execute", version="1.0.0",
             time_start=_at(2), time_end=_at(2), identifier="get_raster_process",
             message="PyWPS Process stored in job queue", percent_done=0.0, status=1),
        dict(uuid="sync", pid=105, operation="execute", version="1.0.0",
             time_start=_at(-30), time_end=_at(-30), identifier="get_raster_process",
             message="done", percent_done=100.0, status=4),
        dict(uuid="caps", pid=106, operation="getcapabilities", version="1.0.0",
             time_start=_at(-31), time_end=_at(-31), identifier=None, message="",
             percent_done=100.0, status=4),
    ]
    owners = [
        dict(uuid="running", host="old-host", pid=4242, workdir="/tmp/pywps_process_r",
             started=_at(0.5)),
        dict(uuid="succeeded", host="old-host", pid=4243, workdir="/tmp/pywps_process_s",
             started=_at(-9.5)),
        dict(uuid="failed", host="old-host", pid=4244, workdir=None, started=_at(-19.5)),
    ]
    with engine.begin() as conn:
        conn.execute(legacy_requests.insert(), requests)
        conn.execute(job_owners.insert(), owners)
        conn.execute(legacy_stored.insert(), [dict(uuid="queued", request=b'{"identifier": 1}')])


def utc(local: datetime.datetime) -> datetime.datetime:
    """A local naive time of this process as aware UTC (what the migration must make of it)."""
    return local.astimezone(datetime.UTC)


def check_migrated(store: JobStore) -> None:
    """The four async jobs survive with sensible values; the rest of version 1 is gone or
    untouched as it should be."""
    by_id = {job.job_id: store.get(job.job_id) for job in store.list()}
    assert sorted(by_id) == ["failed", "queued", "running", "succeeded"]
    running, done, failed, queued = (by_id[k] for k in ("running", "succeeded", "failed",
                                                         "queued"))
    assert (running.status, running.progress, running.message) == ("running", 40.0,
                                                                    "filtering")
    assert running.created == utc(_at(0)) and running.started == utc(_at(0.5))
    assert running.finished is None and running.workdir == "/tmp/pywps_process_r"
    assert running.lease_expires == MIGRATED_AT and not running.queued
    assert (done.status, done.progress, done.finished) == ("succeeded", 100.0, utc(_at(-8)))
    assert done.lease_expires is None and done.started == utc(_at(-9.5))
    assert (failed.status, failed.message) == (
        "failed", "Process error: the WMS answered with HTTP status 500")
    assert failed.finished == utc(_at(-19)) and failed.workdir is None
    assert (queued.status, queued.queued, queued.payload) == ("accepted", True,
                                                              b'{"identifier": 1}')
    assert queued.started is None and queued.lease_expires is None
    assert {job.binding for job in by_id.values()} == {"wps"}
    assert {job.process_id for job in by_id.values()} == {"get_raster_process"}
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert "edge_job_owners" not in tables
        assert conn.execute(select(legacy_stored.c.uuid)).all() == []  # the queue moved
        assert len(conn.execute(select(legacy_requests.c.uuid)).all()) == 6  # PyWPS's, kept


def check_store_takes_over(store: JobStore) -> None:
    """After the migration the store works on the moved jobs: the old running job has no
    runner, so the first reap fails it; then the queued one can start."""
    later = MIGRATED_AT + datetime.timedelta(seconds=1)
    store = JobStore(store.engine, clock=lambda: later)
    reaped = store.reap()
    assert [(j.job_id, j.message) for j in reaped] == [("running", LEASE_EXPIRED)]
    assert [j.job_id for j in store.drain(Limits(parallel=1, queued=1))] == ["queued"]


def migrate_concurrently(url: str, workers: int = 6) -> list[tuple[int, int]]:
    """Start `workers` threads, each with its own store (own connections, as gunicorn
    workers have), that migrate at the same moment; returns what each migration reported."""
    barrier = threading.Barrier(workers)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        store = JobStore.from_url(url, clock=lambda: MIGRATED_AT)
        barrier.wait()
        try:
            results.append(store.migrate())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def row_count(store: JobStore) -> int:
    with store.engine.connect() as conn:
        return len(conn.execute(select(jobs.c.job_id)).all())
