"""Published outputs at /outputs/<job>/<file>, served the way GDAL and QGIS read them.

GDAL's /vsicurl/ (and so QGIS's "add raster by URL") reads a GeoTIFF by HTTP Range
requests: single ranges are answered 206 with Content-Range, HEAD with the size,
conditional requests by ETag and Last-Modified (werkzeug's make_conditional),
and browsers reading ranges through fetch() get the CORS headers they need.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable
from werkzeug.security import safe_join
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

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
    # Open first, then describe what was opened: a status document is replaced (renamed
    # over) while jobs run, and a size taken from the path before opening could belong to
    # the previous version (the client then reads a cut-off document).
    handle = open(path, "rb")
    stat = os.fstat(handle.fileno())
    response = Response(wrap_file(environ, handle), mimetype=content_type(Path(path).name),
                        direct_passthrough=True)
    response.content_length = stat.st_size
    response.last_modified = stat.st_mtime
    response.cache_control.no_cache = True
    response.set_etag(f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}")
    try:
        response = response.make_conditional(environ, accept_ranges=True,
                                              complete_length=stat.st_size)
    except RequestedRangeNotSatisfiable as exc:  # several ranges, or none inside the file
        handle.close()
        response = exc.get_response(environ)
    response.headers.update(CORS)
    return response
