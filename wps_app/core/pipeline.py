"""One edge-filter job as plain functions: validate the request, read, filter, write.

This is the whole raster pipeline the `get_raster_process` WPS process wraps; it knows
nothing of PyWPS. Progress is reported through a callback (message, percent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rasterio.transform import from_bounds

from wps_app.core import strips, wms
from wps_app.core import writers as outputs
from wps_app.core.errors import InvalidInput, MissingInput
from wps_app.core.types import METHODS, STRETCHES, BBox, Method, Raster, Stretch
from wps_app.settings import Settings

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class TileRequest:
    """A validated request: a layer over a bbox (EPSG:4326) at width x height pixels."""

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
    """Files written for one request: the GeoTIFF and the PNG with its sidecars."""

    geotiff: Path
    png: Path
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
    settings: Settings,
    layers: dict[str, str],
    *,
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
    """Validate raw input values against the settings and the WMS's layers.

    Raises MissingInput / InvalidInput whose `locator` names the offending input.
    """
    source = resolve_source(settings, source)
    if not layer:
        raise MissingInput("wms (a layer name) is required", "wms")
    if layer not in layers:
        offered = ", ".join(sorted(layers)[:10]) or "none"
        raise InvalidInput(f"unknown layer {layer[:80]!r}; the WMS offers: {offered}", "wms")
    method = method or "sobel_x"
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}", "method")
    stretch = stretch or "signed"
    if stretch not in STRETCHES:
        raise InvalidInput(f"stretch must be one of {', '.join(STRETCHES)}", "stretch")
    if bbox is None:
        if lat is None:
            raise MissingInput("lat is required when no bbox is given", "lat")
        if lon is None:
            raise MissingInput("lon is required when no bbox is given", "lon")
        bbox = BBox.around(lat, lon, settings.default_side_deg)
    elif lat is not None or lon is not None:
        raise InvalidInput("give either bbox or lat/lon, not both", "bbox")
    if max(bbox.width_deg, bbox.height_deg) > settings.max_bbox_deg:
        raise InvalidInput(
            f"bbox spans more than the maximum of {settings.max_bbox_deg:g} degrees", "bbox"
        )
    width = _size(width, settings.default_size_px, settings.max_width_px, "width")
    height = _size(height, settings.default_size_px, settings.max_height_px, "height")
    if width * height > settings.max_pixels:
        raise InvalidInput(
            f"width x height exceeds the maximum of {settings.max_pixels} pixels", "width"
        )
    return TileRequest(layer, bbox, width, height, method, stretch,  # type: ignore[arg-type]
                       bool(cog), source)


def resolve_source(settings: Settings, name: str | None) -> str:
    """The configured WMS source's name (the default for None); InvalidInput otherwise."""
    try:
        return settings.wms_server(name).name
    except KeyError:
        names = ", ".join(s.name for s in settings.wms_servers)
        raise InvalidInput(f"source must name a configured WMS: {names}", "source") from None


def wms_source(settings: Settings, name: str | None = None) -> wms.WmsSource:
    """The configured WMS source called `name` (the default one for None)."""
    server = settings.wms_server(name)
    return wms.WmsSource(server.url, server.version, server.timeout_s, server.retries,
                         max_block_px=server.block_px)


def output_bytes_upper_bound(request: TileRequest) -> dict[str, int]:
    """Uncompressed sizes of the outputs (bytes): the PNG (grey + alpha), the GeoTIFF."""
    pixels = request.width * request.height
    return {"png": 2 * pixels, "geotiff": 4 * pixels}


def _tags(request: TileRequest, settings: Settings) -> dict[str, str]:
    return {
        "METHOD": request.method,
        "LAYER": request.layer,
        "WMS_URL": settings.wms_server(request.source).url,
        "BBOX": ",".join(repr(v) for v in request.bbox.bounds),
        "UNITS": "kernel units on 0-255 luminance; x positive eastward, y positive northward",
    }


def _no_progress(message: str, percent: int) -> None:
    return None


def render(
    request: TileRequest,
    settings: Settings,
    workdir: Path,
    progress: Progress = _no_progress,
) -> TileResult:
    """Read, filter and write one tile into `workdir`; returns the files written.

    The GeoTIFF holds the signed float32 gradient (NaN nodata); the PNG its fixed-scale
    8-bit rendering. Raises WmsError or OutputError.
    """
    source = wms_source(settings, request.source)
    if request.cog or request.width * request.height > settings.stream_above_px:
        strip_timings: dict[str, float] = {}
        geotiff, png_files = strips.render_in_strips(
            source, request.layer, request.bbox, request.width, request.height,
            request.method, request.stretch, workdir, _tags(request, settings),
            outputs.geotiff_profile(settings.geotiff_compress, settings.geotiff_zlevel),
            settings.png_zlevel, request.cog, progress, strip_timings,
        )
        return TileResult(geotiff, png_files[0], tuple(png_files[1:]), strip_timings)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    progress("reading the WMS", 20)
    bands = wms.read_with_halo(source, request.layer, request.bbox, request.width, request.height)
    lap("read")
    progress("filtering", 50)
    gradient = Raster(
        strips.filter_strip(bands.data, request.method, timings=timings),
        from_bounds(*request.bbox.bounds, request.width, request.height),
    )
    del bands
    clock = time.perf_counter()
    progress("writing the GeoTIFF", 70)
    geotiff = outputs.write_geotiff(
        gradient,
        workdir / f"{request.method}.tif",
        _tags(request, settings),
        settings.geotiff_compress,
        settings.geotiff_zlevel,
    )
    lap("geotiff")
    progress("writing the PNG", 85)
    png, *sidecars = outputs.write_png(
        gradient, workdir / f"{request.method}.png", request.method, request.stretch,
        settings.png_zlevel,
    )
    lap("png")
    return TileResult(geotiff, png, tuple(sidecars), timings)

