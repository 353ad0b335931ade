"""JobStore: the one record of async jobs, shared by every worker, host and protocol binding.

A job is registered when it is accepted (admitted to run now, or queued), started, renewed
and progressed by whoever runs it, and ended once: succeeded, failed or dismissed. Every
transition is one conditional UPDATE, so two instances ending the same job cannot both
succeed; the methods that change a job return whether they did.

Liveness is a lease: a job admitted to run carries `lease_expires`, renewed by the process
that runs it (`heartbeat`, lease.Heartbeat). Each `start` is a new attempt (a Dask worker
rerunning the job after the first one died is attempt 2); a runner passes its attempt to
every later write, which then only succeeds while that attempt is the job's latest, so a
rerun, a stale runner and the reaper never overwrite each other. Any instance's `reap`
fails the jobs whose lease expired, and those still running `lease_s` past their maximum
run time (the process running a job stops it at the maximum itself; this catches one that
could not). No process id or host name decides anything. Times come from `clock` (UTC);
hosts sharing a store need clocks in step to well within `lease_s` (NTP).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import Connection, Engine, func, select

from wps_app.jobs import db, schema
from wps_app.jobs.model import (
    LEASE_EXPIRED,
    UNFINISHED,
    Admission,
    ClientBusy,
    Job,
    Limits,
    QueueFull,
    Status,
    StorageExhausted,
    overrun_message,
)

LOGGER = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
_T = schema.jobs
_O = schema.outputs
_SUMMARY = [c for c in _T.c if c.name != "payload"]


def utc_now() -> datetime.datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.datetime.now(datetime.UTC)


def _stored(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def _loaded(value: datetime.datetime | None) -> datetime.datetime | None:
    return None if value is None else value.replace(tzinfo=datetime.UTC)


def _job(row) -> Job:
    m = row._mapping
    return Job(
        job_id=m["job_id"], process_id=m["process_id"], binding=m["binding"],
        status=m["status"], queued=bool(m["queued"]), progress=float(m["progress"]),
        message=m["message"] or "", created=_loaded(m["created"]),
        started=_loaded(m["started"]), finished=_loaded(m["finished"]),
        updated=_loaded(m["updated"]), lease_expires=_loaded(m["lease_expires"]),
        workdir=m["workdir"], payload=m.get("payload"), owner=m["owner"],
        reserved_bytes=int(m["reserved_bytes"] or 0), attempt=int(m["attempt"] or 0),
        worker=m["worker"], request_id=m["request_id"],
    )


class JobStore:
    """Async jobs in a shared database (SQLite file or PostgreSQL).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From db.create_engine (no pooled connections: jobs run in forked processes).
    lease_s : float
        Seconds a job's lease lasts; its runner renews it every lease_s / 3.
    max_runtime_s : float
        Seconds a job may run before it is stopped and failed.
    clock : callable
        Returns the current timezone-aware datetime (injectable for tests).
    """

    def __init__(self, engine: Engine, *, lease_s: float = 30.0, max_runtime_s: float = 600.0,
                 clock: Clock = utc_now) -> None:
        if lease_s <= 0 or max_runtime_s <= 0:
            raise ValueError("lease_s and max_runtime_s must be positive")
        self.engine = engine
        self.lease_s = float(lease_s)
        self.max_runtime_s = float(max_runtime_s)
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, **kwargs) -> JobStore:
        """A store on the database at SQLAlchemy `url`; keyword arguments as the class."""
        return cls(db.create_engine(url), **kwargs)

    def _now(self) -> datetime.datetime:
        return _stored(self._clock())

    def _lease_from(self, now: datetime.datetime) -> datetime.datetime:
        return now + datetime.timedelta(seconds=self.lease_s)

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the tables (idempotent, safe with concurrent callers).

        Returns
        -------
        tuple of int
            (schema version found, schema version now).
        """
        return schema.migrate(self.engine, self._now())

    # admission ---------------------------------------------------------------------------

    @staticmethod
    def _counts(conn: Connection) -> tuple[int, int]:
        running, queued = conn.execute(
            select(func.count().filter(_T.c.queued.is_(False)),
                   func.count().filter(_T.c.queued.is_(True)))
            .where(_T.c.status.in_(UNFINISHED))
        ).one()
        return int(running or 0), int(queued or 0)

    def admit(self, limits: Limits) -> Admission:
        """What admission would decide now: counts of async jobs running (admitted, not
        ended) and queued, and the decision for one more.

        Parameters
        ----------
        limits : Limits

        Returns
        -------
        Admission
        """
        with self.engine.connect() as conn:
            running, queued = self._counts(conn)
        return Admission(running, queued, limits.decide(running, queued))

    def register(self, job_id: str, process_id: str, binding: str, *, limits: Limits,
                 workdir: str | None = None, payload: bytes | None = None,
                 owner: str | None = None, max_per_owner: int | None = None,
                 reserve_bytes: int = 0, storage_cap_bytes: int | None = None,
                 request_id: str | None = None) -> Job:
        """Record a new job as accepted: admitted to run now, or queued.

        The admission decision and the insert are one serialised transaction, so workers
        admitting at the same moment never exceed `limits`, an owner's share or the storage
        cap. A job admitted to run gets a lease: the caller holds it until the job's runner
        calls `start`.

        Parameters
        ----------
        job_id, process_id : str
        binding : str
            The protocol binding that accepted the job, e.g. "wps".
        limits : Limits
        workdir : str, optional
            The job's scratch folder.
        payload : bytes, optional
            The binding's serialised request (needed to start a queued job later).
        owner : str, optional
            The client the job belongs to (an API key's name, or an address).
        max_per_owner : int, optional
            At most this many unfinished jobs (running or queued) per owner.
        reserve_bytes : int
            Output storage the job may fill (an upper bound), held until it ends.
        storage_cap_bytes : int, optional
            Published plus reserved bytes may not exceed this.
        request_id : str, optional
            The submitting request's X-Request-ID (already validated), for the logs of
            whichever process or host runs the job.

        Returns
        -------
        Job
            `queued` tells whether it waits.

        Raises
        ------
        QueueFull, ClientBusy, StorageExhausted
            When the limits refuse it; nothing is recorded then.
        """
        with db.serialised(self.engine, "admission") as conn:
            running, queued = self._counts(conn)
            decision = limits.decide(running, queued)
            if decision == "refuse":
                raise QueueFull(Admission(running, queued, decision))
            if owner is not None and max_per_owner is not None:
                mine = conn.execute(select(func.count()).where(
                    _T.c.owner == owner, _T.c.status.in_(UNFINISHED))).scalar_one()
                if mine >= max_per_owner:
                    raise ClientBusy(owner, int(mine))
            if storage_cap_bytes is not None:
                used = self._storage_used(conn)
                if used + reserve_bytes > storage_cap_bytes:
                    raise StorageExhausted(used, reserve_bytes, storage_cap_bytes)
            now = self._now()
            conn.execute(_T.insert().values(
                job_id=job_id, process_id=process_id, binding=binding, status="accepted",
                queued=decision == "queue", progress=0.0, message="", created=now,
                updated=now, lease_expires=self._lease_from(now) if decision == "run" else None,
                workdir=workdir, payload=payload, owner=owner,
                reserved_bytes=max(0, int(reserve_bytes)), request_id=request_id))
            row = conn.execute(select(*_SUMMARY).where(_T.c.job_id == job_id)).one()
        return _job(row)

    # output storage ----------------------------------------------------------------------

    @staticmethod
    def _storage_used(conn: Connection) -> int:
        published = conn.execute(select(func.coalesce(func.sum(_O.c.bytes), 0))).scalar_one()
        reserved = conn.execute(select(func.coalesce(func.sum(_T.c.reserved_bytes), 0))
                                .where(_T.c.status.in_(UNFINISHED))).scalar_one()
        return int(published) + int(reserved)

    def storage_used(self) -> int:
        """Bytes the output folder holds (published) plus those unfinished jobs reserved."""
        with self.engine.connect() as conn:
            return self._storage_used(conn)

    def record_output(self, job_id: str, size_bytes: int, owner: str | None = None) -> None:
        """Note that job `job_id` (sync or async) published `size_bytes` of outputs."""
        with db.transaction(self.engine) as conn:
            conn.execute(_O.delete().where(_O.c.job_id == job_id))
            conn.execute(_O.insert().values(job_id=job_id, owner=owner, bytes=int(size_bytes),
                                            published=self._now()))

    def output_owner(self, job_id: str) -> tuple[bool, str | None]:
        """(known, owner) of the outputs or job `job_id`: whether the store knows it, and
        whose it is."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_O.c.owner).where(_O.c.job_id == job_id)).one_or_none()
            if row is None:
                row = conn.execute(select(_T.c.owner).where(_T.c.job_id == job_id)
                                   ).one_or_none()
        return (row is not None, None if row is None else row[0])

    def forget_outputs(self, job_ids: Iterable[str]) -> int:
        """The outputs of these jobs were deleted (retention clean-up); returns how many
        records went."""
        ids = list(job_ids)
        if not ids:
            return 0
        with db.transaction(self.engine) as conn:
            return conn.execute(_O.delete().where(_O.c.job_id.in_(ids))).rowcount

    def drain(self, limits: Limits, binding: str | None = None) -> list[Job]:
        """Take the queued jobs that can start now (oldest first) out of the queue.

        Each returned job is admitted with a lease the caller holds until its runner calls
        `start`; the caller must start it (or fail it). Room is counted over every binding.

        Parameters
        ----------
        limits : Limits
        binding : str, optional
            Only jobs of this binding (the caller can start no others).

        Returns
        -------
        list of Job
            With their payloads.
        """
        with self.engine.connect() as conn:  # the usual answer, without the write lock
            running, queued = self._counts(conn)
        if not queued or limits.decide(running, 0) != "run":
            return []
        with db.serialised(self.engine, "admission") as conn:
            running, queued = self._counts(conn)
            room = queued if limits.parallel < 0 else max(0, limits.parallel - running)
            waiting = [_T.c.status == "accepted", _T.c.queued.is_(True)]
            if binding is not None:
                waiting.append(_T.c.binding == binding)
            ids = conn.execute(
                select(_T.c.job_id).where(*waiting)
                .order_by(_T.c.created, _T.c.job_id).limit(room)
            ).scalars().all()
            if not ids:
                return []
            now = self._now()
            conn.execute(_T.update().where(_T.c.job_id.in_(ids)).values(
                queued=False, lease_expires=self._lease_from(now), updated=now))
            rows = conn.execute(select(_T).where(_T.c.job_id.in_(ids))
                                .order_by(_T.c.created, _T.c.job_id)).all()
        return [_job(row) for row in rows]

    # the runner's side -------------------------------------------------------------------

    def _update_unfinished(self, job_id: str, values: dict, *, admitted: bool = True,
                           attempt: int | None = None) -> bool:
        where = [_T.c.job_id == job_id, _T.c.status.in_(UNFINISHED)]
        if admitted:
            where.append(_T.c.queued.is_(False))
        if attempt is not None:
            where.append(_T.c.attempt == attempt)
        with db.transaction(self.engine) as conn:
            return conn.execute(_T.update().where(*where).values(**values)).rowcount == 1

    def start(self, job_id: str, workdir: str | None = None, *,
              worker: str | None = None) -> int:
        """The runner starts the job: status running, lease renewed, a new attempt.

        Parameters
        ----------
        job_id : str
        workdir : str, optional
            The scratch folder it runs in (replaces the one registered).
        worker : str, optional
            Who runs it (a Dask worker's address), kept for operators.

        Returns
        -------
        int
            This run's attempt number (1 for the first run), to pass to every later
            write; 0 when the job is not admitted or already ended: do not run it.
        """
        now = self._now()
        values = dict(status="running", started=now, updated=now,
                      lease_expires=self._lease_from(now), attempt=_T.c.attempt + 1,
                      worker=worker)
        if workdir is not None:
            values["workdir"] = workdir
        where = [_T.c.job_id == job_id, _T.c.status.in_(UNFINISHED), _T.c.queued.is_(False)]
        with db.transaction(self.engine) as conn:
            # the row stays locked by this transaction until commit: the attempt read back
            # is the one this UPDATE wrote
            if conn.execute(_T.update().where(*where).values(**values)).rowcount != 1:
                return 0
            return int(conn.execute(select(_T.c.attempt).where(_T.c.job_id == job_id))
                       .scalar_one())

    def heartbeat(self, job_id: str, attempt: int | None = None) -> bool:
        """Renew the job's lease for another `lease_s` seconds.

        Parameters
        ----------
        job_id : str
        attempt : int, optional
            The runner's attempt (from `start`): refused unless it is the latest.

        Returns
        -------
        bool
            False when the job ended meanwhile (failed by a reaper, dismissed) or a newer
            attempt took it over: its runner must stop.
        """
        return self._update_unfinished(
            job_id, dict(lease_expires=self._lease_from(self._now())), attempt=attempt)

    def progress(self, job_id: str, percent: float, message: str,
                 attempt: int | None = None) -> bool:
        """Record progress (percent, 0-100) and a message; renews the lease too.

        Returns
        -------
        bool
            False when the job ended meanwhile, or `attempt` is not the latest.
        """
        now = self._now()
        return self._update_unfinished(job_id, dict(
            progress=min(max(float(percent), 0.0), 100.0), message=str(message), updated=now,
            lease_expires=self._lease_from(now)), attempt=attempt)

    def _end(self, job_id: str, status: Status, message: str, attempt: int | None = None,
             **values) -> bool:
        now = self._now()
        return self._update_unfinished(job_id, dict(
            status=status, message=str(message), finished=now, updated=now, queued=False,
            lease_expires=None, reserved_bytes=0, **values), admitted=False, attempt=attempt)

    def finish(self, job_id: str, message: str = "", attempt: int | None = None) -> bool:
        """End the job as succeeded (progress 100).

        Parameters
        ----------
        attempt : int, optional
            The runner's attempt (from `start`): refused unless it is the latest.

        Returns
        -------
        bool
            True when this call ended it; False when it had ended already (idempotent) or
            `attempt` is not the latest.
        """
        return self._end(job_id, "succeeded", message, attempt, progress=100.0)

    def fail(self, job_id: str, message: str, attempt: int | None = None) -> bool:
        """End the job as failed with `message` (queued jobs leave the queue).

        Parameters
        ----------
        attempt : int, optional
            The runner's attempt (from `start`): refused unless it is the latest; None
            (an instance failing a job it could not start, an operator) always may.

        Returns
        -------
        bool
            True when this call ended it; False when it had ended already (idempotent) or
            `attempt` is not the latest.
        """
        return self._end(job_id, "failed", message, attempt)

    def dismiss(self, job_id: str, message: str = "dismissed") -> bool:
        """End the job as dismissed (cancelled by its client).

        Returns
        -------
        bool
            True when this call ended it; False when it had ended already.
        """
        return self._end(job_id, "dismissed", message)

    def dismiss_ended(self, job_id: str, message: str = "dismissed") -> bool:
        """Mark an ended (succeeded or failed) job dismissed: its client discarded it and
        its outputs (OGC API - Processes dismiss).

        Returns
        -------
        bool
            True when this call changed it.
        """
        with db.transaction(self.engine) as conn:
            return conn.execute(_T.update().where(
                _T.c.job_id == job_id, _T.c.status.in_(("succeeded", "failed"))
            ).values(status="dismissed", message=str(message),
                     updated=self._now())).rowcount == 1

    # supervision -------------------------------------------------------------------------

    def reap(self) -> list[Job]:
        """Fail the jobs nobody runs any more: lease expired, or running `lease_s` past
        `max_runtime_s` (their own process failed to stop them).

        Returns
        -------
        list of Job
            The jobs this call failed (another instance reaping at the same moment gets the
            others), as they are now.
        """
        now = self._now()
        expired = _T.c.lease_expires < now
        overdue = _T.c.started < now - datetime.timedelta(
            seconds=self.max_runtime_s + self.lease_s)
        candidates = [_T.c.status.in_(UNFINISHED), _T.c.queued.is_(False), expired | overdue]
        with self.engine.connect() as conn:
            found = conn.execute(select(_T.c.job_id, _T.c.attempt, expired.label("expired"))
                                 .where(*candidates)).all()
        failed = []
        for job_id, attempt, is_expired in found:
            # an expired lease says why first: a live runner would have stopped its job
            message = LEASE_EXPIRED if is_expired else overrun_message(self.max_runtime_s)
            # the conditions again, and the attempt seen: a rerun that started since (a
            # new attempt, a fresh lease) keeps its job
            with db.transaction(self.engine) as conn:
                ended = conn.execute(_T.update().where(
                    _T.c.job_id == job_id, _T.c.attempt == attempt, *candidates
                ).values(status="failed", message=message, finished=now, updated=now,
                         lease_expires=None)).rowcount
            if ended:
                LOGGER.warning("job %s failed: %s", job_id, message)
                failed.append(job_id)
        return [job for job_id in failed if (job := self.get(job_id)) is not None]

    # reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job `job_id` (with its payload), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_T).where(_T.c.job_id == job_id)).one_or_none()
        return None if row is None else _job(row)

    def list(self, *, status: Status | Iterable[Status] | None = None,
             process_id: str | None = None, binding: str | None = None,
             owner: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs, newest first, filtered and paged (payloads left out).

        Parameters
        ----------
        status : str or iterable of str, optional
            One status or several.
        process_id, binding, owner : str, optional
        limit : int
            At most this many jobs (>= 0).
        offset : int
            Skip this many first (>= 0).

        Returns
        -------
        list of Job
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        query = select(*_SUMMARY)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            query = query.where(_T.c.status.in_(wanted))
        if process_id is not None:
            query = query.where(_T.c.process_id == process_id)
        if binding is not None:
            query = query.where(_T.c.binding == binding)
        if owner is not None:
            query = query.where(_T.c.owner == owner)
        query = query.order_by(_T.c.created.desc(), _T.c.job_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query)]
