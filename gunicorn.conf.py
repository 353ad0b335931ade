"""gunicorn settings every way of starting the service uses (make run, the container, the
tests' servers, the benchmarks): gunicorn reads ./gunicorn.conf.py from its working
directory; command-line flags (a bind address, a worker count) override these.

Sync workers behind the nginx front (deploy/nginx.conf.in): nginx buffers requests and
responses, so a slow client never holds a worker; a worker runs one request at a time,
which is what bounds sync Executes.
"""

import os

wsgi_app = "wps_app.app:application"
bind = os.environ.get("WPS_BIND", "127.0.0.1:5001")
workers = int(os.environ.get("WPS_WORKERS", "2"))
worker_class = "sync"
# Above [jobs] sync_max_runtime, which ends a sync Execute with an ExceptionReport first.
timeout = int(os.environ.get("WPS_GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
control_socket_disable = True  # no gunicornc control socket in the working directory
