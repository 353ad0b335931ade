"""gunicorn settings every way of starting the service uses (make run, the container, the
tests' servers, the benchmarks): gunicorn reads ./gunicorn.conf.py from its working
directory; command-line flags (a bind address, a worker count) override these.

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
"""

import os

wsgi_app = "wps_app.app:application"
bind = os.environ.get("WPS_BIND", "127.0.0.1:5001")
workers = int(os.environ.get("WPS_WORKERS", min(8, 2 * len(os.sched_getaffinity(0)))))
worker_class = "sync"
# Above [jobs] sync_max_runtime, which ends a sync Execute with an ExceptionReport first.
timeout = int(os.environ.get("WPS_GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
control_socket_disable = True  # no gunicornc control socket in the working directory
