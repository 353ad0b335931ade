"""Published outputs at /outputs/<job>/<file>, served the way GDAL and QGIS read them.

GDAL's /vsicurl/ (and so QGIS's "add raster by URL") reads a GeoTIFF by HTTP Range
requests: single ranges are answered 206 with Content-Range, HEAD with the size,
conditional requests by ETag and Last-Modified (werkzeug's send_file does all of this),
and browsers reading ranges through fetch() get the CORS headers they need.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable
from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Response

# GeoTIFF as OGC API - Processes and the GeoTIFF standard name it
CONTENT_TYPES = {
    ".png": "image/png",
    ".tif": "image/tiff; application=geotiff",
    ".xml": "text/xml",
    ".pgw": "text/plain",
    ".qml": "text/xml",
}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, ETag, Accept-Ranges",
}
MAX_NAME_BYTES = 255  # a longer name cannot exist; os.stat would raise ENAMETOOLONG


def content_type(name: str) -> str:
    """The media type an output file is served with."""
    if name.endswith(".aux.xml"):
        return "application/xml"
    return (CONTENT_TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0]
            or "application/octet-stream")


def serve_output(environ: dict, output_root: Path, relative: str) -> Response:
    """The file `relative` below `output_root`; NotFound for anything else (hidden
    entries, paths leaving the folder, names no file system could hold)."""
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES
           for part in relative.split("/")):
        raise NotFound()
    path = safe_join(os.fspath(output_root), relative)
    if path is None or "/." in "/" + relative or not os.path.isfile(path):
        raise NotFound()
    try:
        response = send_file(path, environ, mimetype=content_type(Path(path).name),
                             conditional=True, etag=True, max_age=None)
    except RequestedRangeNotSatisfiable as exc:  # several ranges, or none inside the file
        response = exc.get_response(environ)
    response.headers.update(CORS)
    return response
