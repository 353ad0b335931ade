"""A stand-in for the WMS in in-process tests: the pipeline's OpenGrid over a local GeoTIFF.

The raster is read onto the requested EPSG:4326 grid by a rasterio WarpedVRT (nearest
neighbour, so a grid aligned with the raster's pixels gets them exactly), with an alpha
band that is 0 outside the raster, as MapServer's transparent GetMap is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "generated" / "sample_city.tif"


def local_grid(path: Path = SAMPLE, reads: list[tuple[int, int]] | None = None):
    """An OpenGrid over `path`; each read_rows(first, end) is appended to `reads`."""

    @contextmanager
    def open_grid(bbox, width: int, height: int) -> Iterator:
        with rasterio.open(path) as source, WarpedVRT(
            source, crs="EPSG:4326", transform=from_bounds(*bbox.bounds, width, height),
            width=width, height=height, resampling=Resampling.nearest, add_alpha=True,
        ) as vrt:

            def read_rows(first: int, end: int) -> np.ndarray:
                if reads is not None:
                    reads.append((first, end))
                return vrt.read(window=Window(0, first, width, end - first))

            yield read_rows

    return open_grid
