"""A Dask scheduler and workers (PyPI `distributed`, workers under nannies) as processes
of our own, bound to 127.0.0.1, each in its own session.

The scheduler runs with `distributed.scheduler.allowed-failures = 1`, set explicitly (Dask's
default is 3): a job whose worker died mid-run is run once more; if that worker dies too,
the task is given up and the job's lease expires (the reaper fails it with a message).
Workers preload wps_app.cluster.worker_run, which builds the service as the worker starts
(its WMS layer lists are read before the first job arrives), and run one task at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wps_app.settings import REPO_ROOT

ALLOWED_FAILURES = 1
WORKER_THREADS = 1  # jobs a worker runs at once (each job's read already uses 2 threads)
DASK_ENVIRONMENT = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
}


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    environment = dict(os.environ, **(env or {}), **DASK_ENVIRONMENT)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), environment.get("PYTHONPATH", "")) if p)
    return environment


def start_scheduler(port: int, rundir: Path, env: dict[str, str] | None = None
                    ) -> subprocess.Popen:
    """`dask scheduler` on 127.0.0.1:`port` in its own session (log in rundir)."""
    rundir.mkdir(parents=True, exist_ok=True)
    log = open(rundir / "scheduler.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard", "--no-show"],
        cwd=REPO_ROOT, env=_environment(env), stdout=log, stderr=log,
        start_new_session=True)


def start_worker(scheduler: str, name: str, rundir: Path, threads: int = WORKER_THREADS,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """`dask worker` (a nanny and its worker process) named `name`, in its own session."""
    rundir.mkdir(parents=True, exist_ok=True)
    log = open(rundir / f"{name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", scheduler, "--name", name,
         "--host", "127.0.0.1", "--nthreads", str(threads), "--nworkers", "1", "--nanny",
         "--no-dashboard", "--local-directory", str(rundir / name),
         "--preload", "wps_app.cluster.worker_run"],
        cwd=REPO_ROOT, env=_environment(env), stdout=log, stderr=log,
        start_new_session=True)


def wait_for_workers(scheduler: str, count: int, timeout_s: float = 90.0) -> None:
    """Return once `count` workers are connected to `scheduler`; TimeoutError otherwise."""
    import distributed

    with distributed.Client(scheduler, timeout=timeout_s, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=timeout_s)
