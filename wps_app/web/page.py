"""The map page at `/`, its static files, and the base-map route `/wms/<source>`.

The page (wps_app/web/static/) runs the process through /ogcapi; Leaflet is Debian's
`libjs-leaflet`, served from its installed folder. The base map comes through
`/wms/<source>`: GetMap only, parameters whitelisted, the upstream URL (and any key in
it) added here, so the browser never sees it. Nothing of the page is loaded from
another host.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import requests
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from wps_app import metrics
from wps_app.core.redact import redact
from wps_app.core.relay import RedirectRefused, fetch_within_origin, with_query
from wps_app.core.wms import LayerCatalog
from wps_app.settings import Settings

LOGGER = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
LEAFLET_DIR = Path("/usr/share/javascript/leaflet")  # Debian's libjs-leaflet
MAX_WMS_PX = 2048
FORMATS = ("image/png", "image/jpeg")
PROJECTIONS = ("EPSG:4326", "EPSG:3857", "CRS:84")
VERSIONS = ("1.1.1", "1.3.0")
# Parameters a GetMap through /wms/<source> may carry (upper-cased); nothing else passes.
ALLOWED = frozenset({"SERVICE", "REQUEST", "VERSION", "LAYERS", "STYLES", "BBOX", "WIDTH",
                     "HEIGHT", "CRS", "SRS", "FORMAT", "TRANSPARENT"})
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
                ".html": "text/html", ".map": "application/json"}


class Refused(Exception):
    """A /wms request outside the whitelist (400, its message as plain text)."""


def wants_page(environ: dict) -> bool:
    """A GET (or HEAD) of `/` without WPS `service`/`request` parameters: the map page."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return False
    if (environ.get("PATH_INFO", "") or "/") != "/":
        return False
    names = {name.lower() for name, _ in parse_qsl(environ.get("QUERY_STRING", ""),
                                                   keep_blank_values=True)}
    return not names & {"service", "request"}


def page_response(settings: Settings, catalogs: Mapping[str, LayerCatalog]) -> Response:
    """The page, with the facts the browser needs that the process description lacks:
    the base-map source, the layers' extents (CRS84) and the /wms size cap."""
    source = settings.source_names[0]
    catalog = catalogs.get(source)
    config = {"source": source, "maxWmsPx": MAX_WMS_PX,
              "extents": catalog.extents() if catalog is not None else {}}
    # "<" escaped so that no value can close the script element
    text = json.dumps(config).replace("<", "\\u003c")
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace(
        "{{CONFIG}}", text)
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'")
    response.cache_control.no_cache = True
    return response


def static_response(environ: dict, root: Path, relative: str) -> Response:
    """The file `relative` below `root` (NotFound for anything else: hidden entries,
    paths leaving the folder, folders)."""
    path = safe_join(os.fspath(root), relative)
    if not relative or path is None or "/." in "/" + relative or not os.path.isfile(path):
        raise NotFound()
    handle = open(path, "rb")
    stat = os.fstat(handle.fileno())
    response = Response(wrap_file(environ, handle), direct_passthrough=True,
                        content_type=STATIC_TYPES.get(Path(path).suffix,
                                                      "application/octet-stream"))
    response.content_length = stat.st_size
    response.last_modified = stat.st_mtime
    response.set_etag(f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}")
    response.cache_control.no_cache = True
    return response.make_conditional(environ)


