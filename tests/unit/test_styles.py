"""The GeoTIFFs' QGIS styles: the ramp's values checked against M computed by hand (kernel
weights) or by brute force (every 0/255 corner of a 3x3 neighbourhood)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from reference import expected_kernel

from wps_app.core import styles
from wps_app.core.types import METHODS

# 255 times the sum of the kernel's positive weights: Sobel 1 + 2 + 1, Prewitt 1 + 1 + 1
BY_HAND = {"sobel_x": 1020.0, "sobel_y": 1020.0, "prewitt_x": 765.0, "prewitt_y": 765.0}


def brute_force_magnitude_max(family: str) -> float:
    """max sqrt(gx^2 + gy^2) over all 512 neighbourhoods of 0s and 255s, in float64."""
    kx = expected_kernel(f"{family}_x").ravel()
    ky = expected_kernel(f"{family}_y").ravel()
    corners = np.array(list(itertools.product((0.0, 255.0), repeat=9)))
    return float(np.sqrt((corners @ kx) ** 2 + (corners @ ky) ** 2).max())


def expected_m(method: str) -> float:
    if method in BY_HAND:
        return BY_HAND[method]
    return brute_force_magnitude_max(method.split("_")[0])


def parse(method: str) -> tuple[ET.Element, list[tuple[float, str]]]:
    root = ET.fromstring(styles.qml_for(method))
    renderer = root.find("./pipe/rasterrenderer")
    items = [(float(i.get("value")), i.get("color"))
             for i in renderer.iterfind("./rastershader/colorrampshader/item")]
    return renderer, items


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@pytest.mark.parametrize("method", ["sobel_x", "sobel_y", "prewitt_x", "prewitt_y"])
def test_signed_methods_get_a_diverging_ramp_centred_on_zero(method):
    """-M, -M/2, 0, M/2, M with M by hand; blue below zero, near white at it, red above."""
    m = BY_HAND[method]
    renderer, items = parse(method)
    assert [v for v, _ in items] == pytest.approx([-m, -m / 2, 0.0, m / 2, m], abs=1e-9)
    (r_low, _, b_low), (r_mid, g_mid, b_mid), (r_high, _, b_high) = (
        rgb(items[0][1]), rgb(items[2][1]), rgb(items[-1][1]))
    assert b_low > r_low and r_high > b_high
    assert min(r_mid, g_mid, b_mid) >= 240
    assert float(renderer.get("classificationMin")) == pytest.approx(-m)
    assert float(renderer.get("classificationMax")) == pytest.approx(m)


@pytest.mark.parametrize("method", ["sobel_magnitude", "prewitt_magnitude"])
def test_magnitudes_get_a_sequential_ramp_from_zero(method):
    """0, M/4, M/2, 3M/4, M with M by brute force; brightness rises along the ramp."""
    m = brute_force_magnitude_max(method.split("_")[0])
    renderer, items = parse(method)
    assert [v for v, _ in items] == pytest.approx([0.0, m / 4, m / 2, 3 * m / 4, m], rel=1e-9)
    luma = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in (rgb(c) for _, c in items)]
    assert luma == sorted(luma) and luma[0] < 10 < 240 < luma[-1]
    assert float(renderer.get("classificationMin")) == 0.0
    assert float(renderer.get("classificationMax")) == pytest.approx(m, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_the_renderer_is_pseudocolor_with_fixed_limits_and_transparent_nodata(method):
    """Band 1, interpolated, limits never recomputed from the data, no nodata colour."""
    renderer, items = parse(method)
    assert renderer.get("type") == "singlebandpseudocolor"
    assert renderer.get("band") == "1"
    assert renderer.get("nodataColor") == ""
    assert renderer.findtext("./minMaxOrigin/limits") == "None"
    shader = renderer.find("./rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    assert float(shader.get("minimumValue")) == items[0][0]
    assert float(shader.get("maximumValue")) == items[-1][0]
    assert all(i.get("alpha") == "255" for i in shader.iterfind("item"))
    assert max(abs(v) for v, _ in items) == pytest.approx(expected_m(method), rel=1e-9)


def test_an_unknown_method_is_refused():
    """A name that is no method raises ValueError (no style for arbitrary rasters)."""
    with pytest.raises(ValueError):
        styles.qml_for("laplace")
