"""Run by Debian's /usr/bin/python3 (QGIS's Python bindings are not in the venv):
load each raster given on the command line in a headless QGIS and print, as JSON, whether
it is a valid layer, its CRS and its extent.

Usage: /usr/bin/python3 qgis_check.py PATH_OR_VSICURL...
"""

import json
import sys

from qgis.core import QgsApplication, QgsRasterLayer


def describe(source):
    layer = QgsRasterLayer(source, "checked", "gdal")
    extent = layer.extent()
    return {
        "source": source,
        "valid": layer.isValid(),
        "crs": layer.crs().authid(),
        "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        "size": [layer.width(), layer.height()],
    }


def main(sources):
    app = QgsApplication([], False)
    app.initQgis()
    try:
        print(json.dumps([describe(s) for s in sources]))
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1:])
