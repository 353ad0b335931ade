"""What each change of the performance work is worth, and that it changed no pixel.

Runs, against one embedded MapServer, the service as it was before the work (a git
worktree of `--before`, by default the commit before it), the service now but reading its
GetMaps in PNG ([wms] image_format = image/png: only the outputs-asked change), and the
service now (TIFF GetMaps, only the outputs asked written); optionally the service now
with other sync worker counts. Alternating round by round at 4 in flight on each kind of
data, it sends the tutorial's raw PNG request, a raw GeoTIFF request and a
ResponseDocument asking both by reference (everything written, as before).

First, for a few points per kind of data, the raw PNG and raw GeoTIFF of before and now
are decoded and compared: pixels, transform and CRS must be equal.

Usage: python -m bench.variants [--before REV] [--rounds 3] [--per-round 24]
       [--workers 4] [--worker-counts 2,6]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
import requests

from bench.cpu import session_cpu_s
from bench.e2e import LAYERS, execute, literal
from devtools import embedded_wms, loadgen
from devtools.servers import start_wps
from wps_app.settings import REPO_ROOT

BEFORE = "3b65a52"  # main before issue 16's work
QUIET = {"logging": {"level": "WARNING"}}


def both_by_reference(lat: float, lon: float, layer: str) -> bytes:
    inputs = "".join(literal(k, v) for k, v in (("wms", layer), ("lat", repr(lat)),
                                               ("lon", repr(lon)), ("method", "sobel_x")))
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
        f"<ows:Identifier>get_raster_process</ows:Identifier><wps:DataInputs>{inputs}"
        "</wps:DataInputs><wps:ResponseForm><wps:ResponseDocument>"
        '<wps:Output asReference="true"><ows:Identifier>image</ows:Identifier></wps:Output>'
        '<wps:Output asReference="true"><ows:Identifier>geotiff</ows:Identifier></wps:Output>'
        "</wps:ResponseDocument></wps:ResponseForm></wps:Execute>").encode()


def body(request: str, lat: float, lon: float, layer: str, method: str = "sobel_x") -> bytes:
    if request == "png":
        return execute(lat, lon, "image", "image/png", layer, method)
    if request == "geotiff":
        return execute(lat, lon, "geotiff", "image/tiff", layer, method)
    return both_by_reference(lat, lon, layer)


def send(session: requests.Session, url: str, request: str, index: int, layer: str) -> float:
    lat, lon = loadgen.point(index % 1600)
    started = time.perf_counter()
    answer = session.post(url, data=body(request, lat, lon, layer),
                          headers={"Content-Type": "text/xml"}, timeout=60)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200 or b"ExceptionReport" in answer.content[:500]:
        raise RuntimeError(f"{request} failed: {answer.status_code} {answer.content[:300]!r}")
    return elapsed


def decoded(content: bytes):
    with rasterio.open(io.BytesIO(content)) as dataset:
        return dataset.read(), dataset.transform, dataset.crs


def identical_outputs(before_url: str, now_url: str, layers, points: int = 4) -> list[str]:
    """For each layer, point, method and raw output: 'ok' or what differs."""
    import warnings

    found = []
    session = requests.Session()
    for layer in layers:
        for i in range(points):
            lat, lon = loadgen.point(97 * i + 13)
            lat, lon = lat + 1.234567e-6, lon - 7.654321e-7  # off the source grid
            for method in ("sobel_x", "prewitt_magnitude"):
                for request in ("png", "geotiff"):
                    answers = [session.post(url, data=body(request, lat, lon, layer, method),
                                            headers={"Content-Type": "text/xml"}, timeout=60)
                               for url in (before_url, now_url)]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        (a, ta, ca), (b, tb, cb) = (decoded(x.content) for x in answers)
                    same = a.shape == b.shape and np.array_equal(a, b, equal_nan=True) \
                        and ta == tb and ca == cb
                    found.append("ok" if same else f"{layer} {lat},{lon} {method} {request}")
    return found


def measure(urls: dict[str, str], sessions: dict[str, int], wms_session: int, layer: str,
            rounds: int, per_round: int, in_flight: int, first_index: int,
            kinds: tuple[str, ...] = ("png", "geotiff", "both")) -> dict:
    """Per (variant, request): req/s, p50 ms, CPU ms per request (service, MapServer)."""
    index = first_index
    clients = [requests.Session() for _ in range(in_flight)]
    samples: dict = {}

    def run(url: str, request: str, first: int, count: int) -> list[float]:
        with ThreadPoolExecutor(in_flight) as pool:
            return list(pool.map(lambda k: send(clients[k % in_flight], url, request,
                                                first + k, layer), range(count)))

    for url in urls.values():  # warm-up
        for request in kinds:
            run(url, request, index, 8)
            index += 8
    for _ in range(rounds):
        for request in kinds:
            for name, url in urls.items():
                cpu0 = (session_cpu_s(sessions[name]), session_cpu_s(wms_session))
                started = time.perf_counter()
                latencies = run(url, request, index, per_round)
                wall = time.perf_counter() - started
                cpu1 = (session_cpu_s(sessions[name]), session_cpu_s(wms_session))
                index += per_round
                entry = samples.setdefault((name, request), {"lat": [], "wall": 0.0,
                                                             "cpu": [0.0, 0.0], "rps": []})
                entry["lat"] += latencies
                entry["wall"] += wall
                entry["rps"].append(per_round / wall)
                entry["cpu"][0] += cpu1[0] - cpu0[0]
                entry["cpu"][1] += cpu1[1] - cpu0[1]
    return {key: {"rps": len(e["lat"]) / e["wall"], "rps_min": min(e["rps"]),
                  "rps_max": max(e["rps"]), "p50": statistics.median(e["lat"]) * 1000,
                  "cpu_service": e["cpu"][0] / len(e["lat"]) * 1000,
                  "cpu_wms": e["cpu"][1] / len(e["lat"]) * 1000}
            for key, e in samples.items()}


def report(layer: str, results: dict, names: list[str],
           kinds: tuple[str, ...] = ("png", "geotiff", "both")) -> str:
    base = names[0]
    lines = [f"**{layer}**: {LAYERS.get(layer, layer)}", "",
             "| variant | request | req/s (rounds' range) | vs the first | p50 ms | "
             "CPU ms/req service + MapServer |", "|---|---|---|---|---|---|"]
    for request in kinds:
        for name in names:
            r = results[(name, request)]
            ratio = r["rps"] / results[(base, request)]["rps"]
            lines.append(f"| {name} | {request} | {r['rps']:.1f} ({r['rps_min']:.1f}-"
                         f"{r['rps_max']:.1f}) | {ratio:.2f}x | {r['p50']:.1f} | "
                         f"{r['cpu_service']:.1f} + {r['cpu_wms']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=24)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--worker-counts", default="",
                        help="extra variants: the service now with these sync worker counts")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args(argv)
    layers = args.layers.split(",")
    with tempfile.TemporaryDirectory(prefix="wps-variants-") as tmp_name:
        tmp = Path(tmp_name)
        worktree = tmp / "before"
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach",
                        str(worktree), args.before], check=True, capture_output=True)
        wms = embedded_wms.start(rundir=tmp / "wms")
        servers = {}
        try:
            servers["before"] = start_wps(tmp / "s-before", wms.url, args.workers, QUIET,
                                          root=worktree)
            servers["now, PNG GetMaps"] = start_wps(
                tmp / "s-png", wms.url, args.workers,
                {**QUIET, "wms": {"image_format": "image/png"}})
            servers["now"] = start_wps(tmp / "s-now", wms.url, args.workers, QUIET)
            for count in filter(None, args.worker_counts.split(",")):
                servers[f"now, {count} sync workers"] = start_wps(
                    tmp / f"s-{count}", wms.url, int(count), QUIET)
            names = list(servers)
            checks = identical_outputs(servers["before"].url, servers["now"].url, layers)
            differing = [c for c in checks if c != "ok"]
            print(f"outputs of before and now (raw PNG and raw GeoTIFF, decoded pixels, "
                  f"transform, CRS): {len(checks) - len(differing)} of {len(checks)} "
                  "identical" + "".join(f"\n- differs: {d}" for d in differing) + "\n")
            reports = []
            for position, layer in enumerate(layers):
                results = measure({n: s.url for n, s in servers.items()},
                                  {n: s.process.pid for n, s in servers.items()},
                                  wms.process.pid, layer, args.rounds, args.per_round,
                                  args.in_flight, position * 2000)
                reports.append(report(layer, results, names))
            print("\n\n".join(reports))
        finally:
            for server in servers.values():
                server.stop()
            wms.stop()
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force",
                            str(worktree)], capture_output=True)
    return 0 if not differing else 1


if __name__ == "__main__":
    sys.exit(main())
