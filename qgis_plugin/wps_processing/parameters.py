"""Processing parameters from DescribeProcess, and WPS input values from parameters.

Inputs: LiteralData with allowed values -> enum of static strings; with ranges, or of an
integer/float type -> number (with the range); boolean -> boolean; any other literal ->
string; BoundingBoxData -> extent. Outputs: a ComplexOutput whose default format is
image/tiff -> raster destination; any other ComplexOutput -> file destination; literal and
bbox outputs -> string outputs. Parameters are named after the WPS identifiers.
"""

from __future__ import annotations

import math

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingContext,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .describe import Input, Literal, Output
from .errors import WpsError
from .execute import BBoxValue, LiteralValue

TRUE_WORDS = ("true", "1", "yes")
FILE_FILTERS = {
    "image/png": "PNG files (*.png)",
    "image/jpeg": "JPEG files (*.jpg *.jpeg)",
    "image/tiff": "GeoTIFF files (*.tif *.tiff)",
    "text/plain": "Text files (*.txt)",
    "text/csv": "CSV files (*.csv)",
    "text/html": "HTML files (*.html)",
    "application/json": "JSON files (*.json)",
    "application/geo+json": "GeoJSON files (*.geojson)",
    "application/vnd.geo+json": "GeoJSON files (*.geojson)",
    "text/xml": "XML files (*.xml)",
    "application/xml": "XML files (*.xml)",
    "application/gml+xml": "GML files (*.gml)",
    "application/zip": "ZIP files (*.zip)",
    "application/x-zipped-shp": "Zipped shapefiles (*.zip)",
    "application/x-netcdf": "NetCDF files (*.nc)",
    "application/pdf": "PDF files (*.pdf)",
}


def is_raster_output(output: Output) -> bool:
    """A complex output whose default format is TIFF (GeoTIFF included)."""
    return output.kind == "complex" and bool(output.formats) \
        and output.formats[0].base_type == "image/tiff"


def output_name(output: Output, inputs: tuple[Input, ...]) -> str:
    """The parameter name of an output: its identifier, unless an input has it."""
    taken = {i.identifier for i in inputs}
    return output.identifier if output.identifier not in taken else f"{output.identifier}_output"


def _number_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _described(definition: QgsProcessingParameterDefinition, spec: Input | Output):
    if spec.abstract:
        definition.setHelp(spec.abstract)
    return definition


def _literal_parameter(spec: Input, literal: Literal) -> QgsProcessingParameterDefinition:
    name, title, optional = spec.identifier, spec.title, spec.optional
    numeric = literal.data_type in ("integer", "float")
    if literal.values and not literal.ranges:
        default = literal.default if literal.default in literal.values else None
        return QgsProcessingParameterEnum(name, title, list(literal.values), False, default,
                                          optional, usesStaticStrings=True)
    if numeric or literal.ranges:
        kind = QgsProcessingParameterNumber.Integer if literal.data_type == "integer" \
            else QgsProcessingParameterNumber.Double
        lows = [low for low, _ in literal.ranges if low is not None]
        highs = [high for _, high in literal.ranges if high is not None]
        parameter = QgsProcessingParameterNumber(name, title, kind,
                                                 _number_or_none(literal.default), optional)
        if lows:
            parameter.setMinimum(min(lows))
        if highs:
            parameter.setMaximum(max(highs))
        return parameter
    if literal.data_type == "boolean":
        default = None if literal.default is None else literal.default.lower() in TRUE_WORDS
        return QgsProcessingParameterBoolean(name, title, default, optional)
    return QgsProcessingParameterString(name, title, literal.default, False, optional)


def input_parameter(spec: Input) -> QgsProcessingParameterDefinition | None:
    """The Processing parameter of a WPS input; None for complex inputs (not supported)."""
    if spec.kind == "literal":
        return _described(_literal_parameter(spec, spec.literal or Literal()), spec)
    if spec.kind == "bbox":
        crss = ", ".join(spec.crss) or "unspecified"
        parameter = QgsProcessingParameterExtent(spec.identifier, spec.title, None,
                                                 spec.optional)
        parameter.setHelp(f"{spec.abstract}\nAny CRS; sent in {crss}.".strip())
        return parameter
    return None


