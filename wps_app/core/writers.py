"""Writers: the float32 GeoTIFF, the 8-bit PNG with its georeferencing sidecars, publishing.

Both outputs carry EPSG:4326 and the exact transform of the request. The PNG uses a fixed
scale per method (see png_levels), so tiles compare and one pass suffices. GeoTiffWriter
and PngWriter take the gradient window by window (a small request is one window), so no
full-size array need exist. Files are written in a private work directory and published
into the output directory by one rename, so a reader never sees a half-written output.

A writer is used as: `with writer: writer.write(first_row, rows)...`, then
`writer.finish()`. Leaving the `with` closes its datasets (inside whatever GDAL
environment the caller holds, such as the bounded block cache of a large read); finish()
then runs what reads the closed files back (the COG translation, the PNG encoding). A
`with` left by an exception removes the writer's files.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.windows import Window

from wps_app.core.errors import OutputError
from wps_app.core.filters import max_response
from wps_app.core.types import Grid, Method, Raster, RenderOptions, Stretch

GEOTIFF_PROFILE = {
    "driver": "GTiff",
    "dtype": "float32",
    "count": 1,
    "nodata": float("nan"),
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "predictor": 3,
    # No NUM_THREADS: GDAL's worker threads do not survive the fork that starts an async
    # job, and the job then waits for them forever.
}
BAND_DESCRIPTION = "gradient (kernel units on 0-255 luminance)"
# The PNG's temporary levels files: tiled like the GeoTIFF, uncompressed (read once).
LEVELS_PROFILE = {"driver": "GTiff", "dtype": "uint8", "count": 1, "tiled": True,
                  "blockxsize": 256, "blockysize": 256}
DEFAULT_OPTIONS = RenderOptions()


def geotiff_profile(compress: str = "DEFLATE", zlevel: int = 1) -> dict:
    """A copy of the GeoTIFF creation profile with the given codec and level."""
    profile = dict(GEOTIFF_PROFILE, compress=compress.lower())
    profile["zstd_level" if compress.upper() == "ZSTD" else "zlevel"] = zlevel
    return profile


def _grid_profile(grid: Grid) -> dict:
    return {"width": grid.width, "height": grid.height, "crs": grid.crs,
            "transform": grid.transform}


def _window(first_row: int, rows: np.ndarray) -> Window:
    return Window(0, first_row, rows.shape[-1], rows.shape[-2])


class GeoTiffWriter:
    """The signed float32 gradient as a single-band GeoTIFF (NaN nodata, CRS and transform
    of `grid`), tiled 256x256 unless a side is shorter than a tile, compressed as
    `options` say; a Cloud Optimized GeoTIFF (with overviews) when `cog`. `tags` go into
    the dataset metadata (method, layer, WMS URL, bbox...). `seconds` adds up the time
    spent in write, close and finish."""

    def __init__(self, path: Path, grid: Grid, tags: dict[str, str],
                 options: RenderOptions = DEFAULT_OPTIONS, cog: bool = False) -> None:
        self.path, self.grid, self.tags, self.options, self.cog = path, grid, tags, options, cog
        # A COG is translated from a complete tiled file: write that one first.
        self._written = path.with_name(path.stem + ".tiled.tif") if cog else path
        self._dataset = None
        self.seconds = 0.0

    def __enter__(self) -> GeoTiffWriter:
        profile = geotiff_profile(self.options.geotiff_compress, self.options.geotiff_level)
        profile.update(_grid_profile(self.grid))
        if self.grid.width < 256 or self.grid.height < 256:
            profile.update(tiled=False)
            profile.pop("blockxsize")
            profile.pop("blockysize")
        started = time.perf_counter()
        try:
            self._dataset = rasterio.open(self._written, "w", **profile)
        except rasterio.errors.RasterioError as exc:
            raise OutputError(f"could not write the GeoTIFF: {exc}") from exc
        self.seconds += time.perf_counter() - started
        return self

    def write(self, first_row: int, gradient: np.ndarray) -> None:
        """Write (rows, width) float32 gradient rows from row `first_row` on."""
        started = time.perf_counter()
        try:
            self._dataset.write(gradient.astype(np.float32, copy=False), 1,
                                window=_window(first_row, gradient))
        except rasterio.errors.RasterioError as exc:
            raise OutputError(f"could not write the GeoTIFF: {exc}") from exc
        self.seconds += time.perf_counter() - started

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        started = time.perf_counter()
        dataset, self._dataset = self._dataset, None
        try:
            if exc is None:
                dataset.update_tags(**self.tags)
                dataset.set_band_description(1, BAND_DESCRIPTION)
            dataset.close()
        except rasterio.errors.RasterioError as error:
            self.discard()
            raise OutputError(f"could not write the GeoTIFF: {error}") from error
        if exc is not None:
            self.discard()
        self.seconds += time.perf_counter() - started

    def finish(self) -> Path:
        """The GeoTIFF's path, after translating it to a COG when asked."""
        if not self.cog:
            return self.path
        started = time.perf_counter()
        try:
            rasterio.shutil.copy(self._written, self.path, driver="COG",
                                 COMPRESS=self.options.geotiff_compress,
                                 PREDICTOR="FLOATING_POINT", BLOCKSIZE=256)
        except rasterio.errors.RasterioError as exc:
            self.discard()
            raise OutputError(f"could not write the Cloud Optimized GeoTIFF: {exc}") from exc
        finally:
            self._written.unlink(missing_ok=True)
        self.seconds += time.perf_counter() - started
        return self.path

    def discard(self) -> None:
        """Remove what this writer wrote."""
        for path in {self._written, self.path}:
            path.unlink(missing_ok=True)


