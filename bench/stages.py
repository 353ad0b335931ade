"""Where the time of one 512x512 Execute goes, stage by stage, on each kind of data.

Sends sequential Executes (the tutorial's raw PNG request, then a raw GeoTIFF, at a new
point each) to a one-worker gunicorn and reads each job's stage timings from the service's
log (means; end to end is the median). The GetMap the service sends (514 x 514 with the
halo, in the format it reads) is timed alone in the same run, to split "WMS read" into the
server's time and GDAL's (open, decode); the floor is that GetMap plus the least encode
work for the output asked.

Usage: python -m bench.stages [--requests 40] [--layers sample_city,...]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

import requests

from bench.e2e import LAYERS, execute
from devtools import loadgen
from wps_app.core import wms
from wps_app.core.types import BBox

OUTPUTS = {"png": ("image", "image/png"), "geotiff": ("geotiff", "image/tiff")}


def service_getmap_s(session: requests.Session, url: str, layer: str, lat: float,
                     lon: float, image_format: str) -> float:
    """Seconds for the GetMap the service sends for this point (WMS 1.3.0, halo)."""
    halo = wms.grown_by_one_pixel(BBox.around(lat, lon, 0.0005), 512, 512)
    west, south, east, north = halo.bounds
    started = time.perf_counter()
    answer = session.get(url, params={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": layer,
        "STYLES": "", "CRS": "EPSG:4326", "BBOX": f"{south!r},{west!r},{north!r},{east!r}",
        "WIDTH": 514, "HEIGHT": 514, "FORMAT": image_format, "TRANSPARENT": "TRUE"},
        timeout=60)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200 and answer.content[:4] in (b"\x89PNG", b"II*\x00")
    return elapsed


def run_layer(wms_url: str, wps_url: str, log_path, layer: str, count: int,
              first_index: int) -> dict:
    """Median ms per stage for raw PNG and raw GeoTIFF requests on `layer`."""
    image_format = wms.LayerCatalog(wms.WmsSource(wms_url), fetch=wms.fetch_capabilities)
    image_format.refresh()
    image_format = image_format.image_format()
    session = requests.Session()
    found = {}
    for output, (identifier, mime) in OUTPUTS.items():
        latencies, getmaps = [], []
        log_before = len(log_path.read_text().splitlines())
        for i in range(count + 5):
            lat, lon = loadgen.point(first_index + i)
            started = time.perf_counter()
            answer = session.post(wps_url, data=execute(lat, lon, identifier, mime, layer),
                                  headers={"Content-Type": "text/xml"}, timeout=60)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200, answer.content[:300]
            getmap = service_getmap_s(session, wms_url, layer, lat, lon, image_format)
            if i >= 5:
                latencies.append(elapsed)
                getmaps.append(getmap)
        first_index += count + 5
        deadline = time.monotonic() + 10
        while True:  # the last job's log line may still be on its way
            lines = log_path.read_text().splitlines()[log_before:]
            jobs = [dict((k, float(v)) for k, v in re.findall(r"(\w+)_s=([\d.]+)", line))
                    for line in lines if "outcome=succeeded" in line]
            if len(jobs) >= count + 5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        jobs = jobs[5:]

        def med(key: str, jobs: list[dict] = jobs) -> float:
            # the log rounds each figure to the millisecond: the mean of many is finer
            # than their median
            return statistics.fmean(job.get(key, 0.0) for job in jobs) * 1000

        found[output] = {
            "latency": statistics.median(latencies) * 1000,
            "getmap": statistics.median(getmaps) * 1000,
            **{key: med(key) for key in ("duration", "read", "luminance", "filter",
                                         "geotiff", "png")},
        }
    found["format"] = image_format
    return found


def report(layer: str, found: dict) -> str:
    png, tif = found["png"], found["geotiff"]

    def rows(f: dict) -> list[float]:
        encode = f["png"] + f["geotiff"]
        return [f["latency"] - f["duration"], f["getmap"], f["read"] - f["getmap"],
                f["luminance"], f["filter"], f["png"], f["geotiff"],
                f["duration"] - f["read"] - f["luminance"] - f["filter"] - encode]

    names = ["request handling and response (HTTP, PyWPS, validation)",
             f"WMS GetMap alone (MapServer and transfer, {found['format']} 514x514)",
             "GDAL WMS driver (open, decode, copy)", "luminance",
             "filter (scipy.ndimage, float32)", "PNG encode", "GeoTIFF encode (DEFLATE)",
             "job bookkeeping (status updates, logging)"]
    lines = [f"**{layer}**: {LAYERS.get(layer, layer)}", "",
             "| stage | raw PNG ms | share | raw GeoTIFF ms | share |", "|---|---|---|---|---|"]
    for name, a, b in zip(names, rows(png), rows(tif), strict=True):
        lines.append(f"| {name} | {a:.1f} | {a / png['latency']:.0%} | {b:.1f} | "
                     f"{b / tif['latency']:.0%} |")
    lines.append(f"| **end to end (p50)** | **{png['latency']:.1f}** | 100% | "
                 f"**{tif['latency']:.1f}** | 100% |")
    floor_png, floor_tif = png["getmap"] + png["png"], tif["getmap"] + tif["geotiff"]
    lines.append(f"| floor: GetMap alone + the one encode | {floor_png:.1f} | "
                 f"{floor_png / png['latency']:.0%} | {floor_tif:.1f} | "
                 f"{floor_tif / tif['latency']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args(argv)
    reports = []
    with loadgen.services("wps-stages-", 1, {"logging": {"level": "INFO"}}) as (wms_, wps, tmp):
        log_path = tmp / "wps" / "gunicorn.log"
        for position, layer in enumerate(args.layers.split(",")):
            found = run_layer(wms_.url, wps.url, log_path, layer, args.requests,
                              position * 2 * (args.requests + 5))
            reports.append(report(layer, found))
    print("\n\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
