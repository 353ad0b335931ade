"""The Dask path's pieces in-process (no cluster): which halo rows each window's tasks
read, the filter over a read and the rows after it, what travels to and from a worker,
and when the service chooses the Dask path. (The path on a real cluster against the real
MapServer: tests/integration/test_blocks_dask.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from distributed.protocol.pickle import dumps, loads
from hypothesis import given
from hypothesis import strategies as st
from reference import correlate_by_hand, expected_kernel, luminance_by_hand

from devtools.embedded_wms import free_port
from wps_app.cluster import blocks
from wps_app.core import filters, pipeline, wms
from wps_app.core.errors import (
    WmsBadResponse,
    WmsServiceException,
    WmsTimeout,
    WmsUnavailable,
)
from wps_app.core.types import BBox
from wps_app.runtime import Runtime
from wps_app.settings import Settings, read_config
from wps_app.task import EdgeTask

SOURCE = wms.WmsSource("http://127.0.0.1:9/wms", max_block_px=32)


def plan_of(height: int, rows: int, width: int = 40) -> pipeline.WindowPlan:
    request = pipeline.TileRequest("layer", BBox(0.0, 0.0, 0.001 * width, 0.001 * height),
                                   width, height, "sobel_x", "signed")
    halo = wms.grown_by_one_pixel(request.bbox, width, height)
    return pipeline.WindowPlan(request, SOURCE, halo,
                               tuple(pipeline.row_windows(height, rows)), None)


@given(height=st.integers(1, 300), rows=st.integers(1, 80))
def test_each_window_gets_its_halo_rows_and_each_row_is_read_once(height, rows):
    """Window (first, end) is filtered over halo rows [first, end + 2): its own read plus
    the rows it takes from the reads after it; all reads together cover the halo grid's
    height + 2 rows once each."""
    plan = plan_of(height, rows)
    reads = blocks.read_rows_of(plan)
    covered = [row for first, end in reads for row in range(first, end)]
    assert covered == list(range(height + 2))
    for index, (first, end) in enumerate(plan.windows):
        own_first, own_end = reads[index]
        rows_seen = list(range(own_first, own_end))
        for later, count in blocks.tails_of(reads, index):
            rows_seen += list(range(reads[later][0], reads[later][0] + count))
        assert rows_seen == list(range(first, end + 2))


def test_reads_follow_the_wms_block_rows():
    """Windows of the block height read exactly GDAL's block rows of the halo grid (the
    last one also the two rows past them), so no block row is fetched for a halo."""
    reads = blocks.read_rows_of(plan_of(100, 32))
    assert reads == [(0, 32), (32, 64), (64, 96), (96, 102)]


@pytest.mark.parametrize("method", ["sobel_x", "prewitt_magnitude"])
def test_filter_rows_equals_one_call_on_the_whole_window_and_the_kernel(method):
    """A read followed by the rows taken from the next reads gives the gradient of the
    whole halo'd window, bit for bit, and the kernel applied by hand."""
    rng = np.random.default_rng(7)
    bands = rng.integers(0, 256, (4, 50, 37), dtype=np.uint8)
    bands[3] = 255
    bands[3, 20, 5] = 0  # missing data: NaN around it
    read = (bands[:, :40], 0.25)
    gradient, spent = blocks.filter_rows(read, bands[:, 40:41], bands[:, 41:42],
                                         method=method)
    assert gradient.dtype == np.float32 and gradient.shape == (40, 35)
    np.testing.assert_array_equal(gradient, filters.filter_window(bands[:, :42], method))
    lum = luminance_by_hand(bands[:3, :42].astype(np.float64))
    family = method.split("_")[0]
    if method.endswith("magnitude"):
        expected = np.hypot(correlate_by_hand(lum, expected_kernel(f"{family}_x")),
                            correlate_by_hand(lum, expected_kernel(f"{family}_y")))
    else:
        expected = correlate_by_hand(lum, expected_kernel(method))
    expected[18:21, 3:6] = np.nan  # the outputs whose 3x3 holds halo pixel (20, 5)
    np.testing.assert_allclose(gradient, expected, atol=1e-3)
    assert spent["read"] == 0.25 and {"luminance", "filter"} <= spent.keys()


