"""End-to-end Execute latency, throughput and CPU: this service against the tutorial's.

Starts the embedded MapServer (FastCGI), this service and the tutorial baseline (stock
PyWPS) under the same gunicorn settings, then for each kind of data (a layer of
data/sample.map: the map-like sample, the photo-like one, the flat map) and at 1, 4 and 8
requests in flight, alternating the services round by round, sends 512x512 Executes at a
new point each time: the tutorial's request (raw PNG) to both services, a raw GeoTIFF to
this one, and GetMap alone (the tutorial's PNG GetMap) to the WMS. The CPU seconds of each
batch are read from /proc for this service, the tutorial's and MapServer (see bench.cpu),
so each request's CPU is split between the service and the WMS that share the cores.

Usage: python -m bench.e2e [--rounds 3] [--per-round 30] [--workers 4] [--levels 1,4,8]
       [--layers sample_city,sample_photo,sample_flat]
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

from bench.cpu import session_cpu_s
from devtools import embedded_wms, loadgen
from devtools.embedded_wms import free_port
from devtools.servers import start_wps
from wps_app.settings import REPO_ROOT

SIZE = 512
HALF = 0.0005 / 2
LAYERS = {"sample_city": "map-like sample (data/make_sample.py)",
          "sample_photo": "photo-like, per-pixel texture (data/make_kinds.py)",
          "sample_flat": "flat map, large uniform areas (data/make_kinds.py)"}
NAMES = {"ours_png": "this service, raw PNG (the tutorial's request)",
         "ours_tif": "this service, raw GeoTIFF",
         "tutorial": "tutorial baseline, clipped PNG", "wms": "WMS GetMap alone (PNG)"}


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


def execute(lat: float, lon: float, output: str, mime: str, layer: str = "sample_city",
            method: str = "sobel_x") -> bytes:
    inputs = "".join(literal(k, v) for k, v in (("wms", layer), ("lat", repr(lat)),
                                               ("lon", repr(lon)), ("method", method)))
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
        f"<ows:Identifier>get_raster_process</ows:Identifier><wps:DataInputs>{inputs}"
        f'</wps:DataInputs><wps:ResponseForm><wps:RawDataOutput mimeType="{mime}">'
        f"<ows:Identifier>{output}</ows:Identifier></wps:RawDataOutput></wps:ResponseForm>"
        "</wps:Execute>").encode()


def getmap_params(lat: float, lon: float, layer: str) -> dict:
    """The tutorial's GetMap: 512 x 512 PNG of a 0.0005 degree square around the point."""
    return {"SERVICE": "WMS", "VERSION": "1.1.1", "REQUEST": "GetMap", "LAYERS": layer,
            "STYLES": "", "SRS": "EPSG:4326",
            "BBOX": f"{lon - HALF},{lat - HALF},{lon + HALF},{lat + HALF}",
            "WIDTH": SIZE, "HEIGHT": SIZE, "FORMAT": "image/png"}


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def one_request(kind: str, url: str, index: int, session: requests.Session,
                layer: str = "sample_city") -> float:
    lat, lon = loadgen.point(index % 1600)
    started = time.perf_counter()
    if kind == "wms":
        answer = session.get(url, params=getmap_params(lat, lon, layer), timeout=60)
        expected = b"\x89PNG"
    else:
        output, mime = {"ours_png": ("image", "image/png"), "ours_tif": ("geotiff", "image/tiff"),
                        "tutorial": ("image", "image/png")}[kind]
        answer = session.post(url, data=execute(lat, lon, output, mime, layer),
                              headers={"Content-Type": "text/xml"}, timeout=60)
        expected = b"\x89PNG" if mime == "image/png" else b"II*\x00"
    elapsed = time.perf_counter() - started
    if answer.status_code != 200 or not answer.content.startswith(expected):
        raise RuntimeError(f"{kind} failed: {answer.status_code} {answer.content[:200]!r}")
    return elapsed


def batch(kind: str, url: str, count: int, in_flight: int, counter: Counter,
          layer: str = "sample_city"):
    sessions = [requests.Session() for _ in range(in_flight)]
    indices = [counter.next() for _ in range(count)]
    started = time.perf_counter()

    def send(position: int) -> float:
        return one_request(kind, url, indices[position], sessions[position % in_flight], layer)

    with ThreadPoolExecutor(in_flight) as pool:
        latencies = list(pool.map(send, range(count)))
    return latencies, time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(urls: dict[str, str], sessions: dict[str, int], rounds: int, per_round: int,
            levels=(1, 4, 8), layer: str = "sample_city") -> dict:
    """Per (kind, in flight): p50/p95/p99 ms, req/s, the spread of req/s over rounds, and
    CPU ms per request of the service (its session) and of MapServer (session "wms").

    `urls` maps a kind to its URL, `sessions` a kind to its server's session id ("wms"
    names MapServer's)."""
    counter = Counter()
    for kind, url in urls.items():  # warm every worker of every service
        batch(kind, url, 16, 4, counter, layer)
    results = {}
    for in_flight in levels:
        lat = {k: [] for k in urls}
        wall = {k: 0.0 for k in urls}
        per_round_rps = {k: [] for k in urls}
        cpu = {k: [0.0, 0.0] for k in urls}
        for _ in range(rounds):
            for kind, url in urls.items():
                before = (session_cpu_s(sessions[kind]), session_cpu_s(sessions["wms"]))
                latencies, seconds = batch(kind, url, per_round, in_flight, counter, layer)
                after = (session_cpu_s(sessions[kind]), session_cpu_s(sessions["wms"]))
                lat[kind] += latencies
                wall[kind] += seconds
                per_round_rps[kind].append(per_round / seconds)
                if kind != "wms":
                    cpu[kind][0] += after[0] - before[0]
                cpu[kind][1] += after[1] - before[1]
        for kind in urls:
            values = lat[kind]
            results[(kind, in_flight)] = {
                "p50_ms": statistics.median(values) * 1000,
                "p95_ms": quantile(values, 0.95) * 1000,
                "p99_ms": quantile(values, 0.99) * 1000,
                "rps": len(values) / wall[kind],
                "rps_min": min(per_round_rps[kind]), "rps_max": max(per_round_rps[kind]),
                "cpu_service_ms": cpu[kind][0] / len(values) * 1000,
                "cpu_wms_ms": cpu[kind][1] / len(values) * 1000,
            }
    return results


