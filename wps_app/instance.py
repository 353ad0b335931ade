"""One running instance's run folder, shared by its gunicorn master and workers.

gunicorn.conf.py prepares it when the master starts ($EDGE_WPS_RUNDIR, given by whoever
starts gunicorn, or a fresh temporary folder removed when the master exits) and exports
its path to the workers:

- `metrics/`: prometheus_client's multiprocess files ($PROMETHEUS_MULTIPROC_DIR);
- `draining`: present once the master received SIGTERM (wps_app.ops.gunicorn_drain): the
  app then answers /health with 503 "draining" (a load balancer takes it out) and still
  serves every other request;
- `refusing`: present once the drain's first phase (`[server] drain_s`) is over: the app
  then refuses new requests with 503 and Retry-After while those in flight finish;
- `busy/<pid>`: present while worker <pid> serves a request other than /health and
  /metrics (the master waits for these to go before it stops).

Without $EDGE_WPS_RUNDIR (an app built in-process) nothing here is used: never draining.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

RUNDIR_ENV = "EDGE_WPS_RUNDIR"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Requests that never hold a drain: a load balancer's checks and scrapes go on meanwhile.
UNTRACKED_PATHS = frozenset({"/health", "/health/upstream", "/metrics"})


def rundir() -> Path | None:
    """This instance's run folder, if it has one."""
    value = os.environ.get(RUNDIR_ENV)
    return Path(value) if value else None


def draining() -> bool:
    """Whether this instance drains (one stat() per call)."""
    folder = rundir()
    return folder is not None and (folder / "draining").exists()


def refusing() -> bool:
    """Whether this instance refuses new requests (the drain's second phase)."""
    folder = rundir()
    return folder is not None and (folder / "refusing").exists()


def prepare(folder: Path) -> None:
    """Make `folder` a fresh run folder (counts and flags of an earlier run removed) and
    export it, and its metrics folder, to this process's environment (gunicorn's workers
    inherit it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("metrics", "busy"):
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir()
    for flag in ("draining", "refusing"):
        (folder / flag).unlink(missing_ok=True)
    os.environ[RUNDIR_ENV] = str(folder)
    os.environ[METRICS_ENV] = str(folder / "metrics")


def mark_draining(folder: Path) -> None:
    """Raise the draining flag."""
    (folder / "draining").touch()


def mark_refusing(folder: Path) -> None:
    """Raise the refusing flag (the draining flag stays)."""
    (folder / "refusing").touch()


def mark_busy(folder: Path, pid: int, path: str) -> None:
    """Worker `pid` started serving `path` (untracked paths are ignored). A folder gone
    from under a running instance costs the drain its wait, never the request."""
    if path not in UNTRACKED_PATHS:
        try:
            (folder / "busy" / str(pid)).touch()
        except OSError:
            pass


def mark_idle(folder: Path, pid: int) -> None:
    """Worker `pid` is done with its request."""
    try:
        (folder / "busy" / str(pid)).unlink(missing_ok=True)
    except OSError:
        pass


def busy_workers(folder: Path, alive: set[int]) -> set[int]:
    """The workers among `alive` serving a tracked request (markers of dead ones go)."""
    busy = set()
    try:
        markers = list((folder / "busy").iterdir())
    except OSError:
        return busy
    for marker in markers:
        try:
            pid = int(marker.name)
        except ValueError:
            continue
        if pid in alive:
            busy.add(pid)
        else:
            marker.unlink(missing_ok=True)
    return busy
