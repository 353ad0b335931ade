"""Reference values computed independently of the service: kernels and luminance by hand
(float64 numpy), and grids aligned with the sample raster read straight from data/."""

from __future__ import annotations

import numpy as np
from rasterio.windows import Window

TUTORIAL = {
    "sobel_x": [-1, 0, 1, -2, 0, 2, -1, 0, 1],
    "sobel_y": [-1, -2, -1, 0, 0, 0, 1, 2, 1],
    "prewitt_x": [-1, 0, 1, -1, 0, 1, -1, 0, 1],
    "prewitt_y": [-1, -1, -1, 0, 0, 0, 1, 1, 1],
}


def expected_kernel(method: str) -> np.ndarray:
    k = np.array(TUTORIAL[method], dtype=np.float64).reshape(3, 3)
    return k[::-1] if method.endswith("_y") else k


def correlate_by_hand(lum_with_halo: np.ndarray, k: np.ndarray) -> np.ndarray:
    """out[r, c] = sum k[i, j] * lum[r + i, c + j] over a one-pixel halo, in float64."""
    rows, cols = lum_with_halo.shape[0] - 2, lum_with_halo.shape[1] - 2
    out = np.zeros((rows, cols))
    for i in range(3):
        for j in range(3):
            out += k[i, j] * lum_with_halo[i : i + rows, j : j + cols]
    return out


def luminance_by_hand(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (band.astype(np.float64) for band in rgb[:3])
    return 0.299 * r + 0.587 * g + 0.114 * b


def rgba(grey: np.ndarray) -> np.ndarray:
    """Opaque RGBA uint8 bands with R = G = B = grey."""
    g = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.stack([g, g, g, np.full_like(g, 255)])



def aligned(sample, col: int, row: int, width: int, height: int) -> tuple[float, ...]:
    t = sample.transform
    west, north = t @ (col, row)
    east, south = t @ (col + width, row + height)
    return west, south, east, north


def expected_gradient(sample, method: str, col: int, row: int, width: int, height: int):
    """The kernel applied by hand (numpy) to the source read straight from data/."""
    rgb = sample.read(window=Window(col - 1, row - 1, width + 2, height + 2))
    lum = luminance_by_hand(rgb)
    if method.endswith("magnitude"):
        family = method.split("_")[0]
        gx = correlate_by_hand(lum, expected_kernel(f"{family}_x"))
        gy = correlate_by_hand(lum, expected_kernel(f"{family}_y"))
        return np.sqrt(gx**2 + gy**2)
    return correlate_by_hand(lum, expected_kernel(method))

