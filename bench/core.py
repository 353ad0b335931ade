"""The raster core on in-memory tiles, and the filter alone.

(c) decode -> luminance -> filter -> PNG + GeoTIFF, against the tutorial's PIL pipeline
    (decode -> grayscale -> 3x3 kernel -> PNG) on the same tiles: a map-like tile from the
    sample WMS and a photo-like synthetic tile.
(d) the filter alone (scipy.ndimage, float32, on luminance) in megapixels per second at
    512^2, 4096^2 and 16384^2, in one call and as the service runs it (cache-sized tiles
    on two threads), beside the memory-copy bandwidth measured in the same run (a float32
    3x3 stencil moves at least 8 bytes per pixel: one read, one write).

Usage: python -m bench.core
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

from devtools import embedded_wms
from wps_app.core import filters, wms, writers
from wps_app.core.types import BBox, Raster

TUTORIAL_SOBEL_X = [-1, 0, 1, -2, 0, 2, -1, 0, 1]
TRANSFORM = from_bounds(-73.49375, 45.55375, -73.49325, 45.55425, 512, 512)


def median_ms(function, repeat: int = 30) -> float:
    function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def map_like_tile() -> bytes:
    """A 512x512 RGBA PNG from the sample WMS, as MapServer sends it."""
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_wms.start(rundir=Path(tmp))
        try:
            tile = wms.read_rgba(wms.WmsSource(server.url), "sample_city",
                                 BBox.around(45.554, -73.4935, 0.0005), 512, 512)
        finally:
            server.stop()
    buffer = io.BytesIO()
    Image.fromarray(np.moveaxis(tile.data, 0, -1), "RGBA").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def photo_like_tile() -> bytes:
    """A 512x512 RGB PNG with smooth structure and sensor noise, like an orthophoto."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:512, 0:512] / 512.0
    base = 128 + 60 * np.sin(8 * x + 3 * np.sin(5 * y)) * np.cos(6 * y)
    rgb = np.stack([base + rng.normal(0, 12, base.shape) for _ in range(3)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def ours(png: bytes, folder: Path) -> None:
    with MemoryFile(png) as memory, memory.open() as dataset:
        bands = dataset.read()
    lum = filters.luminance(bands)
    gradient = Raster(filters.gradient(lum, "sobel_x"), TRANSFORM)
    writers.write_png(gradient, folder / "o.png", "sobel_x", "signed")
    writers.write_geotiff(gradient, folder / "o.tif", {})


def tutorial(png: bytes, folder: Path) -> None:
    image = Image.open(io.BytesIO(png)).convert("L")
    image = image.filter(ImageFilter.Kernel((3, 3), TUTORIAL_SOBEL_X, scale=1, offset=0))
    image.save(folder / "t.png")


def interleaved_ms(first, second, repeat: int = 60) -> tuple[float, float]:
    """Medians of two functions timed alternately, so drifts in machine load hit both."""
    first(), second()
    a, b = [], []
    for _ in range(repeat):
        for function, times in ((first, a), (second, b)):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
    return statistics.median(a) * 1000, statistics.median(b) * 1000


def core_table() -> str:
    lines = ["| tile | tutorial PIL pipeline, PNG ms | this core, PNG + GeoTIFF ms | ratio |",
             "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, png in (("map-like (sample WMS)", map_like_tile()),
                          ("photo-like (synthetic)", photo_like_tile())):
            base, mine = interleaved_ms(partial(tutorial, png, folder), partial(ours, png, folder))
            lines.append(f"| {name} | {base:.1f} | {mine:.1f} | {mine / base:.2f} |")
    return "\n".join(lines)


def copy_bandwidth_gbs() -> float:
    source = np.ones(64 * 2**20 // 4, dtype=np.float32)  # 64 MiB
    target = np.empty_like(source)
    seconds = median_ms(lambda: np.copyto(target, source), repeat=10) / 1000
    return 2 * source.nbytes / seconds / 1e9  # read + write


def filter_table(sizes=(512, 4096, 16384)) -> str:
    bandwidth = copy_bandwidth_gbs()
    limit = bandwidth * 1e9 / 8 / 1e6
    lines = [f"memory-copy bandwidth: {bandwidth:.1f} GB/s (read + write) -> at most "
             f"{limit:.0f} Mpix/s for a stencil moving 8 bytes per pixel", "",
             "| size | filter | ms | Mpix/s | share of the bandwidth limit |",
             "|---|---|---|---|---|"]
    for size in sizes:
        lines += _filter_rows(size, limit)
    return "\n".join(lines)


def _filter_rows(size: int, limit: float) -> list[str]:
    lum = np.random.default_rng(0).random((size + 2, size + 2), dtype=np.float32) * 255
    repeat = 20 if size <= 512 else 3
    held = np.empty((size, size), np.float32)
    runs = [("sobel_x, one scipy.ndimage call per pass on the whole array",
             partial(filters.filter_luminance, lum, "sobel_x")),
            ("sobel_x, as the service runs it (cache-sized tiles, two threads)",
             partial(filters.filter_window, lum, "sobel_x", held)),
            ("sobel_magnitude (four passes), as the service runs it",
             partial(filters.filter_window, lum, "sobel_magnitude", held))]
    rows = []
    for label, function in runs:
        ms = median_ms(function, repeat=repeat)
        mpix = size * size / (ms / 1000) / 1e6
        rows.append(f"| {size}x{size} | {label} | {ms:.1f} | {mpix:.0f} | {mpix / limit:.0%} |")
    return rows


def main() -> int:
    print(core_table())
    print()
    print(filter_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
