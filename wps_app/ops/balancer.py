"""HAProxy before the instances (deploy/haproxy.cfg.in): render its configuration, start
and stop it. HAProxy runs in the foreground (-db) in its own session, as our process with
our file, never as the system's service.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from wps_app.ops.processes import stop_group

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg.in"
_ADDRESS = re.compile(r"[A-Za-z0-9.:\[\]-]+:\d{1,5}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
# HAProxy's health checks of each instance's /health (deploy/haproxy.cfg.in)
CHECK_INTER_S = 1  # between checks
CHECK_FALL = 2  # failed checks in a row: out of rotation
CHECK_RISE = 2  # passed checks in a row: back in rotation
CHECK_TIMEOUT_S = 5  # a check unanswered this long failed (a busy sync worker is slow)


def detection_s() -> int:
    """The longest HAProxy may take (seconds) to take out an instance whose /health
    started failing: `fall` checks, each up to its timeout, `inter` apart, plus the wait
    for the first. An instance's [server] drain_s must be above it."""
    return CHECK_INTER_S + CHECK_FALL * (CHECK_INTER_S + CHECK_TIMEOUT_S)


@dataclass(frozen=True)
class BalancerOptions:
    """Where HAProxy listens and the instances' fronts it balances over."""

    listen: str  # "127.0.0.1:5000"
    servers: tuple[tuple[str, str], ...]  # (name, "127.0.0.1:5101") per instance front
    rundir: Path


def render(options: BalancerOptions) -> str:
    """The HAProxy configuration for `options` (values are ours, checked, never a
    client's)."""
    if not _ADDRESS.fullmatch(options.listen):
        raise ValueError(f"not an address: {options.listen!r}")
    lines = []
    for name, address in options.servers:
        if not _NAME.fullmatch(name) or not _ADDRESS.fullmatch(address):
            raise ValueError(f"bad server {name!r} {address!r}")
        lines.append(f"    server {name} {address} check")
    rundir = str(options.rundir)
    if any(c in rundir for c in " #\n\\"):
        raise ValueError(f"run folder may not hold spaces or '#': {rundir!r}")
    values = {"@RUNDIR@": rundir, "@LISTEN@": options.listen,
              "@SERVERS@": "\n".join(lines), "@INTER_S@": str(CHECK_INTER_S),
              "@FALL@": str(CHECK_FALL), "@RISE@": str(CHECK_RISE),
              "@CHECK_TIMEOUT_S@": str(CHECK_TIMEOUT_S)}
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def server_states(rundir: Path) -> dict[str, str]:
    """Server name -> HAProxy's status of it ("UP", "DOWN", "UP 1/2", ...) in the
    instances backend, from the stats socket in `rundir`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stats:
        stats.settimeout(5)
        stats.connect(str(rundir / "haproxy.sock"))
        stats.sendall(b"show stat\n")
        chunks = []
        while chunk := stats.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    states = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "instances" and row.get("svname") not in (
                None, "FRONTEND", "BACKEND"):
            states[row["svname"]] = row.get("status", "")
    return states


def wait_until_up(rundir: Path, name: str, timeout_s: float = 60.0) -> None:
    """Return once HAProxy (its stats socket in `rundir`) has server `name` UP, i.e. in
    rotation; TimeoutError after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    state = "?"
    while time.monotonic() < deadline:
        state = server_states(rundir).get(name, "?")
        if state == "UP":
            return
        pause.wait(0.2)
    raise TimeoutError(f"HAProxy still has {name} {state} after {timeout_s:.0f} s")


def start(options: BalancerOptions) -> subprocess.Popen:
    """Write the configuration into options.rundir, check it, and start HAProxy in the
    foreground in its own session (callers probe it)."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        raise RuntimeError("haproxy not found: install Debian's haproxy package")
    options.rundir.mkdir(parents=True, exist_ok=True)
    config = options.rundir / "haproxy.cfg"
    config.write_text(render(options))
    subprocess.run([haproxy, "-c", "-q", "-f", str(config)], check=True)
    log = open(options.rundir / "haproxy.log", "ab")
    return subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=log,
                            start_new_session=True)


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop HAProxy (SIGTERM: immediate stop; SIGUSR1 would be its soft stop)."""
    stop_group(process, timeout_s)


def main(argv: list[str] | None = None) -> int:
    """python -m wps_app.ops.balancer --listen 0.0.0.0:5000 --server NAME=HOST:PORT ...
    (the container's HAProxy, docker-compose.yml profile `cluster`); stops on SIGTERM."""
    import argparse
    import signal
    import sys
    import threading

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5000")
    parser.add_argument("--server", action="append", default=[],
                        help="NAME=HOST:PORT of an instance's front (repeat)")
    parser.add_argument("--rundir", type=Path, default=Path("var") / "haproxy")
    args = parser.parse_args(argv)
    servers = tuple(tuple(item.split("=", 1)) for item in args.server)
    if not servers or any(len(server) != 2 for server in servers):
        parser.error("give each instance as --server NAME=HOST:PORT")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    process = start(BalancerOptions(args.listen, servers, args.rundir.resolve()))
    try:
        while not stopping.wait(1.0):
            if process.poll() is not None:
                print("haproxy exited", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    raise SystemExit(main())
