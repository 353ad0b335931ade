"""Where the time of one 512x512 Execute goes, stage by stage.

Sends sequential Executes (raw PNG, at a new point each) to a one-worker gunicorn and
reads each job's stage timings from the service's log; GetMap alone is timed directly in
the same run to split "WMS read" into server time and decoding.

Usage: python -m bench.stages [--requests 40]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

import requests

from bench.e2e import execute, one_request
from devtools import loadgen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    with loadgen.services("wps-stages-", 1, {"logging": {"level": "INFO"}}) as (wms, wps, tmp):
        session = requests.Session()
        latencies, getmaps = [], []
        for i in range(args.requests + 5):
            lat, lon = loadgen.point(i)
            started = time.perf_counter()
            answer = session.post(wps.url, data=execute(lat, lon, "image", "image/png"),
                                  headers={"Content-Type": "text/xml"}, timeout=60)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200
            getmap = one_request("wms", wms.url, i, session)
            if i >= 5:
                latencies.append(elapsed)
                getmaps.append(getmap)
        time.sleep(0.3)
        log = (tmp / "wps" / "gunicorn.log").read_text()
    jobs = [dict((k, float(v)) for k, v in re.findall(r"(\w+)_s=([\d.]+)", line))
            for line in log.splitlines() if "outcome=succeeded" in line][5:]

    def med(key: str) -> float:
        return statistics.median(job[key] for job in jobs) * 1000

    latency = statistics.median(latencies) * 1000
    getmap = statistics.median(getmaps) * 1000
    stages = [
        ("request handling and response (HTTP, PyWPS, validation, publishing)",
         latency - med("duration")),
        ("WMS GetMap (MapServer and transfer, timed alone)", getmap),
        ("decode and GDAL WMS driver", med("read") - getmap),
        ("luminance", med("luminance")),
        ("filter (scipy.ndimage, float32)", med("filter")),
        ("GeoTIFF encode (DEFLATE, predictor 3)", med("geotiff")),
        ("PNG encode", med("png")),
        ("job bookkeeping (status updates, logging)",
         med("duration") - sum(med(k) for k in ("read", "luminance", "filter", "geotiff",
                                                 "png"))),
    ]
    print("| stage | ms | share |")
    print("|---|---|---|")
    for name, ms in stages:
        print(f"| {name} | {ms:.1f} | {ms / latency:.0%} |")
    print(f"| **end to end (p50)** | **{latency:.1f}** | 100% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
