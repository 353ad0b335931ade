"""`make run`: the sample WMS (MapServer under lighttpd) and the service behind its nginx
front, on loopback; Ctrl-C stops everything it started.

Command line: python -m devtools.run [--port 5000] [--wms-port 8081]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from devtools import embedded_wms
from wps_app.ops import serve
from wps_app.settings import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--wms-port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--rundir", type=Path, default=REPO_ROOT / "var",
                        help="where the WMS and the front keep their runtime files")
    args = parser.parse_args(argv)
    for port, variable in ((args.port, "WPS_PORT"), (args.wms_port, "WMS_PORT")):
        if not _free(port):  # say so plainly, before anything starts
            print(f"port {port} on 127.0.0.1 is in use: choose another, e.g. make run "
                  f"{variable}={port + 600} (README, \"Other ports\")", file=sys.stderr)
            return 2
    wms = embedded_wms.start(args.wms_port, args.rundir / "wms")
    print(f"sample WMS: {wms.url}", flush=True)
    base = f"http://127.0.0.1:{args.port}"
    os.environ.update({"WPS_WMS_URL": wms.url, "WPS_SERVER_URL": f"{base}/wps",
                       "WPS_SERVER_OUTPUTURL": f"{base}/outputs/"})
    try:
        return serve.main(["--listen", f"127.0.0.1:{args.port}",
                           "--app", f"127.0.0.1:{embedded_wms.free_port()}",
                           "--rundir", str(args.rundir / "front"),
                           *(["--workers", str(args.workers)] if args.workers else [])])
    finally:
        wms.stop()


def _free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
