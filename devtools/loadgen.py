"""A bounded load generator for the WPS on loopback, shared by bench/load.py (500 requests)
and the short form in tests/test_load.py.

Each request asks for a different point (no tile twice) with both outputs by reference;
every output is then downloaded and checked. Worker memory, open files and leftover temp
files are read from /proc before and after.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
import requests
from lxml import etree

from devtools import embedded_wms
from devtools.servers import Overrides, WpsServer, start_wps

NS = {"wps": "http://www.opengis.net/wps/1.0.0", "ows": "http://www.opengis.net/ows/1.1"}
CENTRE_LAT, CENTRE_LON = 45.554, -73.4935
STEP_DEG = 0.00003


@contextmanager
def services(prefix: str, workers: int, overrides: Overrides | None = None
             ) -> Iterator[tuple[embedded_wms.EmbeddedWms, WpsServer, Path]]:
    """The embedded MapServer and a gunicorn WPS in a temporary folder, for one run."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        wms = embedded_wms.start(rundir=Path(tmp) / "wms")
        try:
            wps = start_wps(Path(tmp) / "wps", wms.url, workers=workers, overrides=overrides)
            try:
                yield wms, wps, Path(tmp)
            finally:
                wps.stop()
        finally:
            wms.stop()


def point(index: int) -> tuple[float, float]:
    """A distinct point per index, on a spiral-free 40 x 40 grid around the sample's centre."""
    row, col = divmod(index, 40)
    return CENTRE_LAT + (row - 20) * STEP_DEG, CENTRE_LON + (col - 20) * STEP_DEG


def execute_body(lat: float, lon: float, size: int) -> bytes:
    inputs = "".join(
        f"<wps:Input><ows:Identifier>{k}</ows:Identifier><wps:Data><wps:LiteralData>{v}"
        "</wps:LiteralData></wps:Data></wps:Input>"
        for k, v in (("wms", "sample_city"), ("lat", repr(lat)), ("lon", repr(lon)),
                     ("width", size), ("height", size), ("method", "sobel_magnitude"))
    )
    return (
        '<wps:Execute xmlns:wps="http://www.opengis.net/wps/1.0.0" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" service="WPS" version="1.0.0">'
        "<ows:Identifier>get_raster_process</ows:Identifier>"
        f"<wps:DataInputs>{inputs}</wps:DataInputs><wps:ResponseForm><wps:ResponseDocument>"
        '<wps:Output asReference="true"><ows:Identifier>image</ows:Identifier></wps:Output>'
        '<wps:Output asReference="true"><ows:Identifier>geotiff</ows:Identifier></wps:Output>'
        "</wps:ResponseDocument></wps:ResponseForm></wps:Execute>"
    ).encode()


@dataclass
class ProcessSnapshot:
    rss_kib: dict[int, int]
    peak_kib: dict[int, int]
    open_fds: dict[int, int]


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def worker_pids(master_pid: int) -> list[int]:
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
        return sorted(int(p) for p in children.read().split())


def snapshot(master_pid: int) -> ProcessSnapshot:
    pids = worker_pids(master_pid)
    return ProcessSnapshot(
        rss_kib={p: _status_kib(p, "VmRSS") for p in pids},
        peak_kib={p: _status_kib(p, "VmHWM") for p in pids},
        open_fds={p: len(os.listdir(f"/proc/{p}/fd")) for p in pids},
    )


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    digests: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    wall_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s else 0.0

    def quantile(self, q: float) -> float:
        values = sorted(self.latencies_s)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _one(session: requests.Session, url: str, index: int, size: int) -> tuple[float, str, list]:
    lat, lon = point(index)
    started = time.perf_counter()
    answer = session.post(url, data=execute_body(lat, lon, size),
                          headers={"Content-Type": "text/xml"}, timeout=120)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200 or b"ProcessSucceeded" not in answer.content:
        return elapsed, f"request {index}: HTTP {answer.status_code} {answer.text[:200]}", []
    doc = etree.fromstring(answer.content)
    refs = [r.get("href") for r in doc.iterfind(".//wps:Reference", NS)]
    checked = []
    for ref in refs:
        content = session.get(ref, timeout=60).content
        if ref.endswith(".tif"):
            with rasterio.open(io.BytesIO(content)) as ds:
                if ds.crs.to_epsg() != 4326 or ds.shape != (size, size):
                    return elapsed, f"request {index}: bad GeoTIFF {ref}", []
        elif not content.startswith(b"\x89PNG"):
            return elapsed, f"request {index}: bad PNG {ref}", []
        checked.append((ref, hashlib.sha256(content).hexdigest()))
    return elapsed, "", checked


def run(url: str, count: int, in_flight: int, size: int = 256, first_index: int = 0
        ) -> LoadResult:
    """`count` Executes with `in_flight` at a time; stops by itself."""
    result = LoadResult()
    sessions = [requests.Session() for _ in range(in_flight)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        futures = [pool.submit(_one, sessions[i % in_flight], url, first_index + i, size)
                   for i in range(count)]
        for future in futures:
            elapsed, error, checked = future.result()
            result.latencies_s.append(elapsed)
            if error:
                result.errors.append(error)
            for ref, digest in checked:
                result.urls.add(ref)
                result.digests.add(digest)
    result.wall_s = time.perf_counter() - started
    return result


def leftover_temp_entries(work_dir: Path) -> list[str]:
    return sorted(os.listdir(work_dir)) if work_dir.exists() else []


def summary(result: LoadResult) -> str:
    return (f"{len(result.latencies_s)} requests, {len(result.errors)} errors, "
            f"p50 {statistics.median(result.latencies_s) * 1000:.0f} ms, "
            f"p95 {result.quantile(0.95) * 1000:.0f} ms, {result.throughput:.1f} req/s")
