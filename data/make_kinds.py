"""Generate the benchmark's two other kinds of data, on the sample's grid.

- `sample_photo.tif`: photo-like, a smooth aerial scene (soft fields and shading at several
  scales) with per-pixel texture (sensor-like noise, sigma about 6 grey levels), so no two
  neighbouring pixels are alike and every PNG or GeoTIFF of it compresses badly;
- `sample_flat.tif`: a flat map, a handful of flat-coloured regions with curved borders
  (a smooth field quantised to a small palette), so most of every tile is uniform.

Both are synthetic (fixed seeds, this project's own code, no third-party licence), RGB,
EPSG:4326, on exactly the grid of data/make_sample.py (4096 x 4096 pixels of 2^-20 degree
from the same corner), so the same points serve all three layers of data/sample.map.

Usage: python data/make_kinds.py [OUTPUT_DIR]   (default: data/generated)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data.make_sample import SIZE, profile  # noqa: E402

PHOTO_FILE = "sample_photo.tif"
FLAT_FILE = "sample_flat.tif"
PHOTO_SEED = 20261126
FLAT_SEED = 20261127
# a muted map palette: land, water, park, built-up, sand, road-grey
PALETTE = np.array([[238, 232, 213], [170, 211, 223], [200, 226, 178], [222, 208, 200],
                    [245, 233, 180], [215, 215, 215]], dtype=np.uint8)


def _smooth(rng: np.random.Generator, coarse: int, size: int) -> np.ndarray:
    """A smooth (size, size) float32 field in about -1..1: coarse x coarse random values
    interpolated by cubic splines."""
    seed = rng.standard_normal((coarse, coarse)).astype(np.float32)
    field = ndimage.zoom(seed, size / coarse, order=3, mode="mirror", grid_mode=True)
    return field[:size, :size]


def make_photo(size: int = SIZE, seed: int = PHOTO_SEED) -> np.ndarray:
    """Return a (3, size, size) uint8 RGB photo-like scene; row 0 is the northern edge."""
    rng = np.random.default_rng(seed)
    light = 0.6 * _smooth(rng, 8, size) + 0.3 * _smooth(rng, 32, size) \
        + 0.15 * _smooth(rng, 128, size)
    tint = _smooth(rng, 16, size)
    scene = np.empty((3, size, size), dtype=np.float32)
    scene[0] = 110 + 45 * light + 12 * tint
    scene[1] = 120 + 50 * light - 8 * tint
    scene[2] = 95 + 35 * light
    # per-pixel texture, partly shared between bands as a camera's luminance noise is
    grain = rng.standard_normal((size, size), dtype=np.float32)
    for band in range(3):
        scene[band] += 5.0 * grain + 3.0 * rng.standard_normal((size, size), dtype=np.float32)
    return np.clip(np.rint(scene), 0, 255).astype(np.uint8)


def make_flat(size: int = SIZE, seed: int = FLAT_SEED) -> np.ndarray:
    """Return a (3, size, size) uint8 RGB flat map; row 0 is the northern edge."""
    rng = np.random.default_rng(seed)
    field = _smooth(rng, 6, size) + 0.25 * _smooth(rng, 24, size)
    edges = np.quantile(field[::16, ::16], np.linspace(0, 1, len(PALETTE) + 1)[1:-1])
    classes = np.digitize(field, edges).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(PALETTE[classes], -1, 0))


def write(out_dir: Path, name: str, scene: np.ndarray) -> Path:
    """Write `scene` as a GeoTIFF on the sample's grid (see make_sample.profile)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = path.with_suffix(".tif.part")
    with rasterio.open(tmp, "w", **profile(scene.shape[-1])) as dst:
        dst.write(scene)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "generated"
    print(write(target, PHOTO_FILE, make_photo()))
    print(write(target, FLAT_FILE, make_flat()))