def write_geotiff(raster: Raster, path: Path, tags: dict[str, str],
                  options: RenderOptions = DEFAULT_OPTIONS) -> Path:
    """Write a 2-D float32 gradient as a single-band GeoTIFF (see GeoTiffWriter)."""
    with GeoTiffWriter(path, raster.grid, tags, options) as writer:
        writer.write(0, raster.data)
    return writer.finish()


def _grey_levels(
    gradient: np.ndarray, method: Method, stretch: Stretch
) -> tuple[np.ndarray, np.ndarray | None]:
    """png_levels' grey band, and the mask of its nodata pixels (None when there is none)."""
    m = np.float32(max_response(method))
    if stretch == "signed" and not method.endswith("magnitude"):
        levels = gradient * (np.float32(127.0) / m)
        levels += np.float32(128.0)
        lo = 1.0
    elif stretch in ("signed", "absolute"):
        levels = np.abs(gradient)
        levels *= np.float32(255.0) / m
        lo = 0.0
    elif stretch == "clip":
        levels, lo = gradient.copy(), 0.0
    else:
        raise ValueError(f"unknown stretch {stretch!r}")
    np.rint(levels, out=levels)
    np.clip(levels, lo, 255.0, out=levels)
    missing = np.isnan(levels)
    if not missing.any():
        return levels.astype(np.uint8), None
    levels[missing] = 0.0
    return levels.astype(np.uint8), missing


