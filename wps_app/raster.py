"""Edge filters on float32 luminance with scipy.ndimage.

Conventions (asserted by tests on synthetic ramps):
- arrays are (rows, cols) with row 0 at the northern edge, as GDAL and rasterio read them;
- x-gradients are positive where brightness rises eastward, y-gradients where it rises
  northward (what the tutorial's kernels produced under PIL, which flips rows);
- values are raw kernel units on 0-255 luminance: a Sobel response lies within
  +-4*255 = +-1020, a Prewitt response within +-3*255 = +-765;
- magnitude = sqrt(gx**2 + gy**2);
- a pixel whose 3x3 neighbourhood touches missing data (alpha 0) is NaN.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from scipy import ndimage

from wps_app.types import METHODS, Method

LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# The 3x3 correlation kernels, row 0 = north. Each is separable: derivative [-1, 0, 1]
# along one axis times a smoothing profile along the other.
_SMOOTH = {"sobel": (1.0, 2.0, 1.0), "prewitt": (1.0, 1.0, 1.0)}
_DERIVATIVE = (-1.0, 0.0, 1.0)


def kernel(method: str) -> np.ndarray:
    """The 3x3 float32 correlation kernel of a directional method (row 0 = north)."""
    family, _, axis = method.partition("_")
    smooth = np.array(_SMOOTH[family], dtype=np.float32)
    deriv = np.array(_DERIVATIVE, dtype=np.float32)
    if axis == "x":
        return np.outer(smooth, deriv)
    if axis == "y":
        return np.outer(deriv[::-1], smooth)  # north row positive
    raise ValueError(f"{method} has no single kernel")


def luminance(bands: np.ndarray) -> np.ndarray:
    """Luminance in float32 on the 0-255 scale from (bands, rows, cols) uint8.

    Bands are read as grey, grey+alpha, RGB or RGBA by their count; alpha is ignored here.
    """
    count = bands.shape[0]
    if count in (1, 2):
        return bands[0].astype(np.float32)
    r, g, b = (np.float32(w) for w in LUMA_WEIGHTS)
    lum = np.multiply(bands[0], r, dtype=np.float32)
    term = np.multiply(bands[1], g, dtype=np.float32)
    lum += term
    lum += np.multiply(bands[2], b, out=term, dtype=np.float32)
    return lum


def missing_mask(bands: np.ndarray) -> np.ndarray | None:
    """Boolean mask of pixels with alpha 0, or None when there is no alpha or none missing."""
    if bands.shape[0] not in (2, 4):
        return None
    missing = bands[-1] == 0
    return missing if missing.any() else None


def _directional(lum: np.ndarray, family: str, axis: str) -> np.ndarray:
    """Separable 3x3 correlation: derivative along one axis, smoothing along the other."""
    smooth = _SMOOTH[family]
    if axis == "x":
        out = ndimage.correlate1d(lum, smooth, axis=0, output=np.float32, mode="nearest")
        return ndimage.correlate1d(out, _DERIVATIVE, axis=1, output=np.float32, mode="nearest")
    out = ndimage.correlate1d(lum, smooth, axis=1, output=np.float32, mode="nearest")
    # Reversed derivative along rows: positive where the northern row is brighter.
    return ndimage.correlate1d(
        out, _DERIVATIVE[::-1], axis=0, output=np.float32, mode="nearest"
    )


def gradient(lum: np.ndarray, method: Method) -> np.ndarray:
    """Apply `method` to float32 luminance (rows, cols); same shape, float32, kernel units.

    Border pixels use replicated edges; callers that need true neighbours read one pixel
    of halo on every side and crop it off (see filter_bands).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    family, _, axis = method.partition("_")
    if axis == "magnitude":
        gx = _directional(lum, family, "x")
        gy = _directional(lum, family, "y")
        gx *= gx  # sqrt(gx^2 + gy^2): 4x faster than np.hypot here, and the values stay
        gy *= gy  # far from float32 overflow (at most 255 * 4 * sqrt(2))
        gx += gy
        return np.sqrt(gx, out=gx)
    return _directional(lum, family, axis)


def filter_bands(bands_with_halo: np.ndarray, method: Method) -> np.ndarray:
    """Filter (bands, rows+2, cols+2) uint8 read with a one-pixel halo; return (rows, cols).

    The result is float32 in kernel units with NaN where the 3x3 neighbourhood touches
    missing data (alpha 0). The halo gives border pixels their true neighbours.
    """
    lum = luminance(bands_with_halo)
    missing = missing_mask(bands_with_halo)
    if missing is not None:
        # NaN spreads through each 3-tap pass, zero weights included (0 * NaN is NaN), so
        # exactly the pixels whose 3x3 neighbourhood touches missing data come out NaN,
        # without a separate dilation of the mask.
        lum[missing] = np.nan
    return np.ascontiguousarray(gradient(lum, method)[1:-1, 1:-1], dtype=np.float32)


@cache
def max_response(method: Method) -> float:
    """The largest |response| `method` can give on 0-255 input, in kernel units.

    For a directional kernel it is 255 times the sum of its positive weights; for a
    magnitude, the norm is convex, so its maximum over the 0-255 cube lies on a corner:
    all 512 corners of the 3x3 neighbourhood are tried.
    """
    family, _, axis = method.partition("_")
    if axis in ("x", "y"):
        k = kernel(method)
        return float(255.0 * k[k > 0].sum())
    kx, ky = kernel(f"{family}_x").ravel(), kernel(f"{family}_y").ravel()
    corners = np.array(list(itertools.product((0.0, 255.0), repeat=9)))
    return float(np.hypot(corners @ kx, corners @ ky).max())
