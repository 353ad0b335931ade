"""Value objects of the job store: a job, admission limits and decisions, errors.

Nothing here knows a protocol: a WPS job and an OGC API – Processes job are the same record,
told apart by `binding`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

Status = Literal["accepted", "running", "succeeded", "failed", "dismissed"]
Decision = Literal["run", "queue", "refuse"]

UNFINISHED: tuple[Status, ...] = ("accepted", "running")
ENDED: tuple[Status, ...] = ("succeeded", "failed", "dismissed")

LEASE_EXPIRED = "the worker running this job stopped answering; please submit it again"


def overrun_message(max_runtime_s: float) -> str:
    """The failure message of a job stopped at its maximum run time (seconds)."""
    return f"the job exceeded the maximum run time of {max_runtime_s:g} s and was stopped"


@dataclass(frozen=True)
class Limits:
    """How many async jobs may run at once and wait in the queue; -1 means no limit
    (PyWPS's [server] parallelprocesses and maxprocesses)."""

    parallel: int = 4
    queued: int = 16

    def decide(self, running: int, queued: int) -> Decision:
        """Run now, wait in the queue, or refuse, given the jobs running and queued.

        Parameters
        ----------
        running : int
            Async jobs admitted and not ended (accepted or running, not queued).
        queued : int
            Jobs waiting in the queue.

        Returns
        -------
        Decision
            "run" while fewer than `parallel` run, else "queue" while fewer than
            `queued` wait, else "refuse".
        """
        if self.parallel < 0 or running < self.parallel:
            return "run"
        if self.queued < 0 or queued < self.queued:
            return "queue"
        return "refuse"


@dataclass(frozen=True)
class Admission:
    """The counts an admission decision was made on, and the decision."""

    running: int
    queued: int
    decision: Decision


@dataclass(frozen=True)
class Job:
    """One async job as the store knows it.

    Times are timezone-aware UTC datetimes. `payload` is the binding's own serialised
    request, kept so that a queued job can be started later by any instance; only `get`
    and `drain` fill it in (`list` leaves it None).
    """

    job_id: str
    process_id: str
    binding: str
    status: Status
    queued: bool
    progress: float  # percent, 0-100
    message: str
    created: datetime.datetime
    started: datetime.datetime | None
    finished: datetime.datetime | None
    updated: datetime.datetime
    lease_expires: datetime.datetime | None
    workdir: str | None
    payload: bytes | None = None
    owner: str | None = None  # the client: an API key's name, or an address
    reserved_bytes: int = 0  # output storage held until the job ends
    attempt: int = 0  # runs started; only the latest may write the job's status
    worker: str | None = None  # the Dask worker that runs or ran it (operators only)
    request_id: str | None = None  # X-Request-ID of the request that submitted it

    @property
    def ended(self) -> bool:
        """Whether the job reached a final status."""
        return self.status in ENDED


class JobStoreError(Exception):
    """Base class of the job store's errors."""


class QueueFull(JobStoreError):
    """The job was refused: as many jobs run and wait as the limits allow."""

    def __init__(self, admission: Admission) -> None:
        super().__init__(f"{admission.running} jobs running and {admission.queued} queued")
        self.admission = admission


class ClientBusy(JobStoreError):
    """The job was refused: its client has as many jobs running and queued as allowed."""

    def __init__(self, owner: str, count: int) -> None:
        super().__init__(f"{count} jobs of this client are running or queued")
        self.owner = owner
        self.count = count


class StorageExhausted(JobStoreError):
    """The job was refused: its outputs could exceed the output storage cap."""

    def __init__(self, used_bytes: int, wanted_bytes: int, cap_bytes: int) -> None:
        super().__init__(f"{used_bytes} bytes used or reserved, {wanted_bytes} more wanted, "
                         f"cap {cap_bytes}")
        self.used_bytes = used_bytes
        self.wanted_bytes = wanted_bytes
        self.cap_bytes = cap_bytes


class SchemaTooNew(JobStoreError):
    """The database holds a newer job-store schema than this code knows."""