def output_parameter(spec: Output, name: str):
    """The destination parameter (complex outputs) or the output (literal, bbox) of a
    WPS output; the caller adds destinations with addParameter, outputs with addOutput."""
    if spec.kind != "complex":
        return QgsProcessingOutputString(name, spec.title)
    if is_raster_output(spec):
        parameter = QgsProcessingParameterRasterDestination(name, spec.title, None, True, True)
    else:
        base = spec.formats[0].base_type if spec.formats else ""
        filters = FILE_FILTERS.get(base, "All files (*.*)")
        parameter = QgsProcessingParameterFileDestination(name, spec.title, filters, None,
                                                          True, True)
    return _described(parameter, spec)


def _is_set(algorithm, parameters: dict, name: str) -> bool:
    """Whether the user gave a value, or the parameter has a default."""
    value = parameters.get(name)
    if value is not None and value != "":
        return True
    return algorithm.parameterDefinition(name).defaultValue() is not None


def _format_number(value: float, integer: bool) -> str:
    return str(int(round(value))) if integer else repr(float(value))


def literal_value(algorithm, spec: Input, parameters: dict,
                  context: QgsProcessingContext) -> LiteralValue | None:
    """The value to send for a literal input, or None to leave it out (optional, unset)."""
    name = spec.identifier
    if not _is_set(algorithm, parameters, name):
        return None
    definition = algorithm.parameterDefinition(name)
    if isinstance(definition, QgsProcessingParameterEnum):
        value = algorithm.parameterAsEnumString(parameters, name, context)
    elif isinstance(definition, QgsProcessingParameterNumber):
        integer = definition.dataType() == QgsProcessingParameterNumber.Integer
        value = _format_number(
            algorithm.parameterAsInt(parameters, name, context) if integer
            else algorithm.parameterAsDouble(parameters, name, context), integer)
    elif isinstance(definition, QgsProcessingParameterBoolean):
        value = "true" if algorithm.parameterAsBoolean(parameters, name, context) else "false"
    else:
        value = algorithm.parameterAsString(parameters, name, context)
    if value == "" and spec.optional:
        return None
    return LiteralValue(name, value)


def target_crs(crss: tuple[str, ...]) -> tuple[str, QgsCoordinateReferenceSystem]:
    """The first of a bbox input's CRSs (default first) that QGIS knows, with its QGIS CRS.

    Raises
    ------
    WpsError
        QGIS knows none of them.
    """
    for name in crss or ("EPSG:4326",):
        crs = QgsCoordinateReferenceSystem.fromOgcWmsCrs(name)
        if not crs.isValid():
            crs = QgsCoordinateReferenceSystem(name)
        if crs.isValid():
            return name, crs
    raise WpsError(f"QGIS knows none of the bbox CRSs the server supports: {', '.join(crss)}")


def bbox_value(algorithm, spec: Input, parameters: dict,
               context: QgsProcessingContext) -> BBoxValue | None:
    """The extent transformed to the input's CRS, corners in that CRS's axis order (lat,lon
    for EPSG:4326, lon,lat for CRS84); None when an optional extent is not given."""
    name = spec.identifier
    if not _is_set(algorithm, parameters, name):
        return None
    crs_name, crs = target_crs(spec.crss)
    extent = algorithm.parameterAsExtent(parameters, name, context, crs)
    if extent.isNull() or extent.isEmpty():
        if spec.optional:
            return None
        raise WpsError(f"{spec.title}: the extent is empty")
    lower = (extent.xMinimum(), extent.yMinimum())
    upper = (extent.xMaximum(), extent.yMaximum())
    if crs.hasAxisInverted():
        lower, upper = lower[::-1], upper[::-1]
    return BBoxValue(name, lower, upper, crs_name)
