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

from wps_app.core.types import METHODS, Method

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


class Workspace:
    """Float32 scratch arrays, reused from call to call.

    Fresh multi-megabyte arrays cost page faults on every call and start outside the CPU
    caches; a caller filtering many cache-sized tiles (one workspace per thread) allocates
    once and keeps its arrays warm.
    """

    def __init__(self) -> None:
        self._flat: list[np.ndarray] = []

    def arrays(self, shape: tuple[int, int], count: int) -> list[np.ndarray]:
        """`count` contiguous float32 arrays of `shape`; their contents are left over."""
        size = shape[0] * shape[1]
        if len(self._flat) < count or self._flat[0].size < size:
            self._flat = [np.empty(size, np.float32) for _ in range(count)]
        return [flat[:size].reshape(shape) for flat in self._flat[:count]]


def luminance(
    bands: np.ndarray, out: np.ndarray | None = None, term: np.ndarray | None = None
) -> np.ndarray:
    """Luminance in float32 on the 0-255 scale from (bands, rows, cols) uint8.

    Bands are read as grey, grey+alpha, RGB or RGBA by their count; alpha is ignored here.
    `out` and `term` are optional float32 (rows, cols) arrays to compute in.
    """
    shape = bands.shape[1:]
    out = np.empty(shape, np.float32) if out is None else out
    if bands.shape[0] in (1, 2):
        np.copyto(out, bands[0])
        return out
    term = np.empty(shape, np.float32) if term is None else term
    r, g, b = (np.float32(w) for w in LUMA_WEIGHTS)
    np.multiply(bands[0], r, out=out)
    out += np.multiply(bands[1], g, out=term)
    out += np.multiply(bands[2], b, out=term)
    return out


def missing_mask(bands: np.ndarray) -> np.ndarray | None:
    """Boolean mask of pixels with alpha 0, or None when there is no alpha or none missing."""
    if bands.shape[0] not in (2, 4):
        return None
    missing = bands[-1] == 0
    return missing if missing.any() else None


def _directional(
    lum: np.ndarray, family: str, axis: str, out: np.ndarray, between: np.ndarray
) -> np.ndarray:
    """Separable 3x3 correlation into `out`: derivative along one axis, smoothing along
    the other; `between` holds the first pass."""
    smooth = _SMOOTH[family]
    if axis == "x":
        ndimage.correlate1d(lum, smooth, axis=0, output=between, mode="nearest")
        ndimage.correlate1d(between, _DERIVATIVE, axis=1, output=out, mode="nearest")
        return out
    ndimage.correlate1d(lum, smooth, axis=1, output=between, mode="nearest")
    # Reversed derivative along rows: positive where the northern row is brighter.
    ndimage.correlate1d(between, _DERIVATIVE[::-1], axis=0, output=out, mode="nearest")
    return out


def gradient(lum: np.ndarray, method: Method) -> np.ndarray:
    """Apply `method` to float32 luminance (rows, cols); same shape, float32, kernel units.

    Border pixels use replicated edges; callers that need true neighbours read one pixel
    of halo on every side and crop it off (see filter_bands).
    """
    return _gradient_into(lum, method, *Workspace().arrays(lum.shape, 3))


def _gradient_into(
    lum: np.ndarray, method: Method, between: np.ndarray, gx: np.ndarray, gy: np.ndarray
) -> np.ndarray:
    """gradient() computed in the given float32 arrays of lum's shape; returns one of them."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    family, _, axis = method.partition("_")
    if axis != "magnitude":
        return _directional(lum, family, axis, gx, between)
    _directional(lum, family, "x", gx, between)
    _directional(lum, family, "y", gy, between)
    gx *= gx  # sqrt(gx^2 + gy^2): 4x faster than np.hypot here, and the values stay
    gy *= gy  # far from float32 overflow (at most 255 * 4 * sqrt(2))
    gx += gy
    return np.sqrt(gx, out=gx)


def masked_luminance(
    bands_with_halo: np.ndarray, workspace: Workspace | None = None
) -> np.ndarray:
    """Luminance (see luminance) of (bands, rows, cols) uint8, NaN where alpha is 0.

    With a `workspace` the result is its first array (its second is used on the way).
    """
    lum, term = (workspace or Workspace()).arrays(bands_with_halo.shape[1:], 2)
    luminance(bands_with_halo, out=lum, term=term)
    missing = missing_mask(bands_with_halo)
    if missing is not None:
        # NaN spreads through each 3-tap pass, zero weights included (0 * NaN is NaN), so
        # exactly the pixels whose 3x3 neighbourhood touches missing data come out NaN,
        # without a separate dilation of the mask.
        lum[missing] = np.nan
    return lum


def filter_luminance(
    lum_with_halo: np.ndarray,
    method: Method,
    out: np.ndarray | None = None,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """Filter float32 luminance (rows+2, cols+2) read with a one-pixel halo; return the
    (rows, cols) gradient in kernel units, into `out` when given (a view is fine).

    Uses the workspace's second to fourth arrays, so the luminance may be its first.
    """
    _, between, gx, gy = (workspace or Workspace()).arrays(lum_with_halo.shape, 4)
    inner = _gradient_into(lum_with_halo, method, between, gx, gy)[1:-1, 1:-1]
    if out is None:
        return inner.copy()
    np.copyto(out, inner)
    return out


def filter_bands(
    bands_with_halo: np.ndarray,
    method: Method,
    out: np.ndarray | None = None,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """Filter (bands, rows+2, cols+2) uint8 read with a one-pixel halo; return (rows, cols).

    The result is float32 in kernel units with NaN where the 3x3 neighbourhood touches
    missing data (alpha 0). The halo gives border pixels their true neighbours. `out`, a
    float32 (rows, cols) array (a view is fine), receives the result when given; a
    `workspace` lends the scratch arrays (see Workspace).
    """
    workspace = workspace or Workspace()
    lum = masked_luminance(bands_with_halo, workspace)
    return filter_luminance(lum, method, out, workspace)


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
