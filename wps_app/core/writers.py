"""Writers: the float32 GeoTIFF, the 8-bit PNG with its georeferencing sidecars, publishing.

Both outputs carry EPSG:4326 and the exact transform of the request. The PNG uses a fixed
scale per method (see png_levels), so tiles compare and one pass suffices. Files are
written in a private work directory and published into the output directory by one
rename, so a reader never sees a half-written output.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from wps_app.core.errors import OutputError
from wps_app.core.filters import max_response
from wps_app.core.types import Method, Raster, Stretch

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


def geotiff_profile(compress: str = "DEFLATE", zlevel: int = 1) -> dict:
    """A copy of the GeoTIFF creation profile with the given codec and level."""
    profile = dict(GEOTIFF_PROFILE, compress=compress.lower())
    profile["zstd_level" if compress.upper() == "ZSTD" else "zlevel"] = zlevel
    return profile


def write_geotiff(
    raster: Raster,
    path: Path,
    tags: dict[str, str],
    compress: str = "DEFLATE",
    zlevel: int = 1,
) -> Path:
    """Write a 2-D float32 gradient as a single-band GeoTIFF (NaN nodata, EPSG:4326).

    `tags` go into the dataset metadata (method, layer, WMS URL, bbox...).
    """
    profile = geotiff_profile(compress, zlevel)
    profile.update(
        width=raster.width, height=raster.height, crs=raster.crs, transform=raster.transform
    )
    if raster.width < 256 or raster.height < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    try:
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(raster.data.astype(np.float32, copy=False), 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, "gradient (kernel units on 0-255 luminance)")
    except rasterio.errors.RasterioError as exc:
        raise OutputError(f"could not write the GeoTIFF: {exc}") from exc
    return path


def png_levels(gradient: np.ndarray, method: Method, stretch: Stretch) -> np.ndarray:
    """Map a float32 gradient to (2, rows, cols) uint8: grey level and alpha.

    - signed: 0 -> 128, +M -> 255, -M -> 1, where M = max_response(method);
    - absolute: |g| over 0..M -> 0..255;
    - clip: the tutorial's 8-bit result, negatives -> 0, over 255 -> 255;
    - magnitudes are never negative, so for them signed equals absolute.
    NaN (nodata) gets alpha 0 (and grey 0).
    """
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
    has_nodata = bool(missing.any())
    if has_nodata:
        levels[missing] = 0.0
    grey = levels.astype(np.uint8)
    alpha = np.full_like(grey, 255)
    if has_nodata:
        alpha[missing] = 0
    return np.stack([grey, alpha])


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


def aux_xml(raster: Raster) -> str:
    """GDAL's PAM sidecar (`name.png.aux.xml`): CRS and full-precision geotransform, what
    GDAL itself writes beside a georeferenced PNG."""
    geotransform = ", ".join(repr(float(v)) for v in raster.transform.to_gdal())
    return (
        "<PAMDataset>\n"
        f'  <SRS dataAxisToSRSAxisMapping="2,1">{escape(_crs_wkt(raster.crs))}</SRS>\n'
        f"  <GeoTransform>{geotransform}</GeoTransform>\n"
        "</PAMDataset>\n"
    )


def write_png(
    raster: Raster, path: Path, method: Method, stretch: Stretch, zlevel: int = 1
) -> list[Path]:
    """Write the PNG and its sidecars; return [png, aux.xml, world file].

    The PNG is grey, with an alpha band only when the tile has nodata. Pillow encodes it
    (3x faster here than GDAL's PNG driver, which writes a temporary dataset first); the
    georeferencing GDAL and QGIS read is written beside it: `name.png.aux.xml` (CRS and
    geotransform) and the world file `name.pgw`.
    """
    grey, alpha = png_levels(raster.data, method, stretch)
    image = Image.fromarray(grey, mode="L")
    if not alpha.all():
        image = Image.merge("LA", (image, Image.fromarray(alpha, mode="L")))
    aux = path.with_name(path.name + ".aux.xml")
    world = path.with_suffix(".pgw")
    try:
        image.save(path, format="PNG", compress_level=zlevel)
        aux.write_text(aux_xml(raster))
        world.write_text(world_file_lines(raster.transform))
    except OSError as exc:
        raise OutputError(f"could not write the PNG: {exc.strerror or exc}") from exc
    return [path, aux, world]


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