def report(results: dict, layer: str) -> str:
    lines = [f"**{layer}**: {LAYERS.get(layer, layer)}", "",
             "| in flight | service | p50 ms | p95 ms | p99 ms | req/s (rounds' range) | "
             "CPU ms/req service | CPU ms/req MapServer |", "|---|---|---|---|---|---|---|---|"]
    for (kind, level), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        service_cpu = "" if kind == "wms" else f"{r['cpu_service_ms']:.1f}"
        lines.append(f"| {level} | {NAMES[kind]} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['rps']:.1f} ({r['rps_min']:.1f}-"
                     f"{r['rps_max']:.1f}) | {service_cpu} | {r['cpu_wms_ms']:.1f} |")
    lines += ["", "| in flight | throughput ours PNG / tutorial | p50 tutorial / ours PNG | "
              "p99 tutorial / ours PNG | CPU per request, tutorial / ours (service + MapServer) |",
              "|---|---|---|---|---|"]
    for level in sorted({lv for _, lv in results}):
        ours, base = results[("ours_png", level)], results[("tutorial", level)]
        cpu_ours = ours["cpu_service_ms"] + ours["cpu_wms_ms"]
        cpu_base = base["cpu_service_ms"] + base["cpu_wms_ms"]
        lines.append(f"| {level} | {ours['rps'] / base['rps']:.2f}x | "
                     f"{base['p50_ms'] / ours['p50_ms']:.2f}x | "
                     f"{base['p99_ms'] / ours['p99_ms']:.2f}x | {cpu_base / cpu_ours:.2f}x |")
    return "\n".join(lines)


def summary(by_layer: dict[str, dict]) -> str:
    """One line per kind of data: the targets' ratios at 4 in flight (throughput >= 1.6x,
    p50 >= 1.4x) and the figures at 8 in flight, this service's raw PNG against the
    tutorial's."""
    lines = ["| data | throughput at 4 in flight, ours / tutorial | p50 at 4, tutorial / ours |"
             " at 8: req/s ours vs tutorial | at 8: p99 ms ours vs tutorial |",
             "|---|---|---|---|---|"]
    for layer, results in by_layer.items():
        cells = [layer]
        if ("ours_png", 4) in results:
            ours, base = results[("ours_png", 4)], results[("tutorial", 4)]
            cells += [f"{ours['rps'] / base['rps']:.2f}x",
                      f"{base['p50_ms'] / ours['p50_ms']:.2f}x"]
        else:
            cells += ["-", "-"]
        if ("ours_png", 8) in results:
            ours, base = results[("ours_png", 8)], results[("tutorial", 8)]
            cells += [f"{ours['rps']:.1f} vs {base['rps']:.1f}",
                      f"{ours['p99_ms']:.0f} vs {base['p99_ms']:.0f}"]
        else:
            cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--levels", default="1,4,8")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args(argv)
    levels = tuple(int(v) for v in args.levels.split(","))
    with tempfile.TemporaryDirectory(prefix="wps-bench-") as tmp:
        wms = embedded_wms.start(rundir=Path(tmp) / "wms")
        ours = start_wps(Path(tmp) / "ours", wms.url, workers=args.workers,
                         overrides={"logging": {"level": "WARNING"}})
        tutorial, tutorial_url = start_tutorial(Path(tmp) / "tutorial", wms.url, args.workers)
        sessions = {"ours_png": ours.process.pid, "ours_tif": ours.process.pid,
                    "tutorial": tutorial.pid, "wms": wms.process.pid}
        reports, by_layer = [], {}
        try:
            for layer in args.layers.split(","):
                results = measure({"ours_png": ours.url, "ours_tif": ours.url,
                                   "tutorial": tutorial_url, "wms": wms.url}, sessions,
                                  args.rounds, args.per_round, levels, layer)
                by_layer[layer] = results
                reports.append(report(results, layer))
        finally:
            os.killpg(tutorial.pid, signal.SIGTERM)
            ours.stop()
            wms.stop()
    print(summary(by_layer))
    print()
    print("\n\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
