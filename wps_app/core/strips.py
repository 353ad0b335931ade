"""Large requests in bounded memory: read, filter and write strip by strip.

The WMS is read through GDAL in blocks no larger than the server's MAXSIZE (GDAL fetches a
block row's blocks over parallel connections and keeps them in its bounded block cache);
each strip is read with one halo row above and below, filtered, cropped, and written into
the tiled GeoTIFF and into the 8-bit levels of the PNG, so no full-size array ever exists.
Strip results equal the whole-array result bit for bit (tests/test_strips.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp
from rasterio.transform import from_bounds
from rasterio.windows import Window

from wps_app.core import filters as raster
from wps_app.core import wms
from wps_app.core import writers as outputs
from wps_app.core.errors import OutputError, WmsError
from wps_app.core.types import Method

ReadRows = Callable[[int, int], np.ndarray]
# GDAL block cache while reading in strips: two block rows of a 16384-pixel-wide request
# at 1024-pixel blocks are 2 x 17 x 4 MiB; GDAL's default (5% of RAM) would let a large
# request keep every block it ever read.
STRIP_CACHE_MB = 192


def strip_ranges(height: int, rows: int) -> Iterator[tuple[int, int]]:
    """(first, end) output rows of consecutive strips of at most `rows` rows."""
    for first in range(0, height, rows):
        yield first, min(height, first + rows)


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _thread_pool() -> ThreadPoolExecutor:
    """This process's filter threads; re-created after a fork (async jobs are forked, and
    a pool inherited from the parent has no threads left)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="strips"))
    return _pool[1]


# Tiles of 64 K pixels: each scratch array (256 KiB) stays in a core's L2 cache through
# every scipy.ndimage pass. Measured on a 16384-pixel-wide strip, they run about twice as
# fast as full-width 64-row chunks and four times as fast as one call on the strip;
# 256x256 to 256x1024 tiles are within 10% of them.
TILE_ROWS, TILE_COLS = 128, 512
SMALL_PX = 1024 * 1024  # below this, one tile in the calling thread (a 512x512: ~3 ms)
_workspaces = threading.local()


def _workspace() -> raster.Workspace:
    """This thread's scratch arrays for the filter."""
    if not hasattr(_workspaces, "arrays"):
        _workspaces.arrays = raster.Workspace()
    return _workspaces.arrays


def _filter_tile(
    source: np.ndarray, method: Method, out: np.ndarray, workspace: raster.Workspace
) -> tuple[float, float]:
    """Filter one halo'd tile (uint8 bands, or float32 luminance) into `out`; returns the
    seconds spent on (luminance, filter)."""
    started = time.perf_counter()
    lum = raster.masked_luminance(source, workspace) if source.ndim == 3 else source
    lum_done = time.perf_counter()
    raster.filter_luminance(lum, method, out, workspace)
    return lum_done - started, time.perf_counter() - lum_done


def filter_strip(
    source: np.ndarray,
    method: Method,
    out: np.ndarray | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Filter a halo'd strip, tile by tile on two threads; returns (rows, cols) float32.

    `source` is (bands, rows+2, cols+2) uint8 as read (see raster.filter_bands) or
    (rows+2, cols+2) float32 luminance (see raster.filter_luminance). Each tile is read
    with its own one-pixel halo and filtered in this thread's reused scratch arrays;
    scipy.ndimage and numpy release the GIL, so the two threads (each taking a row of
    tiles at a time) use both cores. Every output pixel is computed from the same 3x3
    neighbourhood by the same operations: the result equals the whole-strip result bit
    for bit (tests/test_strips.py). `out`, a float32 (rows, cols) array, receives the
    result when given. Seconds spent are added to `timings` as "luminance" and "filter"
    (the scipy.ndimage passes and the magnitude).
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
                                result[row:end_row, col:end_col], workspace)
            spent = (spent[0] + tile[0], spent[1] + tile[1])
        return spent

    started = time.perf_counter()
    if tile_rows >= rows:
        spent = [filter_tile_row(0)]
    else:
        spent = list(_thread_pool().map(filter_tile_row, range(0, rows, tile_rows)))
    if timings is not None:
        # The two threads interleave both stages, so the wall time is split in proportion
        # to the seconds they spent in each.
        wall = time.perf_counter() - started
        lum_s = sum(lum for lum, _ in spent)
        lum_share = lum_s / ((lum_s + sum(kernel for _, kernel in spent)) or 1.0)
        timings["luminance"] = timings.get("luminance", 0.0) + wall * lum_share
        timings["filter"] = timings.get("filter", 0.0) + wall * (1 - lum_share)
    return result


