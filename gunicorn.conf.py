"""gunicorn settings every way of starting the service uses (make run, the container, the
tests' servers, the benchmarks): they pass `-c gunicorn.conf.py` (gunicorn also reads
./gunicorn.conf.py from its working directory); command-line flags (a bind address, a
worker count) override these.

Sync workers behind the nginx front (deploy/nginx.conf.in): nginx buffers requests and
responses, so a slow client never holds a worker; a worker runs one request at a time,
which is what bounds sync Executes. The worker model stays sync: a sync Execute's time
limit ([jobs] sync_max_runtime) is a SIGALRM delivered to the worker's main thread
(wps_app/wps/deadline.py), which gthread workers cannot give each request, and GDAL's
blocking HTTP reads would never yield to an event loop (gevent, eventlet).

Workers: twice the cores by default. A 512 x 512 Execute spends about half its time
waiting on the WMS: against a remote WMS, as many workers as cores leave the cores idle
meanwhile. On loopback the WMS uses those cores, and bench/workers.py found no count
(2, 3, 4, 6 on 2 cores) clearly ahead within its noise (bench/NOTES.md). Capped at 8 (a
worker holds about 140 MiB); WPS_WORKERS overrides.

The hooks below give the instance its run folder (wps_app.instance: prometheus_client's
multiprocess files for /metrics, the draining flag, busy workers) and make SIGTERM drain
it (wps_app.ops.gunicorn_drain).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

# the repository, whatever the working directory gunicorn was started from
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wps_app import instance  # noqa: E402
from wps_app.ops import gunicorn_drain  # noqa: E402
from wps_app.settings import load_settings  # noqa: E402

_settings = load_settings()

wsgi_app = "wps_app.app:application"
bind = os.environ.get("WPS_BIND", "127.0.0.1:5001")
workers = int(os.environ.get("WPS_WORKERS", min(8, 2 * len(os.sched_getaffinity(0)))))
worker_class = "sync"
# Above [jobs] sync_max_runtime, which ends a sync Execute with an ExceptionReport first.
timeout = int(os.environ.get("WPS_GUNICORN_TIMEOUT", "300"))
# A sync request in flight at SIGTERM is answered before its worker is killed.
graceful_timeout = gunicorn_drain.graceful_timeout(_settings.sync_max_runtime_s)
control_socket_disable = True  # no gunicornc control socket in the working directory

_temporary_rundir: list[Path] = []  # the run folder made here (removed on exit)


def on_starting(server):
    """The instance's run folder: $EDGE_WPS_RUNDIR, or a temporary one; emptied of an
    earlier run's counts and flags, and exported to the workers."""
    given = os.environ.get(instance.RUNDIR_ENV)
    if given:
        folder = Path(given)
    else:
        folder = Path(tempfile.mkdtemp(prefix="edge-wps-"))
        _temporary_rundir.append(folder)
    instance.prepare(folder)


def when_ready(server):
    gunicorn_drain.install(server, _settings.drain_s)


def pre_request(worker, req):
    folder = instance.rundir()
    if folder is not None:
        instance.mark_busy(folder, worker.pid, req.path)


def post_request(worker, req, environ, resp):
    folder = instance.rundir()
    if folder is not None:
        instance.mark_idle(folder, worker.pid)


def child_exit(server, worker):
    """A worker ended: its live gauges go (prometheus_client), its busy marker too."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    folder = instance.rundir()
    if folder is not None:
        instance.mark_idle(folder, worker.pid)


def on_exit(server):
    for folder in _temporary_rundir:
        shutil.rmtree(folder, ignore_errors=True)
