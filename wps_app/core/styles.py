"""QGIS styles (.qml) for the float32 GeoTIFFs: one fixed colour ramp per method.

- x/y methods give signed gradients: a diverging ramp centred on 0, from -M (blue) through
  0 (near white) to +M (red);
- magnitudes are never negative: a sequential ramp over 0..M (dark to light);
- M is the method's largest response on 8-bit input (`filters.max_response`), so tiles of
  one method compare with each other, as the PNG's fixed scales do;
- nodata (NaN) is transparent: the renderer has no nodata colour.

The QML is what QGIS 3.22+ reads for a single-band pseudocolor renderer with fixed limits
(`<limits>None</limits>`: QGIS never re-stretches it to the data). The QGIS plugin in
qgis_plugin/wps_processing builds the same ramp on its side (a unit test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from wps_app.core.filters import max_response
from wps_app.core.types import METHODS, Method

# (fraction of the range from its low end, colour): ColorBrewer RdBu (5 classes, blue for
# negative) and matplotlib's magma at five points.
DIVERGING = ((0.0, "#2166ac"), (0.25, "#92c5de"), (0.5, "#f7f7f7"), (0.75, "#f4a582"),
             (1.0, "#b2182b"))
SEQUENTIAL = ((0.0, "#000004"), (0.25, "#51127c"), (0.5, "#b73779"), (0.75, "#fc8961"),
              (1.0, "#fcfdbf"))


@dataclass(frozen=True)
class RampStop:
    """One colour ramp item: a value in kernel units and its colour (#rrggbb, opaque)."""

    value: float
    color: str


def is_signed(method: Method) -> bool:
    """Whether `method` gives signed values (x/y gradients), not magnitudes."""
    return not method.endswith("_magnitude")


def ramp_for(method: Method) -> tuple[RampStop, ...]:
    """The colour ramp of `method`: -M..+M diverging (signed), 0..M sequential (magnitude).

    Raises
    ------
    ValueError
        For a name that is not a method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    m = max_response(method)
    if is_signed(method):
        return tuple(RampStop(-m + 2.0 * m * f, color) for f, color in DIVERGING)
    return tuple(RampStop(m * f, color) for f, color in SEQUENTIAL)


def _number(value: float) -> str:
    """A float as QGIS reads it back exactly (shortest repr; 0.0 and -0.0 as 0)."""
    return "0" if value == 0 else repr(float(value))


def qml(stops: tuple[RampStop, ...]) -> str:
    """QGIS style text for band 1 of a float raster: an interpolated pseudocolor ramp
    through `stops` (ascending values), fixed limits, nodata transparent."""
    low, high = _number(stops[0].value), _number(stops[-1].value)
    items = "\n".join(
        f'          <item value="{_number(s.value)}" color="{s.color}" alpha="255" '
        f"label={quoteattr(f'{s.value:g}')}/>"
        for s in stops
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" \
nodataColor="" classificationMin="{low}" classificationMax="{high}">
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" \
minimumValue="{low}" maximumValue="{high}" labelPrecision="1">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def qml_for(method: Method) -> str:
    """The QGIS style (.qml text) of a GeoTIFF filtered with `method`.

    Published as `name.qml` beside `name.tif`, QGIS applies it when the file is opened
    from disk (not when a layer is opened by URL).
    """
    return qml(ramp_for(method))
