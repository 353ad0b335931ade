"""Filters against values computed independently: ramps with known slopes, kernels by hand."""

from __future__ import annotations

import numpy as np
import pytest
from reference import TUTORIAL, correlate_by_hand, expected_kernel, luminance_by_hand, rgba

from wps_app.core import filters

# The tutorial's coefficient lists, as PIL applies them: PIL flips rows, so its y kernels
# act as the row-reversed lists below when correlated with row 0 = north.


@pytest.fixture
def random_rgba() -> np.ndarray:
    rng = np.random.default_rng(7)
    bands = rng.integers(0, 256, size=(4, 42, 57), dtype=np.uint8)
    bands[3] = 255
    return bands


@pytest.mark.parametrize("method", sorted(TUTORIAL))
def test_kernel_is_the_tutorials_with_rows_as_pil_applies_them(method):
    """Our correlation kernels equal the tutorial's lists (y rows reversed, as under PIL)."""
    np.testing.assert_array_equal(filters.kernel(method), expected_kernel(method))


@pytest.mark.parametrize("method", sorted(TUTORIAL))
def test_filter_matches_kernel_applied_by_hand(random_rgba, method):
    """Every output pixel, borders included, equals the 3x3 sum computed with numpy."""
    expected = correlate_by_hand(luminance_by_hand(random_rgba), expected_kernel(method))
    result = filters.filter_bands(random_rgba, method)
    assert result.dtype == np.float32
    assert result.shape == (40, 55)
    np.testing.assert_allclose(result, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("family", ["sobel", "prewitt"])
def test_magnitude_is_hypot_of_hand_computed_gradients(random_rgba, family):
    lum = luminance_by_hand(random_rgba)
    gx = correlate_by_hand(lum, expected_kernel(f"{family}_x"))
    gy = correlate_by_hand(lum, expected_kernel(f"{family}_y"))
    result = filters.filter_bands(random_rgba, f"{family}_magnitude")
    np.testing.assert_allclose(result, np.sqrt(gx**2 + gy**2), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("method", "eastward", "northward"),
    [("sobel", 8.0, 0.0), ("prewitt", 6.0, 0.0)],
)
def test_eastward_ramp_is_positive_in_x_and_zero_in_y(method, eastward, northward):
    """Brightness rising 1 level per pixel eastward: x = 2 * (sum of smoothing weights)."""
    cols = np.arange(30, dtype=np.float64)
    grey = np.tile(10 + 3 * cols, (20, 1))
    bands = rgba(grey)
    np.testing.assert_allclose(filters.filter_bands(bands, f"{method}_x"), 3 * eastward, atol=1e-3)
    np.testing.assert_allclose(filters.filter_bands(bands, f"{method}_y"), northward, atol=1e-3)


@pytest.mark.parametrize(("method", "slope_response"), [("sobel", 8.0), ("prewitt", 6.0)])
def test_northward_ramp_is_positive_in_y(method, slope_response):
    """Row 0 is north: brightness falling with row index rises northward, so y > 0."""
    rows = np.arange(25, dtype=np.float64)[:, None]
    grey = np.tile(200 - 5 * rows, (1, 18))
    bands = rgba(grey)
    np.testing.assert_allclose(
        filters.filter_bands(bands, f"{method}_y"), 5 * slope_response, atol=1e-3
    )
    np.testing.assert_allclose(filters.filter_bands(bands, f"{method}_x"), 0.0, atol=1e-3)


def test_negative_gradients_keep_their_sign():
    """A westward-rising ramp gives negative x values (the tutorial clipped them to 0)."""
    grey = np.tile(250 - 4 * np.arange(20, dtype=np.float64), (10, 1))
    result = filters.filter_bands(rgba(grey), "sobel_x")
    np.testing.assert_allclose(result, -32.0, atol=1e-3)


def test_pixels_touching_missing_data_are_nan(random_rgba):
    """Alpha 0 at one pixel makes exactly its 3x3 neighbourhood NaN in the output."""
    bands = random_rgba.copy()
    bands[3, 20, 30] = 0  # halo coordinates; output pixel (19, 29)
    result = filters.filter_bands(bands, "sobel_x")
    nan_rows, nan_cols = np.nonzero(np.isnan(result))
    assert set(zip(nan_rows.tolist(), nan_cols.tolist(), strict=True)) == {
        (r, c) for r in (18, 19, 20) for c in (28, 29, 30)
    }


def test_luminance_weights():
    bands = np.array([[[255]], [[0]], [[0]]], dtype=np.uint8)
    assert filters.luminance(bands)[0, 0] == pytest.approx(0.299 * 255, abs=1e-4)
    bands = np.array([[[10]], [[20]], [[30]]], dtype=np.uint8)
    assert filters.luminance(bands)[0, 0] == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("sobel_x", 1020.0), ("sobel_y", 1020.0), ("prewitt_x", 765.0), ("prewitt_y", 765.0)],
)
def test_max_response_of_directional_kernels(method, expected):
    assert filters.max_response(method) == expected


@pytest.mark.parametrize("family", ["sobel", "prewitt"])
def test_max_response_of_magnitude_bounds_random_and_reaches_a_corner(family):
    """No neighbourhood exceeds it, and a step edge on a diagonal corner reaches it."""
    method = f"{family}_magnitude"
    bound = filters.max_response(method)
    rng = np.random.default_rng(3)
    bands = rgba(rng.integers(0, 256, size=(300, 300)))
    assert np.nanmax(filters.filter_bands(bands, method)) <= bound + 1e-3
    # The best corner: the north-west triangle of the 3x3 neighbourhood bright.
    best = 0.0
    for mask in range(512):
        cells = np.array([(mask >> i) & 1 for i in range(9)], dtype=np.float64).reshape(3, 3)
        nb = 255.0 * cells
        gx = (expected_kernel(f"{family}_x") * nb).sum()
        gy = (expected_kernel(f"{family}_y") * nb).sum()
        best = max(best, float(np.hypot(gx, gy)))
    assert bound == pytest.approx(best)
    assert bound < np.sqrt(2) * filters.max_response(f"{family}_x")


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        filters.gradient(np.zeros((3, 3), np.float32), "laplace")
