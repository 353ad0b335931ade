"""Draw data/figures/qgis_plugin.png: what a QGIS user sees after running the edge filter
from the Processing toolbox — the styled result over the sample WMS.

Run by the QGIS Python (Debian: /usr/bin/python3), headless, against a running service and
its sample WMS (`make run`):

    /usr/bin/python3 qgis_plugin/make_figure.py \\
        --wps http://127.0.0.1:5000/wps --wms http://127.0.0.1:8081/wms

The plugin is registered from this folder (WpsProvider()), the process runs through
processing.runAndLoadResults (as the toolbox runs it, so the result is styled on loading),
and the map is rendered as a canvas would render it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "data" / "figures" / "qgis_plugin.png"
# The result: a window of the sample raster around the PyWPS tutorial's point, at the
# sample's own resolution (data/make_sample.py: 2**-20 degree pixels from -73.4955, 45.556).
SAMPLE_WEST, SAMPLE_NORTH, SAMPLE_PIXEL = -73.4955, 45.556, 2.0**-20
RESULT_WINDOW = (1845, 1657, 504, 336)  # column, row, width, height
MAP_MARGIN = 0.45  # of the result's width and height, on each side: WMS context
MAP_SIZE = (960, 640)  # about one map pixel per result pixel


def result_bbox() -> tuple[float, float, float, float]:
    """(west, south, east, north) of RESULT_WINDOW, EPSG:4326 degrees."""
    col, row, width, height = RESULT_WINDOW
    return (SAMPLE_WEST + col * SAMPLE_PIXEL, SAMPLE_NORTH - (row + height) * SAMPLE_PIXEL,
            SAMPLE_WEST + (col + width) * SAMPLE_PIXEL, SAMPLE_NORTH - row * SAMPLE_PIXEL)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wps", default="http://127.0.0.1:5000/wps")
    parser.add_argument("--wms", default="http://127.0.0.1:8081/wms")
    parser.add_argument("--layer", default="sample_city")
    parser.add_argument("--method", default="sobel_magnitude")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    os.environ["WPS_PROCESSING_URLS"] = args.wps
    sys.path[:0] = [str(HERE), "/usr/share/qgis/python/plugins"]

    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        return draw(args)
    finally:
        app.exitQgis()


def draw(args: argparse.Namespace) -> Path:
    import processing
    from processing.core.Processing import Processing
    from qgis.core import (
        QgsApplication,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsProject,
        QgsRasterLayer,
        QgsRectangle,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor
    from wps_processing.provider import WpsProvider

    Processing.initialize()
    provider = WpsProvider()  # keep a reference: Processing holds only the C++ object
    QgsApplication.processingRegistry().addProvider(provider)
    project = QgsProject.instance()
    west, south, east, north = result_bbox()
    result = processing.runAndLoadResults("wps:get_raster_process", {
        "wms": args.layer, "method": args.method,
        "bbox": f"{west!r},{east!r},{south!r},{north!r} [EPSG:4326]",
        "width": RESULT_WINDOW[2], "height": RESULT_WINDOW[3],
        "geotiff": os.path.join(tempfile.mkdtemp(), f"{args.method}.tif"),
    })
    (layer,) = [layer for layer in project.mapLayers().values()
                if layer.source() == result["geotiff"]]
    wms = QgsRasterLayer(f"crs=EPSG:4326&format=image/png&layers={args.layer}&styles="
                         f"&url={args.wms}", "sample WMS", "wms")
    if not wms.isValid():
        raise SystemExit(f"the WMS layer is not valid: {wms.error().summary()}")
    settings = QgsMapSettings()
    settings.setLayers([layer, wms])  # the result on top
    settings.setDestinationCrs(layer.crs())
    dx, dy = (east - west) * MAP_MARGIN, (north - south) * MAP_MARGIN
    settings.setExtent(QgsRectangle(west - dx, south - dy, east + dx, north + dy))
    settings.setOutputSize(QSize(*MAP_SIZE))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not job.renderedImage().save(str(args.out), "PNG", 0):
        raise SystemExit(f"cannot write {args.out}")
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
