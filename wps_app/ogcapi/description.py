"""get_raster_process as OGC API - Processes 1.0 describes it (process.yaml), from the
settings and the layers the WMS sources advertise; the same inputs as the WPS process."""

from __future__ import annotations

from collections.abc import Mapping

from wps_app.core.types import METHODS, STRETCHES
from wps_app.settings import Settings
from wps_app.task import PROCESS_ID

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
PNG = "image/png"
TIFF = "image/tiff"
GEOTIFF = "image/tiff; application=geotiff"
IMAGE_TYPES = (PNG, TIFF, GEOTIFF)
GEOTIFF_TYPES = (GEOTIFF, TIFF, "image/tiff; subtype=geotiff")
OUTPUTS = ("image", "geotiff")


def layer_names(layers_by_source: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every layer name any source advertises, sorted."""
    return sorted({name for layers in layers_by_source.values() for name in layers})


def _binary(media_types: tuple[str, ...]) -> dict:
    return {"oneOf": [{"type": "string", "contentEncoding": "binary",
                       "contentMediaType": media_type} for media_type in media_types]}


def inputs(settings: Settings, layers_by_source: Mapping[str, Mapping[str, str]]) -> dict:
    """The inputs' descriptions (inputDescription.yaml), named as the WPS process's."""
    names = layer_names(layers_by_source)
    layer_schema: dict = {"type": "string"}
    if names:
        layer_schema["enum"] = names
    optional = {"minOccurs": 0, "maxOccurs": 1}
    return {
        "wms": {"title": "WMS layer", "minOccurs": 1, "maxOccurs": 1, "schema": layer_schema,
                "description": "Name of a layer of the chosen WMS source."},
        "lat": {"title": "Latitude", **optional,
                "description": "Latitude of the tile centre, degrees; required unless bbox "
                               "is given",
                "schema": {"type": "number", "minimum": -90, "maximum": 90}},
        "lon": {"title": "Longitude", **optional,
                "description": "Longitude of the tile centre, degrees; required unless bbox "
                               "is given",
                "schema": {"type": "number", "minimum": -180, "maximum": 180}},
        "bbox": {"title": "Bounding box", **optional,
                 "description": "Area to filter instead of lat/lon, lon/lat order (CRS84), "
                                f"at most {settings.max_bbox_deg:g} degree per side.",
                 "schema": {"type": "object", "required": ["bbox"], "properties": {
                     "bbox": {"type": "array", "minItems": 4, "maxItems": 4,
                              "items": {"type": "number"}},
                     "crs": {"type": "string", "format": "uri", "enum": [CRS84],
                             "default": CRS84}}}},
        "width": {"title": "Width in pixels", **optional,
                  "schema": {"type": "integer", "minimum": 1,
                             "maximum": settings.max_width_px,
                             "default": settings.default_size_px}},
        "height": {"title": "Height in pixels", **optional,
                   "schema": {"type": "integer", "minimum": 1,
                              "maximum": settings.max_height_px,
                              "default": settings.default_size_px}},
        "method": {"title": "Edge filter", **optional,
                   "schema": {"type": "string", "enum": list(METHODS), "default": "sobel_x"}},
        "stretch": {"title": "PNG scale", **optional,
                    "schema": {"type": "string", "enum": list(STRETCHES),
                               "default": "signed"}},
        "cog": {"title": "Cloud Optimized GeoTIFF", **optional,
                "schema": {"type": "boolean", "default": False}},
        "source": {"title": "WMS source", **optional,
                   "description": "Name of a configured WMS server; never a URL.",
                   "schema": {"type": "string", "enum": list(settings.source_names),
                              "default": settings.source_names[0]}},
    }


def outputs() -> dict:
    """The outputs' descriptions (outputDescription.yaml)."""
    return {
        "image": {"title": "Filtered image",
                  "description": "PNG (default; georeferenced by a .png.aux.xml and a world "
                                 "file beside it when by reference) or the float32 GeoTIFF.",
                  "schema": _binary(IMAGE_TYPES)},
        "geotiff": {"title": "Signed gradient GeoTIFF",
                    "description": "float32, EPSG:4326, NaN nodata.",
                    "schema": _binary((GEOTIFF,))},
    }


def process(settings: Settings, layers_by_source: Mapping[str, Mapping[str, str]]) -> dict:
    """The full description (without links: the binding adds them with its public URL)."""
    return {
        "id": PROCESS_ID,
        "version": "1.0",
        "title": "Edge-filtered WMS raster",
        "description": (
            "Reads a WMS layer around lat/lon (a square of "
            f"{settings.default_side_deg:g} degree) or over a bbox, applies a Sobel or "
            "Prewitt filter to its luminance in float32, and returns a georeferenced PNG and "
            "a float32 GeoTIFF in EPSG:4326."),
        "keywords": ["edge detection", "Sobel", "Prewitt", "WMS"],
        "jobControlOptions": ["sync-execute", "async-execute"],
        "outputTransmission": ["value", "reference"],
        "inputs": inputs(settings, layers_by_source),
        "outputs": outputs(),
    }


def summary(description: dict) -> dict:
    """The processSummary of a description (no inputs or outputs)."""
    return {k: v for k, v in description.items() if k not in ("inputs", "outputs")}
