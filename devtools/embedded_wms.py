"""Run the embedded sample WMS: MapServer under lighttpd's FastCGI on a loopback port.

`make run` and the test fixtures use this module; the WPS itself only ever sees the WMS
URL configured in pywps.cfg. MapServer as FastCGI answers a 512x512 GetMap in a few
milliseconds, against ~86 ms for a CGI spawned per request, so the service's own work is
what benchmarks measure.

Command line: python -m devtools.embedded_wms --port 8081 [--rundir var/wms]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from wps_app.ops.processes import stop_group, wait_until_answering

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAPFILE = REPO_ROOT / "data" / "sample.map"
WMS_PATH = "/wms"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()  # this process's picks: never given twice


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now, below the kernel's ephemeral range.

    The caller binds it later (a server started seconds after, HAProxy after a whole
    cluster): a port from the ephemeral range, which bind(0) would give, may meanwhile be
    taken as the local port of any outgoing connection, and the server then fails to
    start. Ports below the range are only ever taken by an explicit bind."""
    low, _ = _ephemeral_range()
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.randrange(10000, low) if low > 10000 else 0
        if port in _handed_out:  # given to a server of this process that may not listen yet
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            _handed_out.add(sock.getsockname()[1])
            return sock.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _lighttpd_conf(rundir: Path, port: int, mapserv: str, max_procs: int, bind: str) -> str:
    # The document root is an empty folder: lighttpd serves nothing but the FastCGI path,
    # never its own configuration or logs (they live in rundir).
    return f"""
server.document-root = "{rundir}/empty"
server.bind = "{bind}"
server.port = {port}
server.modules = ("mod_fastcgi")
server.errorlog = "{rundir}/lighttpd-error.log"
server.max-connections = 256
fastcgi.server = ( "{WMS_PATH}" => ((
    "socket" => "{rundir}/mapserv.sock",
    "bin-path" => "{mapserv}",
    "bin-environment" => ( "MAPSERVER_CONFIG_FILE" => "{rundir}/mapserver.conf" ),
    "min-procs" => {max_procs},
    "max-procs" => {max_procs},
    "check-local" => "disable"
)))
"""


def _mapserver_conf(mapfile: Path) -> str:
    return f"""CONFIG
  ENV
    MS_MAPFILE "{mapfile}"
    MS_MAP_NO_PATH "1"
    MS_ERRORFILE "stderr"
  END
END
"""


@dataclass
class EmbeddedWms:
    """A running lighttpd + MapServer pair; `url` is the WMS endpoint."""

    process: subprocess.Popen
    port: int
    rundir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WMS_PATH}"

    def stop(self) -> None:
        """Stop lighttpd and its MapServer FastCGI children: lighttpd leaves the children
        it spawned running, so the whole process group (its own session) is signalled."""
        stop_group(self.process, timeout_s=10)


def start(
    port: int | None = None,
    rundir: Path | None = None,
    mapfile: Path = DEFAULT_MAPFILE,
    max_procs: int = 4,
    timeout_s: float = 20.0,
    bind: str = "127.0.0.1",
) -> EmbeddedWms:
    """Start MapServer under lighttpd (on 127.0.0.1 unless `bind` says otherwise, as in a
    container) and wait until GetCapabilities answers.

    The sample raster must exist (data/make_sample.py). Raises RuntimeError when a
    binary is missing or the server does not come up within `timeout_s` seconds.
    """
    lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
    mapserv = shutil.which("mapserv") or "/usr/bin/mapserv"
    for binary in (lighttpd, mapserv):
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} not found: install lighttpd and cgi-mapserver")
    port = port or free_port()
    rundir = Path(rundir or REPO_ROOT / "var" / f"wms-{port}").resolve()
    (rundir / "empty").mkdir(parents=True, exist_ok=True)
    (rundir / "mapserver.conf").write_text(_mapserver_conf(Path(mapfile).resolve()))
    conf = rundir / "lighttpd.conf"
    conf.write_text(_lighttpd_conf(rundir, port, mapserv, max_procs, bind))
    process = subprocess.Popen(
        [lighttpd, "-D", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(rundir / "lighttpd-stderr.log", "ab"),
        start_new_session=True,
    )
    server = EmbeddedWms(process, port, rundir)
    try:
        wait_until_answering(f"{server.url}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities",
                             [process], timeout_s, accept=lambda body: b"WMS_Capabilities" in body)
    except RuntimeError as exc:
        server.stop()
        raise RuntimeError(f"embedded WMS on port {port}: {exc}; see {rundir}") from None
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--rundir", type=Path, default=None)
    parser.add_argument("--mapfile", type=Path, default=DEFAULT_MAPFILE)
    parser.add_argument("--bind", default="127.0.0.1", help="0.0.0.0 only inside a container")
    args = parser.parse_args(argv)
    server = start(args.port, args.rundir, args.mapfile, bind=args.bind)
    print(f"WMS ready at {server.url}", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.process.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:  # stop lighttpd here, not in the handler: it may interrupt process.wait()
        server.stop()
    return 0


def _exit_on_signal(*_args) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
