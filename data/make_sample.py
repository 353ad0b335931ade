"""Generate the sample raster that the embedded MapServer publishes.

The raster is synthetic (made here from a fixed random seed, so there is no licence to
track): a map-like RGB scene of blocks, rotated streets, a river and parks, with a gentle
texture, covering the tutorial's point (lat 45.554, lon -73.4935) in EPSG:4326.
Its pixel size is 2**-20 degree (about 0.1 m north-south), finer than the tutorial's
0.0005 degree / 512 pixel tiles, so every requested tile shows sharp edges.

Usage: python data/make_sample.py [OUTPUT_DIR]   (default: data/generated)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

PIXEL_DEG = 2.0**-20
SIZE = 4096
# Upper-left corner: the tutorial's point (45.55426, -73.49351) sits near the centre.
WEST = -73.4955
NORTH = 45.5560
SEED = 20261125
FILE_NAME = "sample_city.tif"


def _streets(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Boolean mask of two families of streets, rotated by 20 degrees."""
    angle = np.deg2rad(20.0)
    u = cols * np.cos(angle) + rows * np.sin(angle)
    v = -cols * np.sin(angle) + rows * np.cos(angle)
    return (np.mod(u, 300.0) < 14.0) | (np.mod(v, 420.0) < 18.0)


def make_scene(size: int = SIZE, seed: int = SEED) -> np.ndarray:
    """Return a (3, size, size) uint8 RGB scene; row 0 is the northern edge."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    scene = np.empty((3, size, size), dtype=np.float32)
    # Ground: a gentle brightness ramp with large soft patches (parks, fields).
    patches = np.sin(cols / 377.0) * np.cos(rows / 291.0)
    scene[0] = 120 + 30 * patches + cols / size * 20
    scene[1] = 135 + 45 * patches + rows / size * 15
    scene[2] = 100 + 20 * patches

    for _ in range(900):  # buildings: flat-coloured rectangles of varied size and tone
        height, width = rng.integers(12, 90, size=2)
        top, left = rng.integers(0, size - 90, size=2)
        colour = rng.integers(40, 250, size=3)
        scene[:, top : top + height, left : left + width] = colour[:, None, None]

    streets = _streets(rows, cols)
    scene[:, streets] = np.array([205.0, 205.0, 200.0])[:, None]

    river_centre = size * 0.7 + 180 * np.sin(cols / 450.0)
    river = np.abs(rows - river_centre) < 40
    scene[0][river], scene[1][river], scene[2][river] = 40.0, 80.0, 150.0

    # Gentle texture (not per-pixel noise, which no WMS tile of a real map has and
    # which would make every PNG and GeoTIFF incompressible).
    scene += (3.0 * np.sin(rows / 7.0) * np.cos(cols / 11.0)).astype(np.float32)
    return np.clip(np.rint(scene), 0, 255).astype(np.uint8)


def profile(size: int = SIZE) -> dict:
    """The GeoTIFF profile of every generated layer: EPSG:4326, 2^-20 degree pixels from
    the sample's corner, tiled, uncompressed (MapServer reads it without inflating tiles on
    every GetMap)."""
    return {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": from_origin(WEST, NORTH, PIXEL_DEG, PIXEL_DEG),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "photometric": "RGB",
    }


def write_sample(out_dir: Path) -> Path:
    """Write the sample GeoTIFF (EPSG:4326, tiled) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    tmp = path.with_suffix(".tif.part")
    with rasterio.open(tmp, "w", **profile()) as dst:
        dst.write(make_scene())
    tmp.replace(path)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "generated"
    print(write_sample(target))
