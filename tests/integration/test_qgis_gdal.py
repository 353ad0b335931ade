"""Outputs as GIS users open them: a headless QGIS (Debian python3-qgis) and gdalinfo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from rasterio.windows import Window
from rasters import execute_bbox, gdalinfo
from reference import aligned

SUPPORT = Path(__file__).resolve().parent.parent / "support"
QGIS_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def job(wps, sample, tmp_path_factory):
    """One request's outputs: the GeoTIFF URL and the PNG downloaded with its sidecars."""
    bounds = aligned(sample, 1700, 1900, 240, 160)
    refs = execute_bbox(wps, bounds, 240, 160, "sobel_magnitude",
                        outputs=(("image", "image/png"), ("geotiff", "image/tiff")))
    folder = tmp_path_factory.mktemp("downloads")
    png_url = refs["image"]
    for url, name in ((refs["geotiff"], "g.tif"), (png_url, "g.png"),
                      (png_url + ".aux.xml", "g.png.aux.xml"), (png_url[:-4] + ".pgw", "g.pgw")):
        (folder / name).write_bytes(requests.get(url, timeout=60).content)
    return {"bounds": bounds, "size": (240, 160), "folder": folder, "refs": refs}


def run_qgis(sources: list[str], home: Path) -> list[dict]:
    runtime = home / "xdg"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_RUNTIME_DIR=str(runtime), PYTHONPATH="")
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([QGIS_PYTHON, str(SUPPORT / "qgis_check.py"), *sources],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_placed(layer: dict, bounds, size) -> None:
    west, south, east, north = bounds
    half_x = (east - west) / size[0] / 2
    half_y = (north - south) / size[1] / 2
    assert layer["valid"], layer
    assert layer["crs"] == "EPSG:4326", layer
    xmin, ymin, xmax, ymax = layer["extent"]
    assert abs(xmin - west) < half_x and abs(xmax - east) < half_x, layer
    assert abs(ymin - south) < half_y and abs(ymax - north) < half_y, layer
    assert layer["size"] == list(size)


def test_qgis_loads_geotiff_png_and_vsicurl(job, tmp_path):
    folder = job["folder"]
    layers = run_qgis([str(folder / "g.tif"), str(folder / "g.png"),
                       "/vsicurl/" + job["refs"]["geotiff"]], tmp_path)
    for layer in layers:
        assert_placed(layer, job["bounds"], job["size"])


@pytest.mark.parametrize(("name", "band_types"), [("g.tif", ["Float32"]),
                                                   ("g.png", ["Byte"])])
def test_gdalinfo_on_each_output(job, name, band_types):
    info = gdalinfo(job["folder"] / name)
    assert 'ID["EPSG",4326]' in info["coordinateSystem"]["wkt"]
    west, south, east, north = job["bounds"]
    width, height = job["size"]
    assert info["geoTransform"] == pytest.approx(
        [west, (east - west) / width, 0.0, north, 0.0, -(north - south) / height], rel=1e-12)
    assert [b["type"] for b in info["bands"]] == band_types
    assert info["size"] == [width, height]


def test_gdalinfo_by_url(job):
    info = gdalinfo("/vsicurl/" + job["refs"]["geotiff"])
    assert info["bands"][0]["type"] == "Float32"
    assert 'ID["EPSG",4326]' in info["coordinateSystem"]["wkt"]


@pytest.fixture(scope="module")
def large_job(wps, sample):
    """A GeoTIFF of several megabytes, by reference: GDAL reads it by HTTP ranges."""
    bounds = aligned(sample, 900, 900, 1536, 1536)
    refs = execute_bbox(wps, bounds, 1536, 1536, "sobel_x")
    return bounds, refs["geotiff"]


def test_gdal_reads_a_window_of_a_large_output_by_url(large_job, tmp_path):
    """gdal_translate over /vsicurl/ gets exactly the pixels of the downloaded file."""
    bounds, url = large_job
    size = int(requests.head(url, timeout=30).headers["Content-Length"])
    assert size > 2 * 1024 * 1024
    window = tmp_path / "window.tif"
    subprocess.run(["gdal_translate", "-q", "-srcwin", "700", "650", "96", "64",
                    "/vsicurl/" + url, str(window)], check=True, timeout=120,
                   env=dict(os.environ, CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif"))
    whole = tmp_path / "whole.tif"
    whole.write_bytes(requests.get(url, timeout=60).content)
    with rasterio.open(window) as part, rasterio.open(whole) as full:
        expected = full.read(1, window=Window(700, 650, 96, 64))
        assert np.array_equal(part.read(1), expected, equal_nan=True)
        assert part.crs.to_epsg() == 4326


def test_qgis_adds_a_large_output_by_url(large_job, tmp_path):
    bounds, url = large_job
    (layer,) = run_qgis(["/vsicurl/" + url], tmp_path)
    assert_placed(layer, bounds, (1536, 1536))
