"""One edge-filter job as plain functions: validate the request, then read, filter, write.

This is the whole raster pipeline the `get_raster_process` WPS process wraps; it knows
nothing of PyWPS or of the service's configuration: the binding hands in the limits, the
WMS source and the render options. Progress is reported through a callback (message,
percent).

Every request takes the same path: a loop over row windows, each read with a one-pixel
halo, filtered, and handed to the GeoTIFF and PNG writers. A request of at most
`RenderOptions.stream_above_px` pixels is one window; a larger one is read in windows of
the WMS block height, so no full-size array ever exists. Where each window's gradient is
computed is a strategy (WindowRunner): here by default (local_windows), or on Dask
workers (wps_app.cluster.blocks); the GeoTIFF and the PNG are always written here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wps_app.core import filters, wms, writers
from wps_app.core.errors import InvalidInput, MissingInput
from wps_app.core.types import (
    METHODS,
    STRETCHES,
    BBox,
    Grid,
    Limits,
    Method,
    RenderOptions,
    Stretch,
)

Progress = Callable[[str, int], None]
# The seam between the pipeline and its data: opens (bbox, width, height), a grid in
# EPSG:4326, and yields read_rows(first, end) -> (bands, end - first, width) uint8.
OpenGrid = Callable[[BBox, int, int], AbstractContextManager[wms.ReadRows]]

# The files a request can ask for; render writes only those it is given (a raw PNG
# answer needs no GeoTIFF encode, publishing needs both).
OUTPUTS: frozenset[str] = frozenset({"geotiff", "png"})

# GDAL block cache while reading in many windows: two block rows of a 16384-pixel-wide
# request at 1024-pixel blocks are 2 x 17 x 4 MiB; GDAL's default (5% of RAM) would let a
# large request keep every block it ever read. One window is one RasterIO call, whose
# blocks must all stay cached until it is done: it keeps GDAL's default.
STRIP_CACHE_MB = 192


@dataclass(frozen=True)
class TileRequest:
    """A validated request: a layer over a bbox (EPSG:4326) at width x height pixels;
    `source` names the configured WMS (None: the default one)."""

    layer: str
    bbox: BBox
    width: int
    height: int
    method: Method
    stretch: Stretch
    cog: bool = False
    source: str | None = None


@dataclass(frozen=True)
class TileResult:
    """Files written for one request: the GeoTIFF and the PNG with its sidecars (None for
    an output that was not asked for), and the seconds spent per stage (read, luminance,
    filter, geotiff, png)."""

    geotiff: Path | None
    png: Path | None
    png_sidecars: tuple[Path, ...]
    timings_s: dict[str, float]


def _size(value: int | None, default: int, cap: int, name: str) -> int:
    size = default if value is None else value
    if not isinstance(size, int) or size < 1:
        raise InvalidInput(f"{name} must be a positive whole number of pixels", name)
    if size > cap:
        raise InvalidInput(f"{name} {size} exceeds the maximum of {cap} pixels", name)
    return size


def build_request(
    limits: Limits,
    layers: dict[str, str],
    *,
    extents: dict[str, tuple[float, float, float, float]] | None = None,
    layer: str | None,
    lat: float | None = None,
    lon: float | None = None,
    bbox: BBox | None = None,
    width: int | None = None,
    height: int | None = None,
    method: str | None = None,
    stretch: str | None = None,
    cog: bool | None = None,
    source: str | None = None,
) -> TileRequest:
    """Validate raw input values against the limits and the WMS's layers.

    Parameters
    ----------
    limits
        Sizes (pixels) and spans (degrees) a request may ask for, and the defaults.
    layers
        The layers the chosen WMS offers (name -> title).
    extents
        Where the WMS says each layer has data: (west, south, east, north) degrees; an
        area outside it is refused (it could only give an empty tile).
    layer, lat, lon, bbox, width, height, method, stretch, cog
        The request's values as sent (None when absent); lat/lon in EPSG:4326 degrees
        give a square of `limits.default_side_deg` around the point.
    source
        The WMS source's name as resolve_source returned it.

    Returns
    -------
    TileRequest

    Raises
    ------
    MissingInput, InvalidInput
        With a `locator` naming the offending input.
    """
    if not layer:
        raise MissingInput("wms (a layer name) is required", "layer")
    if layer not in layers:
        offered = ", ".join(sorted(layers)[:10]) or "none"
        raise InvalidInput(f"unknown layer {layer[:80]!r}; the WMS offers: {offered}", "layer")
    method = method or "sobel_x"
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}", "method")
    stretch = stretch or "signed"
    if stretch not in STRETCHES:
        raise InvalidInput(f"stretch must be one of {', '.join(STRETCHES)}", "stretch")
    given_bbox = bbox is not None
    if bbox is None:
        if lat is None:
            raise MissingInput("lat is required when no bbox is given", "lat")
        if lon is None:
            raise MissingInput("lon is required when no bbox is given", "lon")
        bbox = BBox.around(lat, lon, limits.default_side_deg)
    elif lat is not None or lon is not None:
        raise InvalidInput("give either bbox or lat/lon, not both", "bbox")
    if max(bbox.width_deg, bbox.height_deg) > limits.max_bbox_deg:
        raise InvalidInput(
            f"bbox spans more than the maximum of {limits.max_bbox_deg:g} degrees", "bbox"
        )
    extent = (extents or {}).get(layer)
    if extent is not None and not _overlaps(bbox, extent):
        w, s, e, n = extent
        field = "bbox" if given_bbox else "lat"
        raise InvalidInput(
            f"the area is outside layer {layer}'s extent: longitude {w:g}..{e:g}, latitude "
            f"{s:g}..{n:g} (EPSG:4326 degrees; lat and lon swapped?)", field)
    width, height = _sizes(width, height, bbox, limits, given_bbox)
    if width * height > limits.max_pixels:
        raise InvalidInput(
            f"width x height exceeds the maximum of {limits.max_pixels} pixels", "width"
        )
    return TileRequest(layer, bbox, width, height, method, stretch,  # type: ignore[arg-type]
                       bool(cog), source)


def _overlaps(bbox: BBox, extent: tuple[float, float, float, float]) -> bool:
    west, south, east, north = extent
    return bbox.west < east and bbox.east > west and bbox.south < north and bbox.north > south


def _sizes(width: int | None, height: int | None, bbox: BBox, limits: Limits,
           given_bbox: bool) -> tuple[int, int]:
    """Width and height in pixels. Around a point both default to default_size_px (the
    square tile). Over a bbox, a missing side follows the bbox's aspect (square pixels),
    and with neither, the longer side is default_size_px."""
    if given_bbox and (width is None or height is None):
        aspect = bbox.width_deg / bbox.height_deg  # columns per row
        if width is None and height is None:
            if aspect >= 1:
                width = limits.default_size_px
            else:
                height = limits.default_size_px
        if width is None:
            width = _size(height, limits.default_size_px, limits.max_height_px, "height")
            width = max(1, round(width * aspect))
        elif height is None:
            width = _size(width, limits.default_size_px, limits.max_width_px, "width")
            height = max(1, round(width / aspect))
    width = _size(width, limits.default_size_px, limits.max_width_px, "width")
    height = _size(height, limits.default_size_px, limits.max_height_px, "height")
    return width, height


def resolve_source(names: Sequence[str], name: str | None) -> str:
    """The configured WMS source called `name`, of `names` (the default one first); the
    default for None. Raises InvalidInput (locator "source") for any other name."""
    if name is None:
        return names[0]
    if name not in names:
        raise InvalidInput(f"source must name a configured WMS: {', '.join(names)}", "source")
    return name


def output_bytes_upper_bound(request: TileRequest) -> dict[str, int]:
    """Uncompressed sizes of the outputs (bytes): the PNG (grey + alpha), the GeoTIFF."""
    pixels = request.width * request.height
    return {"png": 2 * pixels, "geotiff": 4 * pixels}


def row_windows(height: int, rows: int) -> Iterator[tuple[int, int]]:
    """(first, end) output rows of consecutive windows of at most `rows` rows."""
    for first in range(0, height, rows):
        yield first, min(height, first + rows)


def window_rows(request: TileRequest, source: wms.WmsSource, options: RenderOptions) -> int:
    """Rows per window: the whole height up to options.stream_above_px pixels, else the
    WMS block height (GDAL fetches a block row at a time; the next window's halo rows
    come from the blocks still cached)."""
    if request.width * request.height <= options.stream_above_px:
        return request.height
    return source.max_block_px


def tags(request: TileRequest) -> dict[str, str]:
    """The GeoTIFF's metadata: method, layer, the WMS source by its configured name (never
    its URL, which may carry a key), bbox (EPSG:4326) and units."""
    return {
        "METHOD": request.method,
        "LAYER": request.layer,
        **({"WMS_SOURCE": request.source} if request.source else {}),
        "BBOX": ",".join(repr(v) for v in request.bbox.bounds),
        "UNITS": "kernel units on 0-255 luminance; x positive eastward, y positive northward",
    }


def _no_progress(message: str, percent: int) -> None:
    return None


def _wms_grid(source: wms.WmsSource, layer: str, cache_mb: int | None) -> OpenGrid:
    """The production seam: `layer` of `source` read through GDAL's WMS driver."""

    def open_grid(bbox: BBox, width: int, height: int):
        return wms.open_grid(source, layer, bbox, width, height, cache_mb=cache_mb)

    return open_grid


