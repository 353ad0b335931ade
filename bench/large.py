"""Peak resident memory of the largest request: 16384 x 16384 pixels by reference.

Starts MapServer and a one-worker gunicorn, sends one Execute (both outputs by
reference), and reads the worker's peak RSS (VmHWM) before and after.
Usage: python -m bench.large [--size 16384]
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import rasterio
import requests
from lxml import etree

from bench import loadgen

PIXEL_DEG = 2.0**-20  # the sample raster's pixel: the request reads it at full resolution


def execute(size: int) -> bytes:
    half = size * PIXEL_DEG / 2
    lat, lon = 45.5540469, -73.4935469
    inputs = "".join(
        f"<wps:Input><ows:Identifier>{k}</ows:Identifier><wps:Data><wps:LiteralData>{v}"
        "</wps:LiteralData></wps:Data></wps:Input>"
        for k, v in (("wms", "sample_city"), ("width", size), ("height", size),
                     ("method", "sobel_magnitude")))
    bbox = (f'<wps:Input><ows:Identifier>bbox</ows:Identifier><wps:Data><wps:BoundingBoxData '
            f'crs="EPSG:4326"><ows:LowerCorner>{lat - half} {lon - half}</ows:LowerCorner>'
            f"<ows:UpperCorner>{lat + half} {lon + half}</ows:UpperCorner>"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    args = parser.parse_args(argv)
    with loadgen.services("wps-large-", 1, {"logging": {"level": "INFO"}}) as (_, wps, tmp):
        worker = loadgen.worker_pids(wps.process.pid)[0]
        before = loadgen.snapshot(wps.process.pid)
        started = time.perf_counter()
        answer = requests.post(wps.url, data=execute(args.size),
                               headers={"Content-Type": "text/xml"}, timeout=900)
        seconds = time.perf_counter() - started
        after = loadgen.snapshot(wps.process.pid)
        doc = etree.fromstring(answer.content)
        refs = [r.get("href") for r in doc.iterfind(".//{*}Reference")]
        ok = b"ProcessSucceeded" in answer.content and len(refs) == 2
        sizes = {}
        for ref in refs:
            name = ref.rsplit("/", 1)[1]
            path = next((tmp / "wps" / "outputs").glob(f"*/{name}"))
            sizes[name] = path.stat().st_size
            with rasterio.open(path) as ds:
                ok = ok and ds.shape == (args.size, args.size) and ds.crs.to_epsg() == 4326
        peak = after.peak_kib[worker] / 1024
        print(f"request {args.size}x{args.size}: {seconds:.1f} s, succeeded: {ok}")
        print(f"worker peak RSS: before {before.peak_kib[worker] / 1024:.0f} MiB, "
              f"after {peak:.0f} MiB (limit 1536 MiB)")
        print("outputs: " + ", ".join(f"{n} {s / 2**20:.1f} MiB" for n, s in sizes.items()))
        log = (tmp / "wps" / "gunicorn.log").read_text()
        stages = dict(re.findall(r"(\w+)_s=([\d.]+)", log.split("outcome=succeeded")[-1]
                                 .splitlines()[0]))
        print("job stages (s): " + ", ".join(f"{k} {float(v):.1f}" for k, v in stages.items()))
        print(f"filter share of end-to-end time: {float(stages['filter']) / seconds:.1%}")
    return 0 if ok and peak < 1536 else 1


if __name__ == "__main__":
    sys.exit(main())
