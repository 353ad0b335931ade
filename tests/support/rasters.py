"""Synchronous Execute helpers over HTTP: bbox requests, reading outputs, gdalinfo."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import rasterio
import requests
from wpsclient import bbox_input, document_output, execute_body, literal, post, references


def execute_bbox(wps, bounds, width, height, method, outputs=(("geotiff", "image/tiff"),),
                 crs="EPSG:4326"):
    west, south, east, north = bounds
    if crs == "urn:ogc:def:crs:OGC:1.3:CRS84":
        lower, upper = f"{west!r} {south!r}", f"{east!r} {north!r}"
    else:
        lower, upper = f"{south!r} {west!r}", f"{north!r} {east!r}"
    body = execute_body(
        [literal("wms", "sample_city"), bbox_input(lower, upper, crs),
         literal("width", width), literal("height", height), literal("method", method)],
        document_output(*outputs),
    )
    answer = post(wps.url, body)
    assert answer.status_code == 200, answer.text[:600]
    return references(answer)


def read_url(url: str) -> tuple[np.ndarray, rasterio.Affine, object, dict]:
    content = requests.get(url, timeout=60).content
    with rasterio.open(io.BytesIO(content)) as ds:
        return ds.read(1), ds.transform, ds.crs, ds.tags()


def gdalinfo(path: Path) -> dict:
    result = subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)

