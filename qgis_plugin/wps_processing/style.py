"""The style of the edge-filter service's GeoTIFFs, built on the QGIS side (plain Python).

A GeoTIFF whose METHOD tag names a Sobel or Prewitt method gets a fixed colour ramp:
diverging from -M through 0 to +M for x/y gradients, sequential over 0..M for magnitudes,
where M is the largest response the method can give on 8-bit input; nodata is
transparent. It is the style the service publishes as `name.qml` beside each GeoTIFF
(wps_app/core/styles.py; a unit test of the repository checks both give the same text).
"""

from __future__ import annotations

import itertools
import math
from xml.sax.saxutils import quoteattr

# smoothing profile across the derivative; the derivative is (-1, 0, 1)
SMOOTHING = {"sobel": (1.0, 2.0, 1.0), "prewitt": (1.0, 1.0, 1.0)}
AXES = ("x", "y", "magnitude")
# (fraction of the range from its low end, colour): ColorBrewer RdBu, matplotlib magma
DIVERGING = ((0.0, "#2166ac"), (0.25, "#92c5de"), (0.5, "#f7f7f7"), (0.75, "#f4a582"),
             (1.0, "#b2182b"))
SEQUENTIAL = ((0.0, "#000004"), (0.25, "#51127c"), (0.5, "#b73779"), (0.75, "#fc8961"),
              (1.0, "#fcfdbf"))

Stops = tuple[tuple[float, str], ...]


def is_method(name: str | None) -> bool:
    """Whether `name` is one of the service's methods (sobel_x ... prewitt_magnitude)."""
    family, _, axis = (name or "").partition("_")
    return family in SMOOTHING and axis in AXES


def _kernels(family: str) -> tuple[list[float], list[float]]:
    """The x and y 3x3 kernels of a family, flattened row by row (row 0 = north)."""
    smooth, deriv = SMOOTHING[family], (-1.0, 0.0, 1.0)
    kx = [s * d for s in smooth for d in deriv]
    ky = [d * s for d in reversed(deriv) for s in smooth]
    return kx, ky


def max_response(method: str) -> float:
    """The largest |response| of `method` on 0..255 input: 255 times the positive weights
    of a directional kernel; for a magnitude, the largest over the 512 neighbourhoods of
    0s and 255s (the norm is convex, so its maximum lies on such a corner)."""
    if not is_method(method):
        raise ValueError(f"unknown method {method!r}")
    family, _, axis = method.partition("_")
    kx, ky = _kernels(family)
    if axis != "magnitude":
        return 255.0 * sum(w for w in (kx if axis == "x" else ky) if w > 0)
    best = 0.0
    for corner in itertools.product((0.0, 255.0), repeat=9):
        gx = sum(w * v for w, v in zip(kx, corner, strict=True))
        gy = sum(w * v for w, v in zip(ky, corner, strict=True))
        best = max(best, math.sqrt(gx * gx + gy * gy))
    return best


def ramp_for(method: str) -> Stops:
    """(value, colour) stops: -M..+M diverging for x/y methods, 0..M for magnitudes."""
    m = max_response(method)
    if not method.endswith("_magnitude"):
        return tuple((-m + 2.0 * m * f, color) for f, color in DIVERGING)
    return tuple((m * f, color) for f, color in SEQUENTIAL)


def _number(value: float) -> str:
    return "0" if value == 0 else repr(float(value))


def qml(stops: Stops) -> str:
    """QGIS style text for band 1: an interpolated pseudocolor ramp through `stops`, fixed
    limits, nodata transparent."""
    low, high = _number(stops[0][0]), _number(stops[-1][0])
    items = "\n".join(
        f'          <item value="{_number(v)}" color="{c}" alpha="255" '
        f"label={quoteattr(f'{v:g}')}/>"
        for v, c in stops
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


def qml_for(method: str) -> str:
    """The style of a GeoTIFF filtered with `method`."""
    return qml(ramp_for(method))
