"""Make the README figure: a sample WMS tile beside its filtered PNGs (sobel_x, magnitude).

The panels are the central 320x320 pixels of the tutorial's 512x512 tile.

Starts the embedded MapServer, reads the tutorial's tile through GDAL's WMS driver as the
service does, filters it, and writes data/figures/tutorial_tile.png.
Usage: python -m data.make_figure
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import rasterio

from devtools import embedded_wms
from wps_app.core import filters, wms, writers
from wps_app.core.types import BBox

HERE = Path(__file__).resolve().parent
LAT, LON = 45.55425883140662, -73.49350601434709
GAP = 8


def main() -> Path:
    with tempfile.TemporaryDirectory() as rundir:
        server = embedded_wms.start(rundir=Path(rundir))
        try:
            source = wms.WmsSource(server.url)
            bbox = BBox.around(LAT, LON, 0.0005)
            tile = wms.read_with_halo(source, "sample_city", bbox, 512, 512)
        finally:
            server.stop()
    crop = np.s_[96:416, 96:416]  # the central 320x320 pixels keep the figure small
    panels = [tile.data[:3, 1:-1, 1:-1][(slice(None), *crop)]]
    for method in ("sobel_x", "sobel_magnitude"):
        grey = writers.png_levels(filters.filter_bands(tile.data, method), method, "signed")[0]
        panels.append(np.stack([grey[crop]] * 3))
    gap = np.full((3, 320, GAP), 255, dtype=np.uint8)
    image = np.concatenate([p if i == 0 else np.concatenate([gap, p], axis=2)
                            for i, p in enumerate(panels)], axis=2)
    path = HERE / "figures" / "tutorial_tile.png"
    path.parent.mkdir(exist_ok=True)
    with rasterio.open(path, "w", driver="PNG", width=image.shape[2], height=image.shape[1],
                       count=3, dtype="uint8", zlevel=9) as dst:
        dst.write(image)
    path.with_name(path.name + ".aux.xml").unlink(missing_ok=True)
    return path


if __name__ == "__main__":
    print(main())
