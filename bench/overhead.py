"""The service's own handling cost per Execute: everything but the WMS fetch and the raster
work, for this service's layer over PyWPS against stock PyWPS on the same request.

Both run a process with the same inputs and outputs whose handler skips the raster work
and hands back prepared outputs, so what is timed is request parsing, validation, job
bookkeeping, output publishing and response rendering. Each mode runs in its own Python
process (our layer patches PyWPS module-wide); requests go through the WSGI app in-process.

Usage: python -m bench.overhead [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FORMS = {
    "raw PNG": '<wps:RawDataOutput mimeType="image/png"><ows:Identifier>image'
               "</ows:Identifier></wps:RawDataOutput>",
    "both by reference": '<wps:ResponseDocument><wps:Output asReference="true">'
                         "<ows:Identifier>image</ows:Identifier></wps:Output>"
                         '<wps:Output asReference="true"><ows:Identifier>geotiff'
                         "</ows:Identifier></wps:Output></wps:ResponseDocument>",
}


def body(form: str, index: int) -> bytes:
    inputs = "".join(
        f"<wps:Input><ows:Identifier>{k}</ows:Identifier><wps:Data><wps:LiteralData>{v}"
        "</wps:LiteralData></wps:Data></wps:Input>"
        for k, v in (("wms", "sample_city"), ("lat", 45.554 + index * 1e-7), ("lon", -73.4935),
                     ("method", "sobel_x")))
    return ('<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
            'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
            f"<ows:Identifier>get_raster_process</ows:Identifier><wps:DataInputs>{inputs}"
            f"</wps:DataInputs><wps:ResponseForm>{form}</wps:ResponseForm>"
            "</wps:Execute>").encode()


def prepared_outputs(folder: Path) -> tuple[Path, Path]:
    """A 512x512 gradient GeoTIFF and PNG like the ones a request produces."""
    from rasterio.transform import from_bounds

    from wps_app.core import writers
    from wps_app.core.types import Raster

    rng = np.random.default_rng(1)
    data = rng.normal(0, 100, (512, 512)).astype(np.float32)
    gradient = Raster(data, from_bounds(-73.49375, 45.55375, -73.49325, 45.55425, 512, 512))
    tif = writers.write_geotiff(gradient, folder / "prepared.tif", {})
    png = writers.write_png(gradient, folder / "prepared.png", "sobel_x", "signed")[0]
    return tif, png


def run_mode(mode: str, wms_url: str, count: int) -> dict[str, float]:
    """Time `count` Executes of each form through the app of `mode` ('ours' or 'stock')."""
    from werkzeug.test import Client

    tmp = Path(tempfile.mkdtemp(prefix=f"overhead-{mode}-"))
    from devtools.servers import write_config

    os.environ["PYWPS_CFG"] = str(write_config(tmp, 5999, wms_url,
                                               {"logging": {"level": "WARNING"}}))
    tif, png = prepared_outputs(tmp)
    if mode == "ours":
        from processes.wps_get_raster import GetRasterProcess
        from wps_app.core.pipeline import TileResult
        from wps_app.web import app as app_module

        class Prepared(GetRasterProcess):
            def _handler(self, request, response):
                tile_request = self.tile_request(request.inputs)
                work = Path(self.workdir)
                files = [Path(shutil.copy(p, work / f"sobel_x{p.suffix}")) for p in (tif, png)]
                chosen = self._chosen(request, response)
                self._set_outputs(request, tile_request, TileResult(files[0], files[1], (), {}),
                                  chosen, self._publishes_chosen(request, chosen))
                return response

        app_module.get_processes = lambda runtime: [Prepared(runtime)]
        application = app_module.create_app()
    else:
        from pywps import Process, Service

        from processes import wpsio

        class Prepared(Process):
            def __init__(self):
                super().__init__(
                    self._handler, identifier="get_raster_process", title="t",
                    inputs=[wpsio.layer_input(["sample_city"], ""),
                            wpsio.degrees_input("lat", "Latitude"),
                            wpsio.degrees_input("lon", "Longitude"), wpsio.bbox_input(),
                            wpsio.size_input("width", 512, 16384),
                            wpsio.size_input("height", 512, 16384), wpsio.method_input(),
                            wpsio.stretch_input(), wpsio.cog_input()],
                    outputs=[wpsio.image_output(), wpsio.geotiff_output()],
                    store_supported=True, status_supported=True)

            def _handler(self, request, response):
                # outside the work folder, as the tutorial did: stock PyWPS deletes that
                # folder before it reads a raw output
                fixed = tmp / "images" / str(self.uuid)
                fixed.mkdir(parents=True)
                copies = [Path(shutil.copy(p, fixed / f"sobel_x{p.suffix}")) for p in (tif, png)]
                response.outputs["image"].file = str(copies[1])
                response.outputs["geotiff"].file = str(copies[0])
                return response

        application = Service([Prepared()], cfgfiles=[os.environ["PYWPS_CFG"]])
        for folder in ("outputs", "work"):
            (tmp / folder).mkdir(exist_ok=True)
    client = Client(application)
    timings = {}
    for name, form in FORMS.items():
        for i in range(10):  # warm up
            answer = client.post("/wps", data=body(form, i), content_type="text/xml")
            assert answer.status_code == 200, answer.data[:300]
        started = time.perf_counter()
        for i in range(count):
            client.post("/wps", data=body(form, 100 + i), content_type="text/xml")
        timings[name] = (time.perf_counter() - started) / count * 1000
    if mode == "ours":
        sys.path.insert(0, str(REPO / "tests" / "support"))  # the tests' schema checker
        from schemas.validate import validate

        doc = client.post("/wps", data=body(FORMS["both by reference"], 9999),
                          content_type="text/xml").data
        timings["schema errors"] = len(validate(doc))
    shutil.rmtree(tmp, ignore_errors=True)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--mode", choices=["ours", "stock"])
    parser.add_argument("--wms-url")
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.wms_url, args.requests)))
        return 0
    from devtools import embedded_wms

    with tempfile.TemporaryDirectory() as tmp:
        wms = embedded_wms.start(rundir=Path(tmp) / "wms")
        try:
            results = {}
            for mode in ("stock", "ours", "stock", "ours"):  # alternate, keep the second
                out = subprocess.run(
                    [sys.executable, "-m", "bench.overhead", "--mode", mode, "--wms-url",
                     wms.url, "--requests", str(args.requests)],
                    capture_output=True, text=True, cwd=REPO, check=True)
                results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            wms.stop()
    print("| request | stock PyWPS ms | this service ms | ratio |")
    print("|---|---|---|---|")
    for name in FORMS:
        stock, ours = results["stock"][name], results["ours"][name]
        print(f"| {name} | {stock:.2f} | {ours:.2f} | {ours / stock:.2f} |")
    print(f"\nschema errors in this service's response: {results['ours']['schema errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
