"""Real WPS clients drive the running service: OWSLib and birdy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from owslib.wps import ASYNC, SYNC, BoundingBoxDataInput, WebProcessingService
from waiting import wait_until

LAT, LON = "45.5539", "-73.4933"


def check_geotiff(path: Path, shape=(512, 512)) -> None:
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.shape == shape and ds.dtypes == ("float32",)
        assert np.isfinite(ds.read(1)).any()


def check_png(path: Path) -> None:
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_owslib_capabilities_and_description(wps):
    service = WebProcessingService(wps.url, skip_caps=False)
    assert [p.identifier for p in service.processes] == ["get_raster_process"]
    process = service.describeprocess("get_raster_process")
    inputs = {i.identifier: i for i in process.dataInputs}
    assert "sample_city" in inputs["wms"].allowedValues
    assert "sobel_magnitude" in inputs["method"].allowedValues
    assert {o.identifier for o in process.processOutputs} == {"image", "geotiff"}


def run_owslib(wps, mode, tmp_path: Path) -> None:
    service = WebProcessingService(wps.url, skip_caps=True)
    execution = service.execute(
        "get_raster_process",
        inputs=[("wms", "sample_city"), ("lat", LAT), ("lon", LON),
                ("method", "sobel_magnitude")],
        output=[("image", True, "image/png"), ("geotiff", True, "image/tiff")],
        mode=mode,
    )
    if mode == ASYNC:
        assert execution.statusLocation

        def complete() -> bool:  # owslib's monitorExecution, with a deadline
            execution.checkStatus(sleepSecs=0)
            return execution.isComplete()

        wait_until(complete, 60, lambda: f"OWSLib to see the job end ({execution.status})",
                   interval_s=0.2)
    assert execution.isSucceded(), execution.errors
    outputs = {o.identifier: o for o in execution.processOutputs}
    # writeToDisk joins strings: a directory path must end with '/'
    outputs["geotiff"].writeToDisk(path=str(tmp_path) + "/")
    outputs["image"].writeToDisk(path=str(tmp_path) + "/")
    check_geotiff(tmp_path / "sobel_magnitude.tif")
    check_png(tmp_path / "sobel_magnitude.png")


def test_owslib_execute_sync(wps, tmp_path):
    run_owslib(wps, SYNC, tmp_path)


def test_owslib_execute_async(wps, tmp_path):
    run_owslib(wps, ASYNC, tmp_path)


def test_owslib_bbox_input(wps, tmp_path):
    """OWSLib sends a BoundingBox in EPSG:4326 as lat,lon; the output covers that bbox."""
    service = WebProcessingService(wps.url, skip_caps=True)
    bbox = BoundingBoxDataInput([45.5535, -73.4940, 45.5545, -73.4930], crs="EPSG:4326")
    execution = service.execute(
        "get_raster_process",
        inputs=[("wms", "sample_city"), ("bbox", bbox), ("width", "200"), ("height", "100")],
        output=[("geotiff", True, "image/tiff")], mode=SYNC)
    assert execution.isSucceded(), execution.errors
    assert [o.identifier for o in execution.processOutputs] == ["geotiff"]  # only the asked
    execution.processOutputs[0].writeToDisk(path=str(tmp_path) + "/")
    with rasterio.open(tmp_path / "sobel_x.tif") as ds:
        assert ds.shape == (100, 200)
        assert ds.bounds.left == -73.4940 and ds.bounds.top == 45.5545
        assert abs(ds.bounds.right + 73.4930) < 1e-12 and abs(ds.bounds.bottom - 45.5535) < 1e-12


def test_birdy_calls_the_process_as_a_function(wps, tmp_path):
    """birdy.WPSClient: the process is a Python function with keyword arguments."""
    from birdy import WPSClient

    client = WPSClient(wps.url, progress=False)
    # birdy 0.10 fills an omitted optional BoundingBox input with its default CRS string and
    # then fails on it; passing bbox=None leaves it out of the request.
    result = client.get_raster_process(wms="sample_city", lat=float(LAT), lon=float(LON),
                                       method="prewitt_y", bbox=None)
    assert result.isSucceded()
    geotiff_url = result.get(asobj=False).geotiff
    local = tmp_path / "birdy.tif"
    import requests

    local.write_bytes(requests.get(geotiff_url, timeout=60).content)
    check_geotiff(local)
