"""Where the first bottleneck is as hosts are added: each shared part's ceiling in jobs/s.

Pure arithmetic (no I/O), fed by bench.shared_costs' measurements. A shared part (the
PostgreSQL job store, the shared folder, the Dask scheduler) sustains `capacity_per_s` of
its unit (statements, file writes + renames, messages) per second. At a steady rate of
lambda async jobs/s, each lasting `duration_s` seconds on a worker and polled by its client
every `poll_s` seconds, with `api_processes` gunicorn workers across the API hosts:

    running jobs        R = lambda * duration_s                       (Little's law)
    load on the part    L = lambda * (per_job + per_poll * duration_s / poll_s)
                          + R * per_running_s                         (heartbeats: 3 / lease_s
                                                                       per running job)
                          + api_processes * per_api_process_s         (reaper passes)
    its ceiling         lambda_max = (capacity_per_s - api_processes * per_api_process_s)
                                     / (per_job + per_poll * duration_s / poll_s
                                        + duration_s * per_running_s)

Worker hosts bound the rate too: W hosts of `slots` job threads each finish at most
W * slots / duration_s jobs/s. Adding worker hosts raises that bound until it meets the
lowest shared ceiling: that part saturates first, at W = lambda_max * duration_s / slots
hosts. Adding API hosts raises no job ceiling (jobs leave the API tier) but adds its
processes' reaper passes to the store's fixed load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One shared part's measured capacity and the load each job puts on it.

    Attributes
    ----------
    name, unit : str
        E.g. "PostgreSQL", "statements".
    capacity_per_s : float
        Units per second the part sustains (measured on this machine).
    per_job : float
        Units per job, apart from heartbeats and status polls.
    per_running_s : float
        Units per second per running job (the store: 3 / lease_s heartbeats, each
        `statements per heartbeat`).
    per_poll : float
        Units per status GET of the job's client.
    per_api_process_s : float
        Units per second per API process whatever the jobs (the store: reaper passes).
    """

    name: str
    unit: str
    capacity_per_s: float
    per_job: float
    per_running_s: float = 0.0
    per_poll: float = 0.0
    per_api_process_s: float = 0.0


def heartbeat_load(statements_per_heartbeat: float, lease_s: float) -> float:
    """Statements per second per running job: one heartbeat every lease_s / 3 seconds."""
    if lease_s <= 0:
        raise ValueError("lease_s must be positive")
    return statements_per_heartbeat * 3.0 / lease_s


def load_per_s(part: Part, jobs_per_s: float, duration_s: float, poll_s: float,
               api_processes: int) -> float:
    """Units per second the part serves at `jobs_per_s` (see the module's formula)."""
    per_job = part.per_job + part.per_poll * duration_s / poll_s
    running = jobs_per_s * duration_s
    return (jobs_per_s * per_job + running * part.per_running_s
            + api_processes * part.per_api_process_s)


def ceiling(part: Part, duration_s: float, poll_s: float, api_processes: int) -> float:
    """The most jobs/s the part sustains (0 when its fixed load alone exceeds it; inf
    when jobs cost it nothing)."""
    spare = part.capacity_per_s - api_processes * part.per_api_process_s
    per_job = (part.per_job + part.per_poll * duration_s / poll_s
               + duration_s * part.per_running_s)
    if spare <= 0:
        return 0.0
    return math.inf if per_job <= 0 else spare / per_job


def worker_ceiling(worker_hosts: int, slots: int, duration_s: float) -> float:
    """Jobs/s `worker_hosts` hosts of `slots` job threads each can finish."""
    return worker_hosts * slots / duration_s


def first_bottleneck(parts: list[Part], duration_s: float, poll_s: float,
                     api_processes: int) -> tuple[str, float, dict[str, float]]:
    """The shared part that saturates first: (its name, its ceiling in jobs/s, every
    part's ceiling by name)."""
    ceilings = {p.name: ceiling(p, duration_s, poll_s, api_processes) for p in parts}
    name = min(ceilings, key=ceilings.get)
    return name, ceilings[name], ceilings


def worker_hosts_at(ceiling_jobs_s: float, slots: int, duration_s: float) -> float:
    """Worker hosts whose jobs reach `ceiling_jobs_s` (the shared part's ceiling)."""
    return ceiling_jobs_s * duration_s / slots
