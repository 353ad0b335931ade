"""Large requests: the filter's share of end-to-end time, and peak resident memory.

Starts MapServer and a one-worker gunicorn and sends one Execute per size and method
(both outputs by reference, each over the whole sample raster). The stages
come from the job's log line: "filter" is the scipy.ndimage passes (and the magnitude's
sqrt), "luminance" the RGB to grey conversion before them, as in bench/stages.py.
The worker's peak RSS (VmHWM) is read after each request, largest request first, so the
first figure is the largest request's own peak.
Usage: python -m bench.large [--sizes 16384 4096 512] [--methods sobel_x sobel_magnitude]
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import rasterio
import requests
from lxml import etree

from data import make_sample
from devtools import loadgen

# Every request covers the whole sample raster (4096 x 4096 pixels), so each size reads
# real data everywhere: 16384 x 16384 is a 4x upsampling by MapServer, 512 x 512 an 8x
# downsampling. (A request past the sample's edge would be mostly transparent, NaN, and
# flatter the read and write times.)
SOUTH = make_sample.NORTH - make_sample.SIZE * make_sample.PIXEL_DEG
EAST = make_sample.WEST + make_sample.SIZE * make_sample.PIXEL_DEG


def execute(size: int, method: str) -> bytes:
    inputs = "".join(
        f"<wps:Input><ows:Identifier>{k}</ows:Identifier><wps:Data><wps:LiteralData>{v}"
        "</wps:LiteralData></wps:Data></wps:Input>"
        for k, v in (("wms", "sample_city"), ("width", size), ("height", size),
                     ("method", method)))
    bbox = (f'<wps:Input><ows:Identifier>bbox</ows:Identifier><wps:Data><wps:BoundingBoxData '
            f'crs="EPSG:4326"><ows:LowerCorner>{SOUTH!r} {make_sample.WEST!r}</ows:LowerCorner>'
            f"<ows:UpperCorner>{make_sample.NORTH!r} {EAST!r}</ows:UpperCorner>"
            "</wps:BoundingBoxData></wps:Data></wps:Input>")
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
        "<ows:Identifier>get_raster_process</ows:Identifier>"
        f"<wps:DataInputs>{inputs}{bbox}</wps:DataInputs><wps:ResponseForm>"
        '<wps:ResponseDocument><wps:Output asReference="true"><ows:Identifier>image'
        '</ows:Identifier></wps:Output><wps:Output asReference="true"><ows:Identifier>geotiff'
        "</ows:Identifier></wps:Output></wps:ResponseDocument></wps:ResponseForm>"
        "</wps:Execute>").encode()


def run_one(wps, tmp, size: int, method: str) -> tuple[bool, float, dict[str, float]]:
    """One Execute; (outputs checked, seconds, job stages in seconds)."""
    log = tmp / "wps" / "gunicorn.log"
    log_start = log.stat().st_size
    started = time.perf_counter()
    answer = requests.post(wps.url, data=execute(size, method),
                           headers={"Content-Type": "text/xml"}, timeout=900)
    seconds = time.perf_counter() - started
    doc = etree.fromstring(answer.content)
    refs = [r.get("href") for r in doc.iterfind(".//{*}Reference")]
    ok = b"ProcessSucceeded" in answer.content and len(refs) == 2
    for ref in refs:
        name = ref.rsplit("/", 1)[1]
        path = next((tmp / "wps" / "outputs").glob(f"*/{name}"))
        with rasterio.open(path) as ds:
            ok = ok and ds.shape == (size, size) and ds.crs.to_epsg() == 4326
        path.unlink()
    with open(log, "rb") as stream:
        stream.seek(log_start)
        line = next(ln for ln in stream.read().decode().splitlines() if "outcome=" in ln)
    stages = {k: float(v) for k, v in re.findall(r"(\w+)_s=([\d.]+)", line)}
    return ok, seconds, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16384, 4096, 512])
    parser.add_argument("--methods", nargs="+", default=["sobel_x", "sobel_magnitude"])
    args = parser.parse_args(argv)
    all_ok = True
    with loadgen.services("wps-large-", 1, {"logging": {"level": "INFO"}}) as (_, wps, tmp):
        worker = loadgen.worker_pids(wps.process.pid)[0]
        before = loadgen.snapshot(wps.process.pid).peak_kib[worker] / 1024
        print(f"worker peak RSS before any request: {before:.0f} MiB")
        print()
        print("| size | method | end to end s | read s | luminance s | filter s | write s "
              "| filter share | luminance + filter share | worker peak RSS MiB "
              "| outputs checked |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        largest_peak = 0.0
        for size in sorted(args.sizes, reverse=True):
            for method in args.methods:
                ok, seconds, stages = run_one(wps, tmp, size, method)
                peak = loadgen.snapshot(wps.process.pid).peak_kib[worker] / 1024
                largest_peak = largest_peak or peak
                write = stages.get("write", stages.get("geotiff", 0) + stages.get("png", 0))
                lum, filt = stages["luminance"], stages["filter"]
                print(f"| {size}x{size} | {method} | {seconds:.2f} | {stages['read']:.2f} "
                      f"| {lum:.3f} | {filt:.3f} | {write:.2f} | {filt / seconds:.1%} "
                      f"| {(lum + filt) / seconds:.1%} | {peak:.0f} | {ok} |")
                all_ok = all_ok and ok
        print()
        print(f"peak RSS of the largest request: {largest_peak:.0f} MiB (limit 1536 MiB)")
    return 0 if all_ok and largest_peak < 1536 else 1


if __name__ == "__main__":
    sys.exit(main())
