"""Large requests on Dask workers (wps_app.cluster.blocks) against the real embedded
MapServer: the same outputs as the single-host path, the same GetMaps, WMS errors that
keep their kind across the workers, and the service choosing Dask from its settings.

The cluster is a dask.distributed LocalCluster of two worker processes (one thread each)
on 127.0.0.1; each worker opens its own GDAL WMS dataset."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import rasterio
from reference import aligned, expected_gradient
from waiting import wait_until

from wps_app.cluster.blocks import DaskWindows, dask_windows
from wps_app.core import pipeline, wms
from wps_app.core.errors import WmsBadResponse
from wps_app.core.types import BBox, RenderOptions

BLOCK_PX = 128
MANY_WINDOWS = RenderOptions(stream_above_px=0)  # windows of BLOCK_PX rows


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    # the dashboard on a loopback port the kernel picks (its default, 8787, may be taken)
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local, Client(local) as client:
        client.wait_for_workers(2, timeout=60)
        yield local, client


@pytest.fixture
def counting_proxy(wms_server):
    """A pass-through proxy in front of the embedded MapServer that counts GetMaps."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port)
    yield proxy
    proxy.close()


def request_over(sample, col, row, width, height, method="sobel_x", **fields):
    return pipeline.TileRequest("sample_city", BBox(*aligned(sample, col, row, width, height)),
                                width, height, method, fields.pop("stretch", "signed"),
                                source=fields.pop("source", "sample"), **fields)


def render(request, url, folder, **kwargs):
    folder.mkdir()
    source = wms.WmsSource(url, max_block_px=BLOCK_PX, retries=kwargs.pop("retries", 2))
    return pipeline.render(request, source, MANY_WINDOWS, folder, **kwargs)


def decoded(result):
    """Everything a client sees of the outputs: pixels, georeferencing, tags, layout."""
    with rasterio.open(result.geotiff) as tif, rasterio.open(result.png) as png:
        return {"geotiff": tif.read(), "png": png.read(), "transforms": (tif.transform,
                png.transform), "crs": (tif.crs.to_epsg(), png.crs.to_epsg()),
                "tags": tif.tags(), "layout": tif.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
                "nodata": repr(tif.nodata), "dtype": tif.dtypes, "overviews": tif.overviews(1),
                "sidecars": sorted(p.name for p in result.png_sidecars)}


def assert_same(local, dask):
    for key in local:
        if key in ("geotiff", "png"):
            np.testing.assert_array_equal(dask[key], local[key], err_msg=key)  # NaN == NaN
        else:
            assert dask[key] == local[key], key


@pytest.mark.parametrize("window, method, cog", [
    ((1500, 1300, 700, 530), "sobel_magnitude", False),
    # across the sample's western edge: NaN and alpha where MapServer is transparent
    ((-60, 900, 300, 261), "prewitt_y", True),
])
def test_dask_outputs_equal_the_local_paths(cluster, wms_server, sample, tmp_path, window,
                                            method, cog):
    """Decoded GeoTIFF and PNG pixels, transforms, CRS, tags (and COG layout) are the same
    through the Dask workers as on this host; both equal the kernel applied by hand."""
    _, client = cluster
    request = request_over(sample, *window, method=method, cog=cog)
    local = decoded(render(request, wms_server.url, tmp_path / "local"))
    dask = decoded(render(request, wms_server.url, tmp_path / "dask",
                          windows_on=DaskWindows(lambda: nullcontext(client))))
    assert_same(local, dask)
    assert dask["crs"] == (4326, 4326)
    assert dask["tags"]["METHOD"] == method and dask["tags"]["WMS_SOURCE"] == "sample"
    col, row, width, height = window
    if col >= 1:  # inside the sample: the reference read straight from data/
        np.testing.assert_allclose(dask["geotiff"][0], expected_gradient(
            sample, method, *window), atol=1e-3)
    else:
        assert np.isnan(dask["geotiff"][0][:, : -col]).all()
        assert np.isfinite(dask["geotiff"][0][:, -col + 1:]).all()


def test_every_window_ran_on_the_workers_and_each_block_was_fetched_once(
        cluster, counting_proxy, sample, tmp_path):
    """One read and one filter task per window, on the cluster's workers; the Dask path
    sends MapServer exactly the GetMaps the local path sends (no block read twice for a
    halo)."""
    from distributed import get_task_stream

    _, client = cluster
    request = request_over(sample, 1000, 700, 530, 700, method="sobel_y")
    windows = len(list(pipeline.row_windows(700, BLOCK_PX)))
    render(request, counting_proxy.url, tmp_path / "local")
    local_getmaps, counting_proxy.getmaps = counting_proxy.getmaps, 0
    with get_task_stream(client) as stream:
        render(request, counting_proxy.url, tmp_path / "dask",
               windows_on=DaskWindows(lambda: nullcontext(client)))
    assert counting_proxy.getmaps == local_getmaps
    # halo grid of 702 rows in 6 block rows of 128, each 5 blocks of 128 across 532
    assert local_getmaps == 6 * 5
    ran = {}
    for task in stream.data:
        prefix = task["key"].split("-")[1] if task["key"].startswith("edge-") else "other"
        ran.setdefault(prefix, []).append(task["worker"])
    assert len(ran["read"]) == windows and len(ran["filter"]) == windows
    workers = set(client.scheduler_info()["workers"])
    assert set(ran["read"]) | set(ran["filter"]) <= workers