def getmap_params(query: str, layers: Mapping[str, str]) -> dict[str, str]:
    """The upstream GetMap parameters for the browser's `query`. Raises Refused for a
    parameter outside the whitelist, another request than GetMap, a layer the source does
    not advertise, a size above MAX_WMS_PX, or an unknown format or projection."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = name.upper()
        if key not in ALLOWED:
            raise Refused(f"parameter {name[:40]!r} is not accepted here")
        if key in params:
            raise Refused(f"parameter {key} is given twice")
        params[key] = value
    if params.get("SERVICE", "WMS").upper() != "WMS":
        raise Refused("SERVICE must be WMS")
    if params.get("REQUEST", "").lower() != "getmap":
        raise Refused("only REQUEST=GetMap is served here")
    version = params.get("VERSION", "1.3.0")
    if version not in VERSIONS:
        raise Refused("VERSION must be 1.1.1 or 1.3.0")
    names = params.get("LAYERS", "").split(",")
    if not names or any(name not in layers for name in names):
        raise Refused("LAYERS must name layers this WMS advertises")
    for key in ("WIDTH", "HEIGHT"):
        try:
            size = int(params.get(key, ""))
        except ValueError:
            raise Refused(f"{key} must be an integer") from None
        if not 1 <= size <= MAX_WMS_PX:
            raise Refused(f"{key} must be 1 to {MAX_WMS_PX}")
        params[key] = str(size)
    try:
        bbox = [float(v) for v in params.get("BBOX", "").split(",")]
    except ValueError:
        raise Refused("BBOX must be four numbers") from None
    if len(bbox) != 4 or not all(abs(v) < 1e8 for v in bbox):
        raise Refused("BBOX must be four numbers")
    projection = params.pop("CRS", None) or params.pop("SRS", None)
    if projection not in PROJECTIONS:
        raise Refused(f"CRS/SRS must be one of {', '.join(PROJECTIONS)}")
    params["CRS" if version == "1.3.0" else "SRS"] = projection
    if params.get("FORMAT", "image/png") not in FORMATS:
        raise Refused(f"FORMAT must be one of {', '.join(FORMATS)}")
    if params.get("TRANSPARENT", "FALSE").upper() not in ("TRUE", "FALSE"):
        raise Refused("TRANSPARENT must be TRUE or FALSE")
    params.update(SERVICE="WMS", REQUEST="GetMap", VERSION=version,
                  FORMAT=params.get("FORMAT", "image/png"), STYLES=params.get("STYLES", ""))
    return params


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status=status, content_type="text/plain; charset=utf-8")


def wms_response(environ: dict, settings: Settings, catalogs: Mapping[str, LayerCatalog],
                 source: str) -> Response:
    """A GetMap of configured source `source` on the browser's behalf: the image, or a
    plain-text refusal (400) or upstream failure (502/504) that names no URL."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _plain("only GET is served here", 405)
    try:
        server = settings.wms_server(source)
    except KeyError:
        return _plain("no such WMS source", 404)
    catalog = catalogs.get(server.name)
    try:
        params = getmap_params(environ.get("QUERY_STRING", ""),
                               catalog.cached() if catalog is not None else {})
    except Refused as exc:
        return _plain(str(exc), 400)
    url = with_query(server.url, urlencode(params))
    try:
        # configured headers go to the configured origin only (core.relay)
        upstream = fetch_within_origin(url, server.headers, server.timeout_s)
    except RedirectRefused as exc:
        LOGGER.warning("base map GetMap: %s; not followed", exc)
        metrics.count_wms_error(server.name, "bad_response")
        return _plain("the WMS could not draw this map", 502)
    except requests.Timeout:
        metrics.count_wms_error(server.name, "timeout")
        return _plain("the WMS did not answer in time", 504)
    except requests.RequestException as exc:
        LOGGER.warning("base map GetMap failed: %s", redact(str(exc), keep_hosts=True))
        metrics.count_wms_error(server.name, "unavailable")
        return _plain("the WMS is not reachable", 502)
    with upstream:
        content_type = upstream.headers.get("Content-Type", "")
        served = served_type(params["FORMAT"], content_type)
        if upstream.status_code != 200 or served is None:
            # a ServiceException may echo the request (the key): none of its text is passed
            LOGGER.warning("base map GetMap: upstream answered %s %s", upstream.status_code,
                           content_type[:60])
            metrics.count_wms_error(server.name, "bad_response")
            return _plain("the WMS could not draw this map", 502)
        response = Response(upstream.content, content_type=served)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.max_age = 60
    return response


def served_type(asked: str, upstream_type: str) -> str | None:
    """The Content-Type to answer a base-map GetMap with: the FORMAT asked (one of FORMATS)
    when the WMS answered with that type, else None (refused). An upstream's own type is
    never passed on: "image/svg+xml" from a misbehaving WMS would be a script-carrying
    document served from this service's origin."""
    mime = upstream_type.split(";", 1)[0].strip().lower()
    return asked if asked in FORMATS and mime == asked else None
