"""Talk to a running `make cluster` (devtools.cluster): a Unix socket, `control.sock` in
its run folder, takes one JSON line per connection and answers one.

    {"restart": N}  ->  {"instance": N, "pid": PID}   (the new gunicorn master)
                    or  {"error": "..."}

Only the cluster's own user can connect (the socket is 0600, in the run folder). The
answer comes once the instance is back in HAProxy's rotation, so a caller restarting
instances one after the other never has two out at once.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

SOCKET_NAME = "control.sock"
MAX_PATH = 100  # sockaddr_un's sun_path is 108 bytes on Linux


def socket_path(rundir: Path) -> Path:
    """The control socket of the cluster running in `rundir`."""
    path = rundir.resolve() / SOCKET_NAME
    if len(str(path).encode()) > MAX_PATH:
        raise ValueError(f"run folder path too long for a Unix socket: {path}")
    return path


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            request = json.loads(self.rfile.readline(4096) or b"{}")
            number = request["restart"]
            if not isinstance(number, int):
                raise ValueError("restart: an instance number")
            answer = {"instance": number, "pid": self.server.restart(number)}
        except Exception as exc:  # noqa: BLE001 - the caller is told, the cluster goes on
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, restart: Callable[[int], int]) -> None:
        self.restart = restart
        super().__init__(str(path), _Handler)


def serve(rundir: Path, restart: Callable[[int], int]) -> Callable[[], None]:
    """Serve the control socket of the cluster in `rundir` on a daemon thread, calling
    `restart(number) -> pid` per request; returns the function that stops it."""
    path = socket_path(rundir)
    path.unlink(missing_ok=True)
    old_mask = os.umask(0o177)  # the socket is created 0600
    try:
        server = _Server(path, restart)
    finally:
        os.umask(old_mask)
    threading.Thread(target=server.serve_forever, daemon=True,
                     name="cluster-control").start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        path.unlink(missing_ok=True)

    return stop


def restart(rundir: Path, number: int, timeout_s: float = 300.0) -> int:
    """Ask the cluster running in `rundir` to restart instance `number`; the new gunicorn
    master's pid once it is back. RuntimeError with the cluster's reason when it failed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
        control.settimeout(timeout_s)
        control.connect(str(socket_path(rundir)))
        control.sendall(json.dumps({"restart": number}).encode() + b"\n")
        answer = json.loads(control.makefile("rb").readline() or b"{}")
    if "pid" not in answer:
        raise RuntimeError(answer.get("error", "no answer from the cluster"))
    return int(answer["pid"])
