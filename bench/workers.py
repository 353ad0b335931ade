"""The gunicorn worker count for this I/O + CPU mix: the service now under 2, 3, 4 and 6
sync workers, alternated round by round, the tutorial's raw PNG request at 4 and 8 in
flight, on the map-like and the photo-like data.

Sync workers are the model (gunicorn.conf.py): a sync Execute's time limit is a SIGALRM
in the worker's main thread (wps_app/wps/deadline.py), which threaded workers cannot give
each request, and GDAL's blocking HTTP reads would not yield to an event loop (gevent).
What is left to choose is how many.

Usage: python -m bench.workers [--counts 2,3,4,6] [--rounds 3] [--per-round 24]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.variants import QUIET, measure, report
from devtools import embedded_wms
from devtools.servers import start_wps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,3,4,6")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=24)
    parser.add_argument("--layers", default="sample_city,sample_photo")
    parser.add_argument("--levels", default="4,8")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wps-workers-") as tmp_name:
        tmp = Path(tmp_name)
        wms = embedded_wms.start(rundir=tmp / "wms")
        servers = {}
        try:
            for count in args.counts.split(","):
                servers[f"{count} sync workers"] = start_wps(tmp / f"s{count}", wms.url,
                                                             int(count), QUIET)
            reports = []
            for level in (int(v) for v in args.levels.split(",")):
                for position, layer in enumerate(args.layers.split(",")):
                    results = measure({n: s.url for n, s in servers.items()},
                                      {n: s.process.pid for n, s in servers.items()},
                                      wms.process.pid, layer, args.rounds, args.per_round,
                                      level, 1000 * position, kinds=("png",))
                    reports.append(f"{level} in flight, " + report(layer, results,
                                                                  list(servers), ("png",)))
            print("\n\n".join(reports))
        finally:
            for server in servers.values():
                server.stop()
            wms.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
