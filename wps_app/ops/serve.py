"""Run the service: gunicorn (gunicorn.conf.py) behind the nginx front, plus the retention
cleanup; stop all of it on Ctrl-C or SIGTERM (gunicorn drains first, then nginx stops).

Command line (what `make run` and the container run):
    python -m wps_app.ops.serve [--listen 127.0.0.1:5000] [--app 127.0.0.1:5001]
                                [--workers 2] [--cleanup-every 600] [--rundir var/front]
                                [--trusted-balancer ADDRESS ...]

--trusted-balancer: the address (or network) of a load balancer before this front, whose
X-Forwarded-For the front believes (FrontOptions.trusted_balancers); none by default.

The URL is printed only once GetCapabilities answers through the front.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from wps_app import instance
from wps_app.ops import cleanup, front
from wps_app.ops.gunicorn_drain import graceful_timeout
from wps_app.ops.processes import stop_group, wait_until_answering
from wps_app.settings import REPO_ROOT, load_settings


def start_gunicorn(bind: str, workers: int | None = None, log: Path | None = None,
                   env: dict[str, str] | None = None) -> subprocess.Popen:
    """gunicorn serving the WPS with gunicorn.conf.py, in its own session (its run folder,
    $EDGE_WPS_RUNDIR, is the caller's or a temporary one: see wps_app.instance)."""
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py"),
               "--chdir", str(REPO_ROOT), "--bind", bind]
    if workers is not None:
        command += ["--workers", str(workers)]
    output = open(log, "ab") if log else None
    return subprocess.Popen(command, env=env, stdout=output, stderr=output,
                            start_new_session=True)


def stop_gunicorn(process: subprocess.Popen, timeout_s: float | None = None) -> None:
    """SIGTERM to the master (it drains: in-flight requests are answered, see
    wps_app.ops.gunicorn_drain), then SIGKILL after `timeout_s` seconds (default: what
    the drain may take, [server] drain_s plus twice gunicorn's graceful_timeout)."""
    if timeout_s is None:
        settings = load_settings()
        timeout_s = settings.drain_s + 2 * graceful_timeout(settings.sync_max_runtime_s) + 5
    stop_group(process, timeout_s, leader_only=True)


def _cleanup_loop(every_s: float, stop: threading.Event) -> None:
    settings = load_settings()
    while not stop.wait(every_s):
        cleanup.remove_expired(settings, settings.retention_hours * 3600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5000", help="the front's address")
    parser.add_argument("--app", default="127.0.0.1:5001", help="gunicorn's (loopback)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cleanup-every", type=float, default=600.0)
    parser.add_argument("--rundir", type=Path, default=REPO_ROOT / "var" / "front")
    parser.add_argument("--trusted-balancer", action="append", default=[],
                        help="a load balancer's address or network (repeat)")
    args = parser.parse_args(argv)
    stopping = threading.Event()

    def request_stop(*_args) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    args.rundir.mkdir(parents=True, exist_ok=True)
    # gunicorn listens on loopback only, and trusts the front's X-Forwarded-* (one hop)
    env = dict(os.environ)
    env.setdefault("WPS_SERVER_TRUSTED_PROXIES", "127.0.0.1")
    env.setdefault(instance.RUNDIR_ENV, str((args.rundir / "instance").resolve()))
    app = start_gunicorn(args.app, args.workers, env=env)
    nginx = front.start(front.FrontOptions(listen=args.listen, upstream=args.app,
                                           rundir=args.rundir.resolve(),
                                           trusted_balancers=tuple(args.trusted_balancer)))
    cleaner = threading.Thread(target=_cleanup_loop, args=(args.cleanup_every, stopping),
                               daemon=True)
    cleaner.start()
    try:
        host = args.listen.replace("0.0.0.0", "127.0.0.1")
        wait_until_answering(f"http://{host}/wps?service=WPS&request=GetCapabilities",
                             [app, nginx])
        print(f"WPS: http://{host}/wps", flush=True)
        while not stopping.wait(1.0):
            if app.poll() is not None or nginx.poll() is not None:
                print("gunicorn or nginx exited; stopping", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        stopping.set()
        # gunicorn first: while it drains, /health answers 503 "draining" through the front
        stop_gunicorn(app)
        front.stop(nginx)


if __name__ == "__main__":
    sys.exit(main())