@dataclass(frozen=True)
class WindowPlan:
    """One request's windows as plain values: `request` read from `source` on the halo
    grid (`halo`, the request's bbox grown by one pixel, EPSG:4326, at (width + 2) x
    (height + 2) pixels); window (first, end) is output rows [first, end), read as halo
    rows [first, end + 2). `cache_mb` bounds GDAL's block cache while reading (None:
    GDAL's default)."""

    request: TileRequest
    source: wms.WmsSource
    halo: BBox
    windows: tuple[tuple[int, int], ...]
    cache_mb: int | None


# (window index, stage name, offset within the window's share, first, end): reports progress
Stage = Callable[[int, str, int, int, int], None]
# The seam between the window loop and where gradients are computed: given the plan, the
# timings to add seconds to ("read", "luminance", "filter") and the progress reporter, it
# yields the (end - first, width) float32 gradient of every window of the plan, in order;
# each one is written before the next is asked for, so it may reuse one array.
WindowRunner = Callable[[WindowPlan, dict[str, float], Stage],
                        AbstractContextManager[Iterator[np.ndarray]]]


def local_windows(open_grid: OpenGrid) -> WindowRunner:
    """The default WindowRunner: each window read through `open_grid` (one dataset for all
    of them, so the blocks of a window's halo rows stay cached for the next) and filtered
    on this host's two filter threads."""

    @contextmanager
    def run(plan: WindowPlan, timings: dict[str, float], stage: Stage
            ) -> Iterator[Iterator[np.ndarray]]:
        request = plan.request
        with open_grid(plan.halo, request.width + 2, request.height + 2) as read_rows:
            yield _read_and_filter(read_rows, plan, timings, stage)

    return run


