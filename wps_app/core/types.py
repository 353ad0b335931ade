"""Value types shared by the raster core: bounding boxes, grids, method names, rasters, and
the limits and render options a binding hands in (the core reads no configuration)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from affine import Affine
from rasterio.transform import from_bounds

from wps_app.core.errors import InvalidInput

Method = Literal[
    "sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "sobel_magnitude", "prewitt_magnitude"
]
METHODS: tuple[str, ...] = get_args(Method)

Stretch = Literal["signed", "absolute", "clip"]
STRETCHES: tuple[str, ...] = get_args(Stretch)

Compression = Literal["DEFLATE", "ZSTD", "LZW"]
COMPRESSIONS: tuple[str, ...] = get_args(Compression)

CRS_EPSG4326 = "EPSG:4326"


@dataclass(frozen=True)
class BBox:
    """A bounding box in EPSG:4326 degrees, always ordered (west, south, east, north)."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        values = (self.west, self.south, self.east, self.north)
        if not all(math.isfinite(v) for v in values):
            raise InvalidInput("bbox coordinates must be finite numbers", "bbox")
        if not (-180.0 <= self.west <= 180.0 and -180.0 <= self.east <= 180.0):
            raise InvalidInput("bbox longitudes must lie within -180..180 degrees", "bbox")
        if not (-90.0 <= self.south <= 90.0 and -90.0 <= self.north <= 90.0):
            raise InvalidInput("bbox latitudes must lie within -90..90 degrees", "bbox")
        if not (self.west < self.east and self.south < self.north):
            raise InvalidInput(
                "bbox is empty or inverted: need west < east and south < north", "bbox"
            )

    @classmethod
    def around(cls, lat: float, lon: float, side_deg: float) -> BBox:
        """The square of `side_deg` degrees centred on (lat, lon), both in EPSG:4326 degrees."""
        for name, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
            if not math.isfinite(value) or abs(value) > limit:
                raise InvalidInput(f"{name} must be a number within -{limit:g}..{limit:g}", name)
        half = side_deg / 2.0
        try:
            return cls(lon - half, lat - half, lon + half, lat + half)
        except InvalidInput as exc:
            raise InvalidInput(f"the area around lat/lon leaves the globe: {exc}", "lat") from exc

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north), the order rasterio's from_bounds takes."""
        return (self.west, self.south, self.east, self.north)

    @property
    def width_deg(self) -> float:
        return self.east - self.west

    @property
    def height_deg(self) -> float:
        return self.north - self.south


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: `width` x `height` pixels whose `transform` maps pixel
    (col, row) corners to `crs` coordinates (EPSG:4326 lon, lat in degrees)."""

    width: int
    height: int
    transform: Affine
    crs: str = CRS_EPSG4326

    @classmethod
    def from_bbox(cls, bbox: BBox, width: int, height: int) -> Grid:
        """The grid of `bbox` (EPSG:4326) at width x height pixels, exactly as rasterio's
        from_bounds(west, south, east, north, width, height) gives it."""
        return cls(width, height, from_bounds(*bbox.bounds, width, height))


@dataclass(frozen=True)
class Raster:
    """An array with its georeferencing: `data` is (bands, rows, cols) or (rows, cols),
    `transform` maps pixel (col, row) corners to EPSG:4326 (lon, lat)."""

    data: np.ndarray
    transform: Affine
    crs: str = CRS_EPSG4326

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    @property
    def grid(self) -> Grid:
        """The raster's grid, without its data."""
        return Grid(self.width, self.height, self.transform, self.crs)


@dataclass(frozen=True)
class Limits:
    """What a request may ask for; a request that leaves out width, height or a bbox gets
    the defaults. Sizes in pixels, spans in EPSG:4326 degrees."""

    default_size_px: int = 512
    default_side_deg: float = 0.0005
    max_width_px: int = 16384
    max_height_px: int = 16384
    max_pixels: int = 16384 * 16384
    max_bbox_deg: float = 0.5


@dataclass(frozen=True)
class RenderOptions:
    """How the pipeline writes: the GeoTIFF codec and its level, the PNG's zlib level, and
    the size (pixels) above which a request is read, filtered and written in row windows
    of the WMS block height instead of in one window."""

    geotiff_compress: Compression = "DEFLATE"
    geotiff_level: int = 1
    png_zlevel: int = 1
    stream_above_px: int = 2048 * 2048

    def __post_init__(self) -> None:
        if self.geotiff_compress not in COMPRESSIONS:
            raise ValueError(f"geotiff_compress must be one of {', '.join(COMPRESSIONS)}")
        if not 0 <= self.png_zlevel <= 9:
            raise ValueError("png_zlevel must lie within 0..9")
        if self.stream_above_px < 0:
            raise ValueError("stream_above_px must not be negative")


_EPSG4326 = re.compile(r"^(epsg:{1,2}|urn:ogc:def:crs:epsg:[\d.]*:|https?://www\.opengis\.net/"
                       r"(def/crs/epsg/0/|gml/srs/epsg\.xml#))4326$")
_CRS84 = re.compile(r"^(urn:ogc:def:crs:ogc:[\d.]*:|https?://www\.opengis\.net/def/crs/ogc/"
                    r"1\.3/)crs84$")


def axis_order(crs: str | None) -> Literal["latlon", "lonlat"]:
    """Axis order of a bbox CRS: EPSG:4326 in any spelling (and no CRS) is lat,lon as OGC
    defines it; OGC CRS84 is lon,lat. Raises InvalidInput for any other CRS."""
    text = (crs or "EPSG:4326").strip().lower()
    if _EPSG4326.match(text):
        return "latlon"
    if _CRS84.match(text):
        return "lonlat"
    raise InvalidInput(
        f"bbox CRS {crs[:60]!r} is not supported: use EPSG:4326 (lat,lon) or CRS84 (lon,lat)",
        "bbox",
    )


def bbox_from_corners(
    lower: tuple[float, float], upper: tuple[float, float], crs: str | None
) -> BBox:
    """A BBox from the lower and upper corners as sent, in the axis order of `crs`."""
    if axis_order(crs) == "latlon":
        return BBox(west=lower[1], south=lower[0], east=upper[1], north=upper[0])
    return BBox(west=lower[0], south=lower[1], east=upper[0], north=upper[1])