def test_a_wms_error_on_a_worker_keeps_its_kind(cluster, counting_proxy, sample, tmp_path):
    """MapServer failing (HTTP 500) under a worker's read: the caller gets the core's
    WmsBadResponse with its status, as on this host, and nothing is left submitted."""
    _, client = cluster
    counting_proxy.mode = "http500"
    request = request_over(sample, 1000, 700, 300, 300)
    status = None
    try:
        render(request, counting_proxy.url, tmp_path / "dask", retries=0,
               windows_on=DaskWindows(lambda: nullcontext(client)))
    except WmsBadResponse as error:
        status = error.http_status
    assert status == 500
    assert not list((tmp_path / "dask").iterdir())  # the writers removed their files
    wait_until(lambda: not client.run_on_scheduler(_edge_tasks), 30,
               "the failed request's tasks to be released")


def test_the_service_runs_large_requests_on_dask(cluster, wms_server, sample, tmp_path_factory):
    """[processing] mode = dask with dask_scheduler and dask_above_px: a request above the
    threshold runs its windows on the cluster, with the same GeoTIFF as a service on one
    host; one at the threshold stays on the host."""
    from distributed import get_task_stream
    from keyed import start_keyed_wps as start_wps
    from rasters import execute_bbox, read_url

    local_cluster, client = cluster
    overrides = {"wms": {"block_px": BLOCK_PX},
                 "limits": {"stream_above_px": 0},
                 "processing": {"mode": "dask", "dask_scheduler":
                                local_cluster.scheduler_address,
                                "dask_above_px": 300 * 200}}
    on_dask = start_wps(tmp_path_factory.mktemp("wps-dask"), wms_server.url, workers=1,
                        overrides=overrides)
    on_host = start_wps(tmp_path_factory.mktemp("wps-host"), wms_server.url, workers=1,
                        overrides={k: v for k, v in overrides.items() if k != "processing"})
    try:
        bounds = aligned(sample, 1200, 1100, 300, 201)
        with get_task_stream(client) as stream:
            dask = read_url(execute_bbox(on_dask, bounds, 300, 201, "sobel_x")["geotiff"])
        host = read_url(execute_bbox(on_host, bounds, 300, 201, "sobel_x")["geotiff"])
        np.testing.assert_array_equal(dask[0], host[0])
        assert dask[1:] == host[1:]  # transform, CRS, tags
        assert sum(t["key"].startswith("edge-filter-") for t in stream.data) == 2
        with get_task_stream(client) as stream:
            execute_bbox(on_dask, aligned(sample, 1200, 1100, 300, 200), 300, 200, "sobel_x")
        assert not [t for t in stream.data if t["key"].startswith("edge-")]
    finally:
        on_dask.stop()
        on_host.stop()


def test_dask_windows_connects_by_address(cluster, wms_server, sample, tmp_path):
    """dask_windows(address) connects this process's own client to the scheduler."""
    local_cluster, _ = cluster
    request = request_over(sample, 2000, 2000, 200, 300, method="prewitt_magnitude")
    local = decoded(render(request, wms_server.url, tmp_path / "local"))
    dask = decoded(render(request, wms_server.url, tmp_path / "dask",
                          windows_on=dask_windows(local_cluster.scheduler_address)))
    assert_same(local, dask)


def _edge_tasks(dask_scheduler) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks if str(key).startswith("edge-")]


def test_a_request_running_on_a_worker_runs_its_windows_on_the_cluster(
        cluster, wms_server, sample, tmp_path):
    """An async job runs on a Dask worker: its render, there, submits its windows through
    the worker's own client (seceding from its thread, so both one-thread workers stay
    available) and writes the same outputs as on this host."""
    from distributed import get_task_stream

    local_cluster, client = cluster
    request = request_over(sample, 900, 1900, 260, 400, method="sobel_y", cog=True)
    local = decoded(render(request, wms_server.url, tmp_path / "local"))
    folder = tmp_path / "on-worker"
    folder.mkdir()
    source = wms.WmsSource(wms_server.url, max_block_px=BLOCK_PX)
    with get_task_stream(client) as stream:
        job = client.submit(pipeline.render, request, source, MANY_WINDOWS, folder,
                            windows_on=dask_windows(local_cluster.scheduler_address))
        result = job.result(timeout=120)
    assert_same(local, decoded(result))
    filters_run = [t for t in stream.data if t["key"].startswith("edge-filter-")]
    assert len(filters_run) == len(list(pipeline.row_windows(400, BLOCK_PX)))


def test_jobs_and_windows_share_one_client_per_process(cluster):
    """An instance holds one connection to the scheduler: the client that submits async
    jobs is the one large requests run their windows on."""
    from wps_app.cluster.blocks import shared_client
    from wps_app.cluster.submit import DaskJobs

    address = cluster[0].scheduler_address
    assert DaskJobs(address).client() is shared_client(address)
