"""The job tables at schema version 2 (before attempts and workers), with a few rows, and
the checks a migration to version 3 must pass, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    inspect,
)

from wps_app.jobs import JobStore, Limits

# Version 2's tables, declared exactly as wps_app/jobs/schema.py declared them then.
_v2 = MetaData()
jobs_v2 = Table(
    "edge_jobs", _v2,
    Column("job_id", String(255), primary_key=True),
    Column("process_id", String(255), nullable=False),
    Column("binding", String(30), nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued", Boolean, nullable=False, default=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("message", Text, nullable=False, default=""),
    Column("created", DateTime, nullable=False),
    Column("started", DateTime, nullable=True),
    Column("finished", DateTime, nullable=True),
    Column("updated", DateTime, nullable=False),
    Column("lease_expires", DateTime, nullable=True),
    Column("workdir", String(1024), nullable=True),
    Column("payload", LargeBinary, nullable=True),
    Column("owner", String(64), nullable=True),
    Column("reserved_bytes", BigInteger, nullable=False, default=0),
)
outputs_v2 = Table(
    "edge_outputs", _v2,
    Column("job_id", String(255), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("bytes", BigInteger, nullable=False),
    Column("published", DateTime, nullable=False),
)
version_v2 = Table("edge_schema_version", _v2, Column("version", Integer, nullable=False))

T0 = datetime.datetime(2024, 6, 1, 9, 0, 0)  # naive UTC, as version 2 stores times
MIGRATED_AT = datetime.datetime(2024, 6, 1, 9, 1, 0, tzinfo=datetime.UTC)


def create_version_2(engine) -> None:
    """Version 2 with a running job (lease still valid at MIGRATED_AT), a succeeded one and
    a queued one, plus one published output."""
    _v2.create_all(engine)
    lease = T0 + datetime.timedelta(minutes=5)
    common = dict(process_id="get_raster_process", binding="wps", message="", created=T0,
                  updated=T0, workdir=None, payload=b"{}", owner="alice", reserved_bytes=0)
    with engine.begin() as conn:
        conn.execute(version_v2.insert().values(version=2))
        conn.execute(jobs_v2.insert(), [
            dict(common, job_id="running", status="running", queued=False, progress=40.0,
                 started=T0, finished=None, lease_expires=lease, reserved_bytes=1000),
            dict(common, job_id="succeeded", status="succeeded", queued=False,
                 progress=100.0, started=T0, finished=T0, lease_expires=None),
            dict(common, job_id="queued", status="accepted", queued=True, progress=0.0,
                 started=None, finished=None, lease_expires=None),
        ])
        conn.execute(outputs_v2.insert().values(job_id="succeeded", owner="alice",
                                                bytes=2048, published=T0))


def check_migrated_to_3(store: JobStore) -> None:
    """Every version 2 row is kept as it was, at attempt 0 with no worker; the store then
    works on it: the running job's next start is attempt 1, the queue and the storage
    counts are as before."""
    columns = {c["name"] for c in inspect(store.engine).get_columns("edge_jobs")}
    assert {"attempt", "worker"} <= columns
    running, succeeded = store.get("running"), store.get("succeeded")
    assert (running.status, running.progress, running.reserved_bytes) == ("running", 40.0, 1000)
    assert (succeeded.status, succeeded.finished) == ("succeeded", T0.replace(
        tzinfo=datetime.UTC))
    assert [(j.attempt, j.worker) for j in (running, succeeded, store.get("queued"))] == [
        (0, None)] * 3
    assert store.storage_used() == 2048 + 1000
    assert store.start("running", worker="tcp://127.0.0.1:1") == 1
    assert store.get("running").worker == "tcp://127.0.0.1:1"
    assert [j.job_id for j in store.drain(Limits(parallel=4, queued=4))] == ["queued"]
