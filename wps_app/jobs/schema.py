"""The job store's tables, their version, and the migrations between versions.

Versions:

0. no table of ours (a new database, or one with PyWPS's tables only);
1. `edge_job_owners(uuid, host, pid, workdir, started)` beside PyWPS's `pywps_requests` and
   `pywps_stored_requests`: the job's status lived in PyWPS's log, its liveness was decided
   by process ids (the code before the JobStore; this version had no version table);
2. `edge_jobs`, one row per async job with its status, progress, times, lease, owner (the
   client: an API key's name or an address) and the storage it reserved, the queue
   included; `edge_outputs`, the bytes each published job (sync or async) holds in the
   output folder; and `edge_schema_version`;
3. `edge_jobs` gains `attempt` (how many times a runner started the job: a Dask rerun after
   its worker died is attempt 2, and only the current attempt may write the job's status)
   and `worker` (the Dask worker, or nothing for a local process, that ran it; for
   operators), and `request_id` (the X-Request-ID of the request that submitted it, for
   the logs of whatever runs it). Added in place: ALTER TABLE ... ADD COLUMN, existing rows
   at attempt 0.

`migrate` runs at start-up in every worker; it is idempotent, and serialised (db.serialised)
so that workers starting together migrate once: the others wait, then find the version
current. DDL is transactional on SQLite and PostgreSQL, so a failed migration leaves the old
schema whole.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)

from wps_app.jobs.db import serialised
from wps_app.jobs.model import SchemaTooNew

LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION = 3

metadata = MetaData()

# Times are naive UTC datetimes (SQLite keeps no time zone); JobStore converts at its edge.
jobs = Table(
    "edge_jobs",
    metadata,
    Column("job_id", String(255), primary_key=True),
    Column("process_id", String(255), nullable=False),
    Column("binding", String(30), nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued", Boolean, nullable=False, default=False),
    Column("progress", Float, nullable=False, default=0.0),  # percent
    Column("message", Text, nullable=False, default=""),
    Column("created", DateTime, nullable=False),
    Column("started", DateTime, nullable=True),
    Column("finished", DateTime, nullable=True),
    Column("updated", DateTime, nullable=False),
    Column("lease_expires", DateTime, nullable=True),
    Column("workdir", String(1024), nullable=True),
    Column("payload", LargeBinary, nullable=True),
    Column("owner", String(64), nullable=True),
    # bytes of output storage held for the job until it ends (its outputs' upper bound)
    Column("reserved_bytes", BigInteger, nullable=False, default=0),
    # runs started (0: not yet); writes of an older attempt are refused (JobStore)
    Column("attempt", Integer, nullable=False, default=0, server_default="0"),
    Column("worker", String(255), nullable=True),  # who runs it: operators only
    Column("request_id", String(128), nullable=True),  # the submitting request's id
)
# admission counts, the reaper and the queue all select unfinished jobs by status
Index("edge_jobs_status", jobs.c.status, jobs.c.queued)
Index("edge_jobs_created", jobs.c.created)
Index("edge_jobs_owner", jobs.c.owner, jobs.c.status)

# What the output folder holds, job by job: kept as it changes (publish, clean-up), so the
# storage cap is checked by one SUM instead of a walk of the whole folder.
outputs = Table(
    "edge_outputs",
    metadata,
    Column("job_id", String(255), primary_key=True),
    Column("owner", String(64), nullable=True),
    Column("bytes", BigInteger, nullable=False),
    Column("published", DateTime, nullable=False),
)

schema_version = Table(
    "edge_schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

# Version 1, exactly as it was declared: our table, and PyWPS 4.8.1's (default [logging]
# prefix "pywps_", which this service never changed). Used only to read them when migrating.
_legacy = MetaData()
legacy_owners = Table(
    "edge_job_owners",
    _legacy,
    Column("uuid", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workdir", String(1024), nullable=True),
    Column("started", DateTime, nullable=False),
)
legacy_requests = Table(
    "pywps_requests",
    _legacy,
    Column("uuid", String(255), primary_key=True),
    Column("pid", Integer),
    Column("operation", String(30)),
    Column("version", String(5)),
    Column("time_start", DateTime),
    Column("time_end", DateTime),
    Column("identifier", String(255)),
    Column("message", String),
    Column("percent_done", Float),
    Column("status", Integer),
)
legacy_stored = Table(
    "pywps_stored_requests",
    _legacy,
    Column("uuid", String(255), primary_key=True),
    Column("request", LargeBinary),
)
# pywps.response.status.WPS_STATUS: UNKNOWN, ACCEPTED, STARTED, PAUSED, SUCCEEDED, FAILED
_LEGACY_STATUS = {0: "accepted", 1: "accepted", 2: "running", 3: "running", 4: "succeeded",
                  5: "failed"}


def current_version(conn) -> int:
    """The schema version of the database `conn` is connected to (0, 1 or the number in
    edge_schema_version)."""
    tables = set(inspect(conn).get_table_names())
    if schema_version.name in tables:
        return int(conn.execute(select(schema_version.c.version)).scalar_one())
    return 1 if legacy_owners.name in tables else 0


def migrate(engine: Engine, now: datetime.datetime) -> tuple[int, int]:
    """Bring the database to SCHEMA_VERSION; a no-op when it is there already.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    now : datetime.datetime
        Naive UTC time of the migration: jobs left running by the old code get a lease
        that expires now (nothing renews it), so the first reap fails them.

    Returns
    -------
    tuple of int
        (version found, version left).

    Raises
    ------
    SchemaTooNew
        When the database was migrated by newer code.
    """
    with serialised(engine, "schema") as conn:
        found = current_version(conn)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(f"job store schema {found}; this code knows {SCHEMA_VERSION}")
        if found == SCHEMA_VERSION:
            return found, found
        if found == 2:
            _add_attempts(conn)
        metadata.create_all(conn)  # a no-op for tables that exist
        moved = _from_owners(conn, now) if found == 1 else 0
        conn.execute(schema_version.delete())
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
    LOGGER.info("job store schema migrated from version %d to %d (%d jobs moved)", found,
                SCHEMA_VERSION, moved)
    return found, SCHEMA_VERSION


def _add_attempts(conn) -> None:
    """Version 2 -> 3: the attempt, worker and request_id columns, in place (SQLite and PostgreSQL
    both add a column with a constant default to every existing row)."""
    conn.exec_driver_sql(
        f"ALTER TABLE {jobs.name} ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql(f"ALTER TABLE {jobs.name} ADD COLUMN worker VARCHAR(255)")
    conn.exec_driver_sql(f"ALTER TABLE {jobs.name} ADD COLUMN request_id VARCHAR(128)")


def _to_utc(value: datetime.datetime | None) -> datetime.datetime | None:
    """Version 1 kept local naive times (datetime.now()): read as this host's local time."""
    if value is None:
        return None
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def _from_owners(conn, now: datetime.datetime) -> int:
    """Version 1 -> 2: every async job (one with an owner row, or waiting in PyWPS's queue)
    becomes an edge_jobs row; edge_job_owners is dropped and the queue moves over."""
    tables = set(inspect(conn).get_table_names())
    has_requests = legacy_requests.name in tables
    has_stored = legacy_stored.name in tables
    rows: list[dict] = []
    if has_requests:
        owned = conn.execute(
            select(legacy_owners, legacy_requests.c.identifier, legacy_requests.c.status,
                   legacy_requests.c.percent_done, legacy_requests.c.message,
                   legacy_requests.c.time_start, legacy_requests.c.time_end)
            .select_from(legacy_owners.outerjoin(
                legacy_requests, legacy_requests.c.uuid == legacy_owners.c.uuid))
        ).all()
    else:
        owned = conn.execute(select(legacy_owners)).all()
    for row in owned:
        rows.append(_owned_job(row._mapping, now))
    if has_requests and has_stored:
        waiting = conn.execute(
            select(legacy_stored, legacy_requests.c.identifier, legacy_requests.c.time_start)
            .select_from(legacy_stored.join(
                legacy_requests, legacy_requests.c.uuid == legacy_stored.c.uuid))
            .where(legacy_stored.c.uuid.not_in(select(legacy_owners.c.uuid)))
        ).all()
        for row in waiting:
            created = _to_utc(row.time_start) or now
            rows.append(dict(
                job_id=row.uuid, process_id=row.identifier or "", binding="wps",
                status="accepted", queued=True, progress=0.0, message="", created=created,
                started=None, finished=None, updated=created, lease_expires=None,
                workdir=None, payload=row.request))
    if rows:
        conn.execute(jobs.insert(), rows)
    if has_stored and rows:
        conn.execute(legacy_stored.delete().where(
            legacy_stored.c.uuid.in_([r["job_id"] for r in rows])))
    legacy_owners.drop(conn)
    return len(rows)


def _owned_job(row, now: datetime.datetime) -> dict:
    status = _LEGACY_STATUS.get(row.get("status"), "accepted")
    created = _to_utc(row.get("time_start")) or _to_utc(row["started"])
    ended = status in ("succeeded", "failed")
    time_end = _to_utc(row.get("time_end"))
    message = row.get("message")
    return dict(
        job_id=row["uuid"],
        process_id=row.get("identifier") or "",
        binding="wps",
        status=status,
        queued=False,
        progress=min(max(float(row.get("percent_done") or 0.0), 0.0), 100.0),
        message="" if message in (None, "None") else str(message),
        created=created,
        started=None if status == "accepted" else _to_utc(row["started"]),
        finished=time_end if ended else None,
        updated=time_end or _to_utc(row["started"]) or created,
        lease_expires=None if ended else now,
        workdir=row["workdir"],
        payload=None,
    )
