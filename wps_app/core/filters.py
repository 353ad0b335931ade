"""Edge filters on float32 luminance with scipy.ndimage.

Conventions (asserted by tests on synthetic ramps):
- arrays are (rows, cols) with row 0 at the northern edge, as GDAL and rasterio read them;
- x-gradients are positive where brightness rises eastward, y-gradients where it rises
  northward (what the tutorial's kernels produced under PIL, which flips rows);
- values are raw kernel units on 0-255 luminance: a Sobel response lies within
  +-4*255 = +-1020, a Prewitt response within +-3*255 = +-765;
- magnitude = sqrt(gx**2 + gy**2);
- a pixel whose 3x3 neighbourhood touches missing data (alpha 0) is NaN.

filter_window runs them as the service does: over a window read with a one-pixel halo, in
cache-sized tiles on two threads, bit for bit equal to one call on the whole window.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
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


# Tiles of 64 K pixels: each scratch array (256 KiB) stays in a core's L2 cache through
# every scipy.ndimage pass. Measured on a 16384-pixel-wide window, they run about twice as
# fast as full-width 64-row chunks and four times as fast as one call on the window;
# 256x256 to 256x1024 tiles are within 10% of them.
TILE_ROWS, TILE_COLS = 128, 512
SMALL_PX = 1024 * 1024  # below this, one tile in the calling thread (a 512x512: ~3 ms)
THREADS = 2

_pool: tuple[int, ThreadPoolExecutor] | None = None
_workspaces = threading.local()
Clock = Callable[[], float]


def _thread_pool() -> ThreadPoolExecutor:
    """This process's filter threads; re-created after a fork (async jobs are forked, and
    a pool inherited from the parent has no threads left)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=THREADS,
                                                 thread_name_prefix="filters"))
    return _pool[1]


def _workspace() -> Workspace:
    """This thread's scratch arrays for the filter."""
    if not hasattr(_workspaces, "arrays"):
        _workspaces.arrays = Workspace()
    return _workspaces.arrays


def _filter_tile(
    source: np.ndarray, method: Method, out: np.ndarray, workspace: Workspace, clock: Clock
) -> tuple[float, float]:
    """Filter one halo'd tile (uint8 bands, or float32 luminance) into `out`; returns the
    seconds spent on (luminance, filter)."""
    started = clock()
    lum = masked_luminance(source, workspace) if source.ndim == 3 else source
    lum_done = clock()
    filter_luminance(lum, method, out, workspace)
    return lum_done - started, clock() - lum_done


def split_wall_time(wall_s: float, spent: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """Split `wall_s` seconds into (luminance, filter) in proportion to the (luminance,
    filter) seconds each thread spent: the threads interleave both stages, so their own
    seconds add up to more than the wall time."""
    spent = list(spent)
    lum_s = sum(lum for lum, _ in spent)
    total_s = lum_s + sum(kernel for _, kernel in spent)
    lum_share = lum_s / total_s if total_s > 0 else 0.0
    return wall_s * lum_share, wall_s * (1.0 - lum_share)


def filter_window(
    source: np.ndarray,
    method: Method,
    out: np.ndarray | None = None,
    timings: dict[str, float] | None = None,
    clock: Clock = time.perf_counter,
) -> np.ndarray:
    """Filter a window read with a one-pixel halo, tile by tile on two threads.

    Parameters
    ----------
    source
        (bands, rows+2, cols+2) uint8 as read (see filter_bands), or (rows+2, cols+2)
        float32 luminance on the 0-255 scale (see filter_luminance).
    method
        The filter; the result is in its kernel units.
    out
        A float32 (rows, cols) array (a view is fine) that receives the result.
    timings
        Seconds spent are added to its "luminance" and "filter" (the scipy.ndimage passes
        and the magnitude) entries, as measured by `clock`.

    Returns
    -------
    numpy.ndarray
        (rows, cols) float32, NaN where the 3x3 neighbourhood touches missing data.

    Each tile is read with its own one-pixel halo and filtered in this thread's reused
    scratch arrays; scipy.ndimage and numpy release the GIL, so the two threads (each
    taking a row of tiles at a time) use both cores. Every output pixel is computed from
    the same 3x3 neighbourhood by the same operations: the result equals one
    filter_bands / filter_luminance call on the whole window bit for bit.
    """
    rows, cols = source.shape[-2] - 2, source.shape[-1] - 2
    result = np.empty((rows, cols), np.float32) if out is None else out
    small = (rows + 2) * (cols + 2) < SMALL_PX
    tile_rows, tile_cols = (rows, cols) if small else (TILE_ROWS, TILE_COLS)

    def filter_tile_row(row: int) -> tuple[float, float]:
        """Filter one row of tiles; returns this thread's (luminance, filter) seconds."""
        end_row = min(rows, row + tile_rows)
        workspace = _workspace()
        spent = (0.0, 0.0)
        for col in range(0, cols, tile_cols):
            end_col = min(cols, col + tile_cols)
            tile = _filter_tile(source[..., row : end_row + 2, col : end_col + 2], method,
                                result[row:end_row, col:end_col], workspace, clock)
            spent = (spent[0] + tile[0], spent[1] + tile[1])
        return spent

    started = clock()
    if tile_rows >= rows:
        spent = [filter_tile_row(0)]
    else:
        spent = list(_thread_pool().map(filter_tile_row, range(0, rows, tile_rows)))
    if timings is not None:
        lum_s, filter_s = split_wall_time(clock() - started, spent)
        timings["luminance"] = timings.get("luminance", 0.0) + lum_s
        timings["filter"] = timings.get("filter", 0.0) + filter_s
    return result
