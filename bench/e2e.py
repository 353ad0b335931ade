"""End-to-end Execute latency and throughput: this service against the tutorial's.

Starts the embedded MapServer (FastCGI), this service and the tutorial baseline (stock
PyWPS) under the same gunicorn settings, then, at 1, 2 and 4 requests in flight and
alternating the services round by round, sends 512x512 Executes at a new point each time:
this service returning the PNG (it also writes the GeoTIFF), this service returning the
GeoTIFF, the baseline returning its PNG; and GetMap alone against the WMS.

Usage: python -m bench.e2e [--rounds 3] [--per-round 30] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devtools import embedded_wms, loadgen
from devtools.embedded_wms import free_port
from devtools.servers import start_wps
from wps_app.settings import REPO_ROOT

SIZE = 512
HALF = 0.0005 / 2


def start_tutorial(directory: Path, wms_url: str, workers: int) -> tuple[subprocess.Popen, str]:
    """The tutorial baseline under gunicorn with the same settings as this service."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TUTORIAL_WMS_URL=wms_url, HOME=str(directory))
    env.pop("PYWPS_CFG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.tutorial.wps:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
         "--no-control-socket", "--chdir", str(REPO_ROOT)],
        env=env, stdout=open(directory / "gunicorn.log", "ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/wps"
    for _ in range(300):
        try:
            if requests.get(url, params={"service": "WPS", "request": "GetCapabilities"},
                            timeout=5).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("tutorial baseline did not start")


def literal(identifier: str, value) -> str:
    return (f"<wps:Input><ows:Identifier>{identifier}</ows:Identifier><wps:Data>"
            f"<wps:LiteralData>{value}</wps:LiteralData></wps:Data></wps:Input>")


def execute(lat: float, lon: float, output: str, mime: str) -> bytes:
    inputs = "".join(literal(k, v) for k, v in (("wms", "sample_city"), ("lat", repr(lat)),
                                               ("lon", repr(lon)), ("method", "sobel_x")))
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
        f"<ows:Identifier>get_raster_process</ows:Identifier><wps:DataInputs>{inputs}"
        f'</wps:DataInputs><wps:ResponseForm><wps:RawDataOutput mimeType="{mime}">'
        f"<ows:Identifier>{output}</ows:Identifier></wps:RawDataOutput></wps:ResponseForm>"
        "</wps:Execute>").encode()


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def one_request(kind: str, url: str, index: int, session: requests.Session) -> float:
    lat, lon = loadgen.point(index % 1600)
    started = time.perf_counter()
    if kind == "wms":
        answer = session.get(url, params={
            "SERVICE": "WMS", "VERSION": "1.1.1", "REQUEST": "GetMap", "LAYERS": "sample_city",
            "STYLES": "", "SRS": "EPSG:4326", "BBOX": f"{lon - HALF},{lat - HALF},"
            f"{lon + HALF},{lat + HALF}", "WIDTH": SIZE, "HEIGHT": SIZE, "FORMAT": "image/png"},
            timeout=60)
        expected = b"\x89PNG"
    else:
        output, mime = {"ours_png": ("image", "image/png"), "ours_tif": ("geotiff", "image/tiff"),
                        "tutorial": ("image", "image/png")}[kind]
        answer = session.post(url, data=execute(lat, lon, output, mime),
                              headers={"Content-Type": "text/xml"}, timeout=60)
        expected = b"\x89PNG" if mime == "image/png" else b"II*\x00"
    elapsed = time.perf_counter() - started
    if answer.status_code != 200 or not answer.content.startswith(expected):
        raise RuntimeError(f"{kind} failed: {answer.status_code} {answer.content[:200]!r}")
    return elapsed


def batch(kind: str, url: str, count: int, in_flight: int, counter: Counter):
    sessions = [requests.Session() for _ in range(in_flight)]
    indices = [counter.next() for _ in range(count)]
    started = time.perf_counter()
    def send(position: int) -> float:
        return one_request(kind, url, indices[position], sessions[position % in_flight])

    with ThreadPoolExecutor(in_flight) as pool:
        latencies = list(pool.map(send, range(count)))
    return latencies, time.perf_counter() - started


def measure(urls: dict[str, str], rounds: int, per_round: int, levels=(1, 2, 4)) -> dict:
    counter = Counter()
    for kind, url in urls.items():  # warm every worker of every service
        batch(kind, url, 16, 4, counter)
    results = {}
    for in_flight in levels:
        lat = {k: [] for k in urls}
        wall = {k: 0.0 for k in urls}
        for _ in range(rounds):
            for kind, url in urls.items():
                latencies, seconds = batch(kind, url, per_round, in_flight, counter)
                lat[kind] += latencies
                wall[kind] += seconds
        for kind in urls:
            values = sorted(lat[kind])
            results[(kind, in_flight)] = {
                "p50_ms": statistics.median(values) * 1000,
                "p95_ms": values[int(0.95 * (len(values) - 1))] * 1000,
                "rps": len(values) / wall[kind],
            }
    return results


def report(results: dict) -> str:
    lines = ["| in flight | service | p50 ms | p95 ms | req/s |", "|---|---|---|---|---|"]
    names = {"ours_png": "this service, PNG (+GeoTIFF written)",
             "ours_tif": "this service, GeoTIFF (+PNG written)",
             "tutorial": "tutorial baseline, clipped PNG", "wms": "WMS GetMap alone"}
    for (kind, level), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"| {level} | {names[kind]} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{r['rps']:.1f} |")
    lines.append("")
    lines.append("| in flight | throughput ours PNG / tutorial | p50 tutorial / ours PNG |")
    lines.append("|---|---|---|")
    for level in sorted({lv for _, lv in results}):
        ours, base = results[("ours_png", level)], results[("tutorial", level)]
        lines.append(f"| {level} | {ours['rps'] / base['rps']:.2f}x | "
                     f"{base['p50_ms'] / ours['p50_ms']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wps-bench-") as tmp:
        wms = embedded_wms.start(rundir=Path(tmp) / "wms")
        ours = start_wps(Path(tmp) / "ours", wms.url, workers=args.workers,
                         overrides={"logging": {"level": "WARNING"}})
        tutorial, tutorial_url = start_tutorial(Path(tmp) / "tutorial", wms.url, args.workers)
        try:
            results = measure({"ours_png": ours.url, "ours_tif": ours.url,
                               "tutorial": tutorial_url, "wms": wms.url},
                              args.rounds, args.per_round)
        finally:
            os.killpg(tutorial.pid, signal.SIGTERM)
            ours.stop()
            wms.stop()
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