def _read_and_filter(read_rows: wms.ReadRows, plan: WindowPlan, timings: dict[str, float],
                     stage: Stage) -> Iterator[np.ndarray]:
    # One array holds every window's gradient in turn (a fresh 64 MiB array per window
    # costs page faults each time): each window is written before the next is read.
    rows = max(end - first for first, end in plan.windows)
    held = np.empty((rows, plan.request.width), np.float32)
    for index, (first, end) in enumerate(plan.windows):
        stage(index, *_STAGES[0], first, end)
        started = time.perf_counter()
        bands = read_rows(first, end + 2)
        timings["read"] += time.perf_counter() - started
        stage(index, *_STAGES[1], first, end)
        gradient = filters.filter_window(bands, plan.request.method, held[: end - first],
                                         timings)
        del bands
        yield gradient


# Where each stage of a window starts, in percent of one window's share of the 20-85%
# the windows span; with one window: reading 20, filtering 50, writing the GeoTIFF 70,
# writing the PNG 85.
_STAGES = (("reading the WMS", 0), ("filtering", 30), ("writing the GeoTIFF", 50),
           ("writing the PNG", 65))


def render(
    request: TileRequest,
    source: wms.WmsSource,
    options: RenderOptions,
    workdir: Path,
    progress: Progress = _no_progress,
    open_grid: OpenGrid | None = None,
    windows_on: WindowRunner | None = None,
    outputs: frozenset[str] = OUTPUTS,
) -> TileResult:
    """Read, filter and write one tile into `workdir`; returns the files written.

    Parameters
    ----------
    request
        The validated request.
    source
        The WMS it reads (its URL goes into the GeoTIFF's tags; its block height sets the
        rows of a window when the request is read in many).
    options
        Codecs, levels and the size above which the request is read in many windows.
    workdir
        A private folder; the outputs are named after the method.
    progress
        Called with (message, percent) as the stages start.
    open_grid
        Opens the grid the request is read on (see OpenGrid); the WMS by default. A test
        hands in a local raster here.
    windows_on
        Where each window's gradient is computed (see WindowRunner); by default here,
        read through `open_grid`.
    outputs
        Which of OUTPUTS ("geotiff", "png") to write; the others are not computed.

    Returns
    -------
    TileResult
        The GeoTIFF holds the signed float32 gradient (NaN nodata), the PNG its fixed-scale
        8-bit rendering, both in EPSG:4326 on the request's grid.

    Raises
    ------
    WmsError
        The WMS could not deliver the image.
    OutputError
        An output could not be written.
    """
    grid = Grid.from_bbox(request.bbox, request.width, request.height)
    rows = window_rows(request, source, options)
    windows = list(row_windows(request.height, rows))
    cache_mb = None if len(windows) == 1 else STRIP_CACHE_MB
    if open_grid is None:
        open_grid = _wms_grid(source, request.layer, cache_mb)
    halo = wms.grown_by_one_pixel(request.bbox, request.width, request.height)
    plan = WindowPlan(request, source, halo, tuple(windows), cache_mb)
    timings: dict[str, float] = {"read": 0.0}
    if not outputs or not outputs <= OUTPUTS:
        raise ValueError(f"outputs must be a non-empty subset of {sorted(OUTPUTS)}")
    geotiff = writers.GeoTiffWriter(workdir / f"{request.method}.tif", grid,
                                    tags(request), options, request.cog) \
        if "geotiff" in outputs else None
    png = writers.PngWriter(workdir / f"{request.method}.png", grid, request.method,
                            request.stretch, options.png_zlevel) if "png" in outputs else None

    def stage(index: int, name: str, offset: int, first: int, end: int) -> None:
        where = "" if len(windows) == 1 else f" (rows {first}-{end} of {request.height})"
        progress(name + where, 20 + (65 * index + offset) // len(windows))

    runner = windows_on or local_windows(open_grid)
    with ExitStack() as stack:
        gradients = stack.enter_context(runner(plan, timings, stage))
        for writer in (geotiff, png):
            if writer is not None:
                stack.enter_context(writer)
        for index, ((first, end), gradient) in enumerate(zip(windows, gradients,
                                                             strict=True)):
            if geotiff is not None:
                stage(index, *_STAGES[2], first, end)
                geotiff.write(first, gradient)
            if png is not None:
                stage(index, *_STAGES[3], first, end)
                png.write(first, gradient)
    geotiff_path = png_path = None
    sidecars: list[Path] = []
    if geotiff is not None:
        if request.cog:
            progress("writing the Cloud Optimized GeoTIFF", 88)
        geotiff_path = geotiff.finish()
        timings["geotiff"] = geotiff.seconds
    if png is not None:
        if len(windows) > 1:
            progress("encoding the PNG", 90)
        png_path, *sidecars = png.finish()
        timings["png"] = png.seconds
    return TileResult(geotiff_path, png_path, tuple(sidecars), timings)