def filter_in_strips(
    read_rows: ReadRows, height: int, method: Method, rows: int,
    timings: dict[str, float] | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Filter a halo'd raster of height+2 rows strip by strip.

    `read_rows(a, b)` returns rows [a, b) of the (bands, height+2, width+2) raster read
    with a one-pixel halo. Yields (first, end, gradient rows [first, end)) in float32;
    adds the seconds spent to `timings` ("read", "luminance", "filter").
    One array holds every strip's gradient in turn (a fresh 64 MiB array per strip costs
    page faults each time): use each strip before asking for the next.
    """
    timings = {} if timings is None else timings
    held: np.ndarray | None = None
    for first, end in strip_ranges(height, rows):
        started = time.perf_counter()
        bands = read_rows(first, end + 2)
        read_done = time.perf_counter()
        shape = (end - first, bands.shape[-1] - 2)
        if held is None:
            held = np.empty(shape, np.float32)
        timings["read"] = timings.get("read", 0.0) + read_done - started
        gradient = filter_strip(bands, method, held[: shape[0]], timings)
        yield first, end, gradient


def render_in_strips(
    source: wms.WmsSource,
    layer: str,
    bbox,
    width: int,
    height: int,
    method: Method,
    stretch: str,
    workdir: Path,
    tags: dict[str, str],
    geotiff_options: dict,
    png_zlevel: int,
    cog: bool,
    progress: Callable[[str, int], None],
    timings: dict[str, float] | None = None,
) -> tuple[Path, list[Path]]:
    """Write the GeoTIFF (tiled, compressed; COG when `cog`) and the PNG (grey + alpha) of
    a request of any size; returns (geotiff, [png, aux.xml, world file]). Seconds spent
    reading, filtering and writing are added to `timings`."""
    timings = {} if timings is None else timings
    transform = from_bounds(*bbox.bounds, width, height)
    geotiff = workdir / f"{method}.tif"
    tiled = workdir / "gradient-tiled.tif" if cog else geotiff
    levels_path = workdir / "levels.tif"
    png = workdir / f"{method}.png"
    common = {"width": width, "height": height, "crs": "EPSG:4326", "transform": transform}
    levels_profile = {"driver": "GTiff", "dtype": "uint8", "count": 2, "tiled": True,
                      "blockxsize": 256, "blockysize": 256, **common}  # temporary: no codec
    grown = wms.grown_by_one_pixel(bbox, width, height)
    rows = source.max_block_px
    try:
        with wms.open_layer(source, layer, grown, width + 2, height + 2,
                            cache_mb=STRIP_CACHE_MB) as dataset, \
                rasterio.open(tiled, "w", **geotiff_options, **common) as gradient_out, \
                rasterio.open(levels_path, "w", **levels_profile) as levels_out:
            levels_out.colorinterp = [ColorInterp.gray, ColorInterp.alpha]

            def read_rows(first: int, end: int) -> np.ndarray:
                window = Window(0, first, width + 2, end - first)
                try:
                    return wms.read_window(dataset, window)
                except WmsError:  # retry this strip through a freshly opened dataset
                    def attempt() -> np.ndarray:
                        with wms.open_layer(source, layer, grown, width + 2, height + 2,
                                            cache_mb=STRIP_CACHE_MB) as fresh:
                            return wms.read_window(fresh, window)
                    return wms.with_retries(source, attempt)

            for first, end, gradient in filter_in_strips(read_rows, height, method, rows,
                                                         timings):
                started = time.perf_counter()
                window = Window(0, first, width, end - first)
                gradient_out.write(gradient, 1, window=window)
                levels_out.write(outputs.png_levels(gradient, method, stretch), window=window)
                timings["write"] = timings.get("write", 0.0) + time.perf_counter() - started
                progress(f"filtered rows {end} of {height}", 20 + int(60 * end / height))
            gradient_out.update_tags(**tags)
            gradient_out.set_band_description(1, "gradient (kernel units on 0-255 luminance)")
        progress("writing the PNG", 85)
        started = time.perf_counter()
        rasterio.shutil.copy(levels_path, png, driver="PNG", ZLEVEL=png_zlevel)
        if cog:
            progress("writing the Cloud Optimized GeoTIFF", 90)
            rasterio.shutil.copy(tiled, geotiff, driver="COG",
                                 COMPRESS=geotiff_options["compress"].upper(),
                                 PREDICTOR="FLOATING_POINT", BLOCKSIZE=256)
            tiled.unlink()
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - started
    except rasterio.errors.RasterioError as exc:
        raise OutputError(f"could not write the outputs: {exc}") from exc
    finally:
        levels_path.unlink(missing_ok=True)
    world = png.with_suffix(".pgw")
    world.write_text(outputs.world_file_lines(transform))
    return geotiff, [png, png.with_name(png.name + ".aux.xml"), world]
