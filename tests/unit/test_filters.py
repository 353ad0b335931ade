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


# --- the tiled, threaded filter (filter_window) ----------------------------------------


@pytest.mark.parametrize("method", ["sobel_y", "prewitt_x", "prewitt_magnitude"])
def test_tiled_filter_equals_whole_array_bit_for_bit(method, monkeypatch):
    """filter_window's tiles on two threads, forced small on a small array so that missing
    data and uneven last tiles fall across tile borders both ways."""
    monkeypatch.setattr(filters, "SMALL_PX", 0)
    monkeypatch.setattr(filters, "TILE_ROWS", 64)
    monkeypatch.setattr(filters, "TILE_COLS", 48)
    rng = np.random.default_rng(9)
    bands = rng.integers(0, 256, size=(4, 300 + 2, 120 + 2), dtype=np.uint8)
    bands[3] = 255
    bands[3, 60:70, 40:50] = 0  # missing data across a row border (64) and a column one (48)
    tiled = filters.filter_window(bands, method)
    assert tiled.dtype == np.float32 and tiled.shape == (300, 120)
    np.testing.assert_array_equal(tiled, filters.filter_bands(bands, method))
    # The hole is output rows 59-68, columns 39-48; NaN spreads to their 3x3 neighbours.
    assert np.isnan(tiled[58:70, 38:50]).all()
    assert not np.isnan(tiled[57, :]).any() and not np.isnan(tiled[70, :]).any()
    assert not np.isnan(tiled[:, 37]).any() and not np.isnan(tiled[:, 50]).any()


def test_tiled_filter_matches_the_kernel_by_hand(monkeypatch):
    """Tiles of 16x16 on two threads: every pixel still equals the 3x3 sum by hand."""
    monkeypatch.setattr(filters, "SMALL_PX", 0)
    monkeypatch.setattr(filters, "TILE_ROWS", 16)
    monkeypatch.setattr(filters, "TILE_COLS", 16)
    bands = np.random.default_rng(4).integers(0, 256, size=(3, 52, 41), dtype=np.uint8)
    expected = correlate_by_hand(luminance_by_hand(bands), expected_kernel("prewitt_y"))
    np.testing.assert_allclose(filters.filter_window(bands, "prewitt_y"), expected,
                               atol=1e-3, rtol=0)


def test_default_tiles_equal_whole_array_bit_for_bit():
    rng = np.random.default_rng(10)
    big = rng.integers(0, 256, size=(3, 1100, 1100), dtype=np.uint8)
    np.testing.assert_array_equal(filters.filter_window(big, "sobel_magnitude"),
                                  filters.filter_bands(big, "sobel_magnitude"))
    lum = filters.luminance(big)  # luminance given directly, as bench/core.py times it
    out = np.full((1098, 1098), -1.0, np.float32)
    assert filters.filter_window(lum, "prewitt_y", out) is out
    np.testing.assert_array_equal(out, filters.filter_luminance(lum, "prewitt_y"))


def test_workspace_reused_across_shapes():
    """A thread's workspace serves a smaller tile after a larger one from the same memory
    and the results do not depend on what was left in it."""
    rng = np.random.default_rng(11)
    workspace = filters.Workspace()
    large = rng.integers(0, 256, size=(3, 40, 50), dtype=np.uint8)
    small = rng.integers(0, 256, size=(1, 12, 30), dtype=np.uint8)
    first = filters.filter_bands(large, "sobel_x", workspace=workspace)
    kept = workspace.arrays((40, 50), 4)[0].__array_interface__["data"][0]
    np.testing.assert_array_equal(filters.filter_bands(small, "prewitt_magnitude",
                                                       workspace=workspace),
                                  filters.filter_bands(small, "prewitt_magnitude"))
    assert workspace.arrays((12, 30), 4)[0].__array_interface__["data"][0] == kept
    np.testing.assert_array_equal(first, filters.filter_bands(large, "sobel_x"))


def test_thread_pool_is_made_again_in_a_forked_child(monkeypatch):
    """An async job runs in a forked process, whose inherited pool has no threads."""
    pool = filters._thread_pool()
    assert filters._thread_pool() is pool
    monkeypatch.setattr(filters.os, "getpid", lambda: -1)
    assert filters._thread_pool() is not pool


# --- stage timings: arithmetic, with an injected clock -----------------------------


def test_wall_time_is_split_in_proportion_to_thread_seconds():
    """Two threads spent 1+3 s on luminance and 5+7 s filtering: a 4 s wall splits 1:3."""
    assert filters.split_wall_time(4.0, [(1.0, 5.0), (3.0, 7.0)]) == (1.0, 3.0)
    assert filters.split_wall_time(2.0, [(0.0, 0.0)]) == (0.0, 2.0)
    assert filters.split_wall_time(0.0, []) == (0.0, 0.0)


class TickClock:
    """A clock that advances by the next of `steps` seconds at each reading."""

    def __init__(self, *steps: float) -> None:
        self.steps, self.now = list(steps), 0.0

    def __call__(self) -> float:
        self.now += self.steps.pop(0)
        return self.now


def test_window_timings_add_the_split_seconds(random_rgba):
    """One tile: readings at 0 (start), 1 and 2 (luminance), 5 (filter), 8 (end): the 8 s
    wall splits as luminance 1 : filter 3, added to what `timings` holds."""
    clock = TickClock(0.0, 1.0, 1.0, 3.0, 3.0)
    timings = {"filter": 10.0, "read": 1.0}
    filters.filter_window(random_rgba, "sobel_x", timings=timings, clock=clock)
    assert timings == {"filter": 10.0 + 6.0, "read": 1.0, "luminance": 2.0}
    assert clock.steps == []


def test_luminance_input_costs_no_luminance_time():
    lum = np.zeros((10, 10), np.float32)
    timings: dict[str, float] = {}
    filters.filter_window(lum, "sobel_x", timings=timings, clock=TickClock(0.0, 1.0, 0.0, 4.0, 1.0))
    assert timings == {"luminance": 0.0, "filter": 6.0}


# --- small pieces -----------------------------------------------------------------


def test_magnitude_has_no_single_kernel():
    with pytest.raises(ValueError):
        filters.kernel("sobel_magnitude")


def test_grey_and_grey_alpha_bands_are_their_own_luminance():
    grey_alpha = np.array([[[7, 9]], [[255, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(filters.luminance(grey_alpha), [[7.0, 9.0]])
    assert filters.missing_mask(grey_alpha).tolist() == [[False, True]]
    assert filters.missing_mask(grey_alpha[:1]) is None
    opaque = np.full((4, 2, 2), 255, np.uint8)
    assert filters.missing_mask(opaque) is None


def test_gradient_without_halo_replicates_edges():
    """gradient() on a bare array: a horizontal ramp keeps its slope at the borders, where
    the replicated edge halves the difference."""
    lum = np.tile(np.arange(5, dtype=np.float32) * 10, (3, 1))
    result = filters.gradient(lum, "sobel_x")
    np.testing.assert_allclose(result[:, 1:-1], 80.0)
    np.testing.assert_allclose(result[:, [0, -1]], 40.0)