def test_head_rows_is_a_copy():
    bands = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    head = blocks.head_rows((bands, 0.0), 2)
    np.testing.assert_array_equal(head, bands[:, :2])
    assert not np.shares_memory(head, bands)


def test_a_halo_grid_travels_to_a_worker_unchanged():
    """A halo grid reaching past 180 degrees (a one-pixel halo may) pickles as it is."""
    halo = wms.grown_by_one_pixel(BBox(179.9, 10.0, 180.0, 10.1), 100, 100)
    grid = blocks.HaloGrid(SOURCE, "layer", halo, 102, 102, 192)
    back = loads(dumps(grid))
    assert back == grid and back.halo.east > 180.0


@pytest.mark.parametrize("error", [
    WmsBadResponse("status 500", http_status=500, detail="d"),
    WmsServiceException("refused", code="LayerNotDefined", source="sample"),
    WmsTimeout("late"),
])
def test_wms_errors_travel_back_with_their_kind_and_fields(error):
    back = loads(dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert back.__dict__ == error.__dict__


def test_a_workers_read_error_has_no_unpicklable_cause():
    """A read that fails on a worker raises the WmsError without GDAL's exceptions
    behind it (Dask would otherwise send back a plain Exception)."""
    source = wms.WmsSource(f"http://127.0.0.1:{free_port()}/wms", timeout_s=2, retries=0)
    halo = BBox(0.0, 0.0, 0.01, 0.01)
    with pytest.raises(WmsUnavailable) as caught:
        blocks.read_halo_rows(blocks.HaloGrid(source, "layer", halo, 12, 12, None), 0, 12)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert type(loads(dumps(caught.value))) is WmsUnavailable


# --- settings and the choice of path --------------------------------------------------


def settings_of(values: dict) -> Settings:
    cfg = read_config([], {})
    cfg.read_dict(values)
    return Settings.from_parser(cfg)


def test_dask_settings_are_read():
    settings = settings_of({"processing": {"mode": "dask", "dask_above_px": "1000",
                                           "dask_scheduler": "tcp://127.0.0.1:8786"}})
    assert (settings.processing_mode, settings.dask_scheduler, settings.dask_above_px) == (
        "dask", "tcp://127.0.0.1:8786", 1000)


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "http://127.0.0.1:8786",
                                     "tcp://127.0.0.1", "tcp://:8786"])
def test_a_scheduler_address_needs_a_scheme_host_and_port(address):
    with pytest.raises(ValueError, match="dask_scheduler"):
        settings_of({"processing": {"dask_scheduler": address}})


def request_of(width: int, height: int) -> pipeline.TileRequest:
    return pipeline.TileRequest("layer", BBox(0.0, 0.0, 1.0, 1.0), width, height, "sobel_x",
                                "signed")


@pytest.mark.parametrize("processing, width, height, on_dask", [
    ({"mode": "dask", "dask_scheduler": "tcp://127.0.0.1:1", "dask_above_px": 100}, 10, 11,
     True),
    ({"mode": "dask", "dask_scheduler": "tcp://127.0.0.1:1", "dask_above_px": 100}, 10, 10,
     False),  # at the threshold: this host
    ({"mode": "detachprocessing", "dask_scheduler": "tcp://127.0.0.1:1",
      "dask_above_px": 100}, 10, 11, False),
])
def test_requests_above_the_threshold_run_on_dask_in_dask_mode(processing, width, height,
                                                                on_dask):
    """Choosing connects nothing: the runner connects when the request runs."""
    task = EdgeTask(Runtime(settings_of({"processing": processing}), {}, None))
    runner = task.windows_on(request_of(width, height))
    assert isinstance(runner, blocks.DaskWindows) == on_dask
    assert on_dask or runner is None
