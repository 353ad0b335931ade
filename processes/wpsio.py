"""Formats, inputs and outputs shared by the processes (defined once, as finch does)."""

from __future__ import annotations

from pywps import BoundingBoxInput, ComplexOutput, Format, LiteralInput
from pywps.inout.literaltypes import AllowedValue
from pywps.validator.allowed_value import ALLOWEDVALUETYPE
from pywps.validator.mode import MODE

from wps_app.core.types import METHODS, STRETCHES

# PyWPS has no PNG constant; GeoTIFF is named as PyWPS and birdy name it, plain TIFF too.
PNG = Format("image/png", extension=".png")
GEOTIFF = Format("image/tiff; subtype=geotiff", extension=".tif")
TIFF = Format("image/tiff", extension=".tif")
TIFF_MIME_TYPES = (GEOTIFF.mime_type, TIFF.mime_type)

# Inputs are validated by our own code (wps_app.core.pipeline.build_request) with messages and
# locators a user can act on, so PyWPS's own literal validation is switched off. Ranges are
# still advertised (AllowedValues in DescribeProcess) so that clients such as QGIS show them.
LATITUDE_RANGE = (-90.0, 90.0)
LONGITUDE_RANGE = (-180.0, 180.0)


def value_range(minimum: float, maximum: float) -> AllowedValue:
    """A closed range [minimum, maximum], as DescribeProcess advertises it."""
    return AllowedValue(allowed_type=ALLOWEDVALUETYPE.RANGE, minval=minimum, maxval=maximum)


def layer_input(allowed: list[str], abstract: str) -> LiteralInput:
    return LiteralInput(
        "wms", "WMS layer", data_type="string", abstract=abstract,
        allowed_values=allowed or None, mode=MODE.NONE,
    )


def degrees_input(identifier: str, title: str) -> LiteralInput:
    """`lat` (-90..90) or `lon` (-180..180): the tile centre in EPSG:4326 degrees."""
    minimum, maximum = LATITUDE_RANGE if identifier == "lat" else LONGITUDE_RANGE
    return LiteralInput(
        identifier, title, data_type="float", min_occurs=0, mode=MODE.NONE,
        allowed_values=[value_range(minimum, maximum)],
        abstract=f"{title} of the tile centre, EPSG:4326 degrees; required unless bbox is given",
    )


def bbox_input() -> BoundingBoxInput:
    return BoundingBoxInput(
        "bbox", "Bounding box", crss=["EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84"],
        min_occurs=0, mode=MODE.NONE,
        abstract="Area to filter instead of lat/lon: EPSG:4326 corners are lat,lon; "
        "CRS84 corners are lon,lat.",
    )


def size_input(identifier: str, default: int, cap: int) -> LiteralInput:
    """`width` or `height` in pixels, 1..cap (the configured max_width / max_height)."""
    return LiteralInput(
        identifier, f"{identifier.capitalize()} in pixels", data_type="integer",
        min_occurs=0, default=default, mode=MODE.NONE, allowed_values=[value_range(1, cap)],
        abstract=f"Output {identifier} in pixels, 1 to {cap}.",
    )


def method_input() -> LiteralInput:
    return LiteralInput(
        "method", "Edge filter", data_type="string", min_occurs=0, default="sobel_x",
        allowed_values=list(METHODS), mode=MODE.NONE,
        abstract="x: positive where brightness rises eastward; y: where it rises northward; "
        "magnitude: sqrt(gx^2 + gy^2). Values in raw kernel units.",
    )


def stretch_input() -> LiteralInput:
    return LiteralInput(
        "stretch", "PNG scale", data_type="string", min_occurs=0, default="signed",
        allowed_values=list(STRETCHES), mode=MODE.NONE,
        abstract="signed: 0 -> 128, +-max -> 255/1; absolute: |g| 0..max -> 0..255; "
        "clip: the tutorial's (negatives 0, over 255 -> 255).",
    )


def cog_input() -> LiteralInput:
    return LiteralInput(
        "cog", "Cloud Optimized GeoTIFF", data_type="boolean", min_occurs=0, default=False,
        mode=MODE.NONE,
        abstract="true: the GeoTIFF is written as a Cloud Optimized GeoTIFF (with overviews).",
    )


def source_input(names: list[str]) -> LiteralInput:
    return LiteralInput(
        "source", "WMS source", data_type="string", min_occurs=0, default=names[0],
        allowed_values=names, mode=MODE.NONE,
        abstract="Name of a WMS server configured in pywps.cfg ([wms] is the default, "
        "[wms:NAME] sections add more); never a URL.",
    )


def image_output() -> ComplexOutput:
    return ComplexOutput(
        "image", "Filtered image", supported_formats=[PNG, GEOTIFF, TIFF], as_reference=True,
        abstract="PNG (default, 8-bit on a fixed scale, georeferenced by a .png.aux.xml and "
        "a world file served beside it) or the float32 GeoTIFF.",
    )


def geotiff_output() -> ComplexOutput:
    return ComplexOutput(
        "geotiff", "Signed gradient GeoTIFF", supported_formats=[GEOTIFF, TIFF],
        as_reference=True,
        abstract="float32, EPSG:4326, NaN nodata, DEFLATE with predictor 3.",
    )
