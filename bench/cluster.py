"""Throughput through HAProxy with 1 and 2 API instances (`make cluster`'s topology).

Each configuration is a fresh cluster (devtools.cluster: HAProxy, PostgreSQL, a Dask
scheduler and one worker, the embedded MapServer), each instance one gunicorn sync worker
behind its nginx front, so the instance count is the only difference. The load: sync
512x512 Executes (raw PNG), each at a new point, `--in-flight` at a time, after a warm-up;
rounds alternate 1, 2, 1, 2 instances and the ratio is taken from the best round of each.

What this can show on one host: that HAProxy spreads the load and adds little per request.
What it cannot: scaling across hosts. The machine's cores are shared by MapServer, both
instances, nginx, HAProxy and the load generator, so 2 instances on 2 cores cannot double
the throughput; the ratio is bounded by the CPU left over, not by the design.

Command line: python -m bench.cluster [--requests 60] [--in-flight 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devtools.cluster import start_cluster

CENTRE_LAT, CENTRE_LON = 45.554, -73.4935
STEP_DEG = 0.00003


def _execute(url: str, index: int) -> float:
    lat = CENTRE_LAT + (index % 40) * STEP_DEG  # a 40 x 40 grid inside the sample raster
    lon = CENTRE_LON + (index // 40 % 40) * STEP_DEG
    started = time.perf_counter()
    answer = requests.get(url, params={
        "service": "WPS", "version": "1.0.0", "request": "Execute",
        "identifier": "get_raster_process",
        "DataInputs": f"wms=sample_city;lat={lat:.6f};lon={lon:.6f}",
        "RawDataOutput": "image@mimeType=image/png"}, timeout=120)
    if answer.status_code != 200 or not answer.content.startswith(b"\x89PNG"):
        raise RuntimeError(f"request {index}: HTTP {answer.status_code}")
    return time.perf_counter() - started


def measure(instances: int, requests_n: int, in_flight: int, first: int) -> float:
    """Requests per second through HAProxy over `instances` instances."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = start_cluster(Path(tmp), instances=instances, workers=1,
                                gunicorn_workers=1)
        try:
            with ThreadPoolExecutor(in_flight) as pool:
                list(pool.map(lambda i: _execute(cluster.url, i),
                              range(1500, 1500 + 2 * in_flight)))
                started = time.perf_counter()
                list(pool.map(lambda i: _execute(cluster.url, i),
                              range(first, first + requests_n)))
                return requests_n / (time.perf_counter() - started)
        finally:
            cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    best = {1: 0.0, 2: 0.0}
    print("| round | instances | requests/s |\n|---|---|---|")
    for round_ in range(args.rounds):
        for instances in (1, 2):
            rate = measure(instances, args.requests, args.in_flight,
                           first=(round_ * 2 + instances) * args.requests)
            best[instances] = max(best[instances], rate)
            print(f"| {round_ + 1} | {instances} | {rate:.1f} |", flush=True)
    print(f"\n2 instances / 1 instance (best rounds): {best[2] / best[1]:.2f} "
          f"({args.requests} sync 512x512 Executes, {args.in_flight} in flight, through "
          "HAProxy; each instance one gunicorn sync worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