def _alpha(missing: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The alpha band of a window: 0 where `missing`, 255 elsewhere."""
    alpha = np.full(shape, 255, np.uint8)
    if missing is not None:
        alpha[missing] = 0
    return alpha


def png_levels(gradient: np.ndarray, method: Method, stretch: Stretch) -> np.ndarray:
    """Map a float32 gradient to (2, rows, cols) uint8: grey level and alpha.

    - signed: 0 -> 128, +M -> 255, -M -> 1, where M = max_response(method);
    - absolute: |g| over 0..M -> 0..255;
    - clip: the tutorial's 8-bit result, negatives -> 0, over 255 -> 255;
    - magnitudes are never negative, so for them signed equals absolute.
    NaN (nodata) gets alpha 0 (and grey 0).
    """
    grey, missing = _grey_levels(gradient, method, stretch)
    return np.stack([grey, _alpha(missing, grey.shape)])


def world_file_lines(t: Affine) -> str:
    """ESRI world file text for transform `t` (pixel sizes, rotations, centre of the
    upper-left pixel), in full float precision; GDAL's WORLDFILE option rounds to 10
    decimals."""
    centre_x, centre_y = t @ (0.5, 0.5)
    return "\n".join(repr(float(v)) for v in (t.a, t.d, t.b, t.e, centre_x, centre_y)) + "\n"


_CRS_WKT: dict[str, str] = {}


def _crs_wkt(crs: str) -> str:
    if crs not in _CRS_WKT:
        _CRS_WKT[crs] = CRS.from_user_input(crs).to_wkt()
    return _CRS_WKT[crs]


def aux_xml(grid: Grid) -> str:
    """GDAL's PAM sidecar (`name.png.aux.xml`): CRS and full-precision geotransform, what
    GDAL itself writes beside a georeferenced PNG."""
    geotransform = ", ".join(repr(float(v)) for v in grid.transform.to_gdal())
    return (
        "<PAMDataset>\n"
        f'  <SRS dataAxisToSRSAxisMapping="2,1">{escape(_crs_wkt(grid.crs))}</SRS>\n'
        f"  <GeoTransform>{geotransform}</GeoTransform>\n"
        "</PAMDataset>\n"
    )


def write_sidecars(png: Path, grid: Grid) -> list[Path]:
    """Write the georeferencing GDAL and QGIS read beside `png`: `name.png.aux.xml` (CRS
    and geotransform) and the world file `name.pgw`; returns [aux.xml, world file]."""
    aux = png.with_name(png.name + ".aux.xml")
    world = png.with_suffix(".pgw")
    aux.write_text(aux_xml(grid))
    world.write_text(world_file_lines(grid.transform))
    return [aux, world]


class _LevelsInMemory:
    """The PNG's levels held as arrays and encoded by Pillow: for a request in one window
    (3x faster than GDAL's PNG driver, which writes a temporary dataset first)."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self._windows: list[tuple[int, np.ndarray, np.ndarray | None]] = []

    def write(self, first_row: int, grey: np.ndarray, missing: np.ndarray | None) -> None:
        self._windows.append((first_row, grey, missing))

    def close(self) -> None:
        return None

    def encode(self, png: Path, with_alpha: bool, zlevel: int) -> None:
        grey = (self._windows[0][1] if len(self._windows) == 1
                else np.concatenate([g for _, g, _ in self._windows]))
        image = Image.fromarray(grey, mode="L")
        if with_alpha:
            alpha = np.concatenate([_alpha(m, g.shape) for _, g, m in self._windows])
            image = Image.merge("LA", (image, Image.fromarray(alpha, mode="L")))
        self._windows = []
        image.save(png, format="PNG", compress_level=zlevel)

    def discard(self) -> None:
        self._windows = []


class _LevelsOnDisk:
    """The PNG's levels in temporary tiled files, encoded by GDAL's PNG driver, which reads
    them a line at a time: for a request in many windows, in bounded memory. The alpha
    file is only started when nodata first shows (earlier rows are opaque); without it,
    the grey file alone is encoded, the cheapest way measured (bench/pipeline.py)."""

    def __init__(self, grid: Grid, png: Path) -> None:
        self.grid = grid
        self._grey_path = png.with_name(png.name + ".grey.tif")
        self._alpha_path = png.with_name(png.name + ".alpha.tif")
        self._profile = dict(LEVELS_PROFILE, **_grid_profile(grid))
        self._grey = rasterio.open(self._grey_path, "w", **self._profile)
        self._alpha = None

    def write(self, first_row: int, grey: np.ndarray, missing: np.ndarray | None) -> None:
        self._grey.write(grey, 1, window=_window(first_row, grey))
        if missing is not None and self._alpha is None:
            self._alpha = rasterio.open(self._alpha_path, "w", **self._profile)
            rows = grey.shape[0]
            for first in range(0, first_row, rows):  # the opaque rows before this window
                end = min(first_row, first + rows)
                opaque = np.full((end - first, self.grid.width), 255, np.uint8)
                self._alpha.write(opaque, 1, window=_window(first, opaque))
        if self._alpha is not None:
            self._alpha.write(_alpha(missing, grey.shape), 1, window=_window(first_row, grey))

    def close(self) -> None:
        for dataset in (self._grey, self._alpha):
            if dataset is not None:
                dataset.close()
        self._grey = self._alpha = None

    def encode(self, png: Path, with_alpha: bool, zlevel: int) -> None:
        # No PAM: the sidecars are written by write_sidecars, as for the in-memory levels.
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            if not with_alpha:
                rasterio.shutil.copy(self._grey_path, png, driver="PNG", ZLEVEL=zlevel)
            else:
                with rasterio.open(self._stacked_vrt()) as stacked:
                    rasterio.shutil.copy(stacked, png, driver="PNG", ZLEVEL=zlevel)
        self.discard()

    def _stacked_vrt(self) -> str:
        """A VRT of the grey file's band and the alpha file's band, as one dataset."""
        root = ET.Element("VRTDataset", rasterXSize=str(self.grid.width),
                          rasterYSize=str(self.grid.height))
        ET.SubElement(root, "SRS").text = _crs_wkt(self.grid.crs)
        ET.SubElement(root, "GeoTransform").text = ", ".join(
            repr(float(v)) for v in self.grid.transform.to_gdal())
        for index, (path, interp) in enumerate(((self._grey_path, "Gray"),
                                                (self._alpha_path, "Alpha")), start=1):
            band = ET.SubElement(root, "VRTRasterBand", dataType="Byte", band=str(index))
            ET.SubElement(band, "ColorInterp").text = interp
            source = ET.SubElement(band, "SimpleSource")
            ET.SubElement(source, "SourceFilename", relativeToVRT="0").text = str(path)
            ET.SubElement(source, "SourceBand").text = "1"
        return ET.tostring(root, encoding="unicode")

    def discard(self) -> None:
        self.close()
        for path in (self._grey_path, self._alpha_path):
            path.unlink(missing_ok=True)


class PngWriter:
    """The 8-bit PNG of the gradient (see png_levels) and its sidecars (see write_sidecars).

    The PNG is grey, with an alpha band only when the tile has nodata. `in_memory` picks
    where the levels wait for the encoder: arrays encoded by Pillow (one window), or
    temporary files encoded by GDAL (many windows, bounded memory); the decoded PNG is
    the same either way. `seconds` adds up the time spent in write, close and finish.
    """

    def __init__(self, path: Path, grid: Grid, method: Method, stretch: Stretch,
                 zlevel: int = 1, in_memory: bool = True) -> None:
        self.path, self.grid, self.method, self.stretch = path, grid, method, stretch
        self.zlevel, self.in_memory = zlevel, in_memory
        self.has_nodata = False
        self._levels: _LevelsInMemory | _LevelsOnDisk | None = None
        self.seconds = 0.0

    def __enter__(self) -> PngWriter:
        started = time.perf_counter()
        try:
            self._levels = (_LevelsInMemory(self.grid) if self.in_memory
                            else _LevelsOnDisk(self.grid, self.path))
        except rasterio.errors.RasterioError as exc:
            raise OutputError(f"could not write the PNG: {exc}") from exc
        self.seconds += time.perf_counter() - started
        return self

    def write(self, first_row: int, gradient: np.ndarray) -> None:
        """Map (rows, width) float32 gradient rows from row `first_row` on to levels."""
        started = time.perf_counter()
        grey, missing = _grey_levels(gradient, self.method, self.stretch)
        self.has_nodata = self.has_nodata or missing is not None
        try:
            self._levels.write(first_row, grey, missing)
        except rasterio.errors.RasterioError as exc:
            raise OutputError(f"could not write the PNG: {exc}") from exc
        self.seconds += time.perf_counter() - started

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        started = time.perf_counter()
        if exc is not None:
            self.discard()
            return
        try:
            self._levels.close()
        except rasterio.errors.RasterioError as error:
            self.discard()
            raise OutputError(f"could not write the PNG: {error}") from error
        self.seconds += time.perf_counter() - started

    def finish(self) -> list[Path]:
        """Encode the PNG and write its sidecars; returns [png, aux.xml, world file]."""
        started = time.perf_counter()
        try:
            self._levels.encode(self.path, self.has_nodata, self.zlevel)
            sidecars = write_sidecars(self.path, self.grid)
        except (OSError, rasterio.errors.RasterioError) as exc:
            self.discard()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputError(f"could not write the PNG: {reason}") from exc
        self.seconds += time.perf_counter() - started
        return [self.path, *sidecars]

    def discard(self) -> None:
        """Remove what this writer wrote."""
        if self._levels is not None:
            self._levels.discard()
        for path in (self.path, self.path.with_name(self.path.name + ".aux.xml"),
                     self.path.with_suffix(".pgw")):
            path.unlink(missing_ok=True)


def write_png(
    raster: Raster, path: Path, method: Method, stretch: Stretch, zlevel: int = 1
) -> list[Path]:
    """Write the PNG and its sidecars (see PngWriter); return [png, aux.xml, world file]."""
    with PngWriter(path, raster.grid, method, stretch, zlevel) as writer:
        writer.write(0, raster.data)
    return writer.finish()


def publish(files: list[Path], output_root: Path, job_id: str) -> Path:
    """Move `files` into output_root/job_id/ atomically and return that directory.

    The files are first gathered in a hidden staging directory on the same file system,
    then one rename makes them all visible at once. Raises OutputError on failure and
    leaves nothing behind.
    """
    if not job_id or os.sep in job_id or job_id.startswith("."):
        raise OutputError("invalid job id")
    final = output_root / job_id
    staging = output_root / f".staging-{job_id}-{uuid.uuid4().hex}"
    try:
        output_root.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        for src in files:
            shutil.move(os.fspath(src), os.fspath(staging / src.name))
        os.rename(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"could not publish the outputs: {exc.strerror or exc}") from exc
    return final


def directory_size(root: Path) -> int:
    """Bytes used by the files under `root` (0 when it cannot be read)."""
    total = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += directory_size(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total
