"""Read a WMS layer through GDAL's WMS driver (via rasterio) onto an exact EPSG:4326 grid.

One GDAL_WMS description is built per request, with every value escaped: the layer name
is percent-encoded (GDAL pastes <Layers> into the GetMap query as it is) and the whole
document is serialised by ElementTree (XML-escaped). The server URL comes from
configuration only. No <Cache> element: GDAL writes nothing to disk.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.transform import from_bounds
from rasterio.windows import Window

from wps_app.core.errors import (
    LayersNotKnownYet,
    WmsBadResponse,
    WmsError,
    WmsServiceException,
    WmsTimeout,
    WmsUnavailable,
)
from wps_app.core.redact import redact
from wps_app.core.relay import relayed_url
from wps_app.core.types import CRS_EPSG4326, BBox, Raster

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

IMAGE_FORMAT = "image/png"  # lossless; JPEG block artefacts would become false edges
# The lossless GetMap formats the service reads, cheapest first on loopback: an
# uncompressed TIFF costs MapServer no deflate and GDAL no inflate (a 514 x 514 RGBA tile
# is 1 MiB, nothing on loopback); PNG is what every WMS offers. Chosen by
# choose_image_format from a WMS's capabilities unless configured.
LOSSLESS_FORMATS = ("image/tiff", "image/png")
BANDS_RGBA = 4
# The largest GetMap asked for in one piece; MapServer's default MAXSIZE is 4096.
MAX_BLOCK_PX = 4096


@dataclass(frozen=True)
class WmsSource:
    """A configured (trusted) WMS server: URL, protocol version and network limits."""

    url: str
    version: str = "1.3.0"
    timeout_s: float = 10.0
    retries: int = 2
    max_block_px: int = MAX_BLOCK_PX
    max_connections: int = 2
    image_format: str = IMAGE_FORMAT  # one of LOSSLESS_FORMATS
    # HTTP headers every request carries (a key): sent through core.relay, never by GDAL
    # or OWSLib themselves, so a redirect to another host never carries them
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def request_url(self) -> str:
        """The URL GDAL and OWSLib ask: the configured one, or its relay when headers are
        configured."""
        if not self.headers:
            return self.url
        return relayed_url(self.url, self.headers, self.timeout_s)

    def __repr__(self) -> str:  # the URL and headers may carry a key: keep them out of logs
        return f"WmsSource(version={self.version!r}, headers={len(self.headers)})"


def choose_image_format(offered: tuple[str, ...]) -> str:
    """The first of LOSSLESS_FORMATS among the GetMap formats a WMS offers (exact MIME
    types: "image/png; mode=8bit" is a palette, not lossless); PNG when none is."""
    offered_types = {value.strip().lower() for value in offered}
    return next((f for f in LOSSLESS_FORMATS if f in offered_types), IMAGE_FORMAT)


def _server_url(url: str) -> str:
    """GDAL appends GetMap parameters to ServerUrl: make it end with '?' or '&'."""
    if "?" not in url:
        return url + "?"
    return url if url.endswith(("?", "&")) else url + "&"


def _fmt(value: float) -> str:
    return repr(float(value))


def gdal_wms_xml(
    source: WmsSource, layer: str, bbox: BBox, width: int, height: int
) -> str:
    """The GDAL_WMS description that reads `layer` over `bbox` (EPSG:4326) at width x height.

    The data window is exactly `bbox`; GDAL then gives the dataset the transform
    from_bounds(*bbox.bounds, width, height). Blocks are as large as the server allows,
    so a request up to max_block_px on each side costs one GetMap.
    """
    root = ET.Element("GDAL_WMS")
    service = ET.SubElement(root, "Service", name="WMS")
    ET.SubElement(service, "Version").text = source.version
    ET.SubElement(service, "ServerUrl").text = _server_url(source.request_url)
    if source.version == "1.3.0":
        ET.SubElement(service, "CRS").text = CRS_EPSG4326
        # GDAL does not swap axes itself for EPSG:4326 under 1.3.0 (lat, lon order).
        ET.SubElement(service, "BBoxOrder").text = "yxYX"
    else:
        ET.SubElement(service, "SRS").text = CRS_EPSG4326
    ET.SubElement(service, "ImageFormat").text = source.image_format
    ET.SubElement(service, "Transparent").text = "TRUE"
    ET.SubElement(service, "Layers").text = quote(layer, safe="")
    ET.SubElement(service, "Styles").text = ""
    window = ET.SubElement(root, "DataWindow")
    for tag, value in (
        ("UpperLeftX", bbox.west),
        ("UpperLeftY", bbox.north),
        ("LowerRightX", bbox.east),
        ("LowerRightY", bbox.south),
    ):
        ET.SubElement(window, tag).text = _fmt(value)
    ET.SubElement(window, "SizeX").text = str(width)
    ET.SubElement(window, "SizeY").text = str(height)
    ET.SubElement(root, "Projection").text = CRS_EPSG4326
    ET.SubElement(root, "BandsCount").text = str(BANDS_RGBA)
    ET.SubElement(root, "BlockSizeX").text = str(min(width, source.max_block_px))
    ET.SubElement(root, "BlockSizeY").text = str(min(height, source.max_block_px))
    ET.SubElement(root, "Timeout").text = str(max(1, int(round(source.timeout_s))))
    ET.SubElement(root, "MaxConnections").text = str(source.max_connections)
    return ET.tostring(root, encoding="unicode")


def gdal_env(source: WmsSource) -> dict[str, str]:
    """GDAL configuration for one read: bounded time, no netrc, no GDAL-side retries."""
    timeout = str(max(1, int(round(source.timeout_s))))
    return {
        "GDAL_HTTP_TIMEOUT": timeout,
        "GDAL_HTTP_CONNECTTIMEOUT": timeout,
        "GDAL_HTTP_NETRC": "NO",
        "GDAL_HTTP_MAX_RETRY": "0",  # we retry ourselves, on 429/5xx/timeouts only
        "CPL_VSIL_CURL_USE_HEAD": "NO",
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    }


_EXCEPTION_CODE = re.compile(r"exception code '([^']*)'\s*:?\s*(.*)", re.S)
_EXCEPTION_TEXT = re.compile(r"returned exception:\s*(.*)", re.S)
_HTTP_STATUS = re.compile(r"HTTP status code: (\d+)")


_CODE_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,60}$")


def classify_gdal_error(message: str) -> WmsError:
    """Turn GDAL's message for a failed WMS read into a WmsError a person can act on; the
    HTTP status and the OGC exception code, when GDAL names them, become attributes.

    The message a client sees names the condition and the OGC exception code only: the
    server's own text (which may echo the request, key included) and GDAL's (which names
    the URL) go to `detail`, redacted, for the log.
    """
    text = " ".join(message.split())
    detail = redact(text, keep_hosts=True)[:300]
    code = _EXCEPTION_CODE.search(text)
    if code:
        name = code.group(1) if _CODE_TOKEN.match(code.group(1)) else "unnamed"
        return WmsServiceException(f"the WMS refused the request ({name})", code=name,
                                   detail=detail)
    if _EXCEPTION_TEXT.search(text):
        return WmsServiceException("the WMS refused the request (a ServiceException)",
                                   detail=detail)
    if "timed out" in text.lower() or "timeout" in text.lower():
        return WmsTimeout("the WMS did not answer within the configured timeout", detail=detail)
    status = _HTTP_STATUS.search(text)
    if status and status.group(1) == "0" or "connect" in text.lower():
        return WmsUnavailable("the WMS is not reachable (connection failed)", detail=detail)
    if status and not status.group(1).startswith("2"):
        return WmsBadResponse(f"the WMS answered with HTTP status {status.group(1)}",
                              http_status=int(status.group(1)), detail=detail)
    return WmsBadResponse("the WMS did not return a usable image", detail=detail)


def _retryable(error: WmsError) -> bool:
    """Timeouts, HTTP 429 and 5xx are worth another try; nothing else is."""
    if isinstance(error, WmsTimeout):
        return True
    status = error.http_status
    return status is not None and (status == 429 or 500 <= status <= 599)


Sleep = Callable[[float], None]


def backoff_s(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...): 0.4, 0.8, 1.6, then 2."""
    return min(2.0, 0.2 * 2**retry)


def with_retries(source: WmsSource, attempt: Callable[[], T], sleep: Sleep = time.sleep) -> T:
    """Run `attempt` again on timeouts, HTTP 429 and 5xx, at most source.retries more
    times, waiting backoff_s(retry) seconds through `sleep` before each; any other
    WmsError, or the last one, is raised."""
    tries = 0
    while True:
        try:
            return attempt()
        except WmsError as error:
            if tries >= source.retries or not _retryable(error):
                raise
            tries += 1
            LOGGER.warning("WMS read failed (%s), retry %d/%d", error, tries, source.retries)
            sleep(backoff_s(tries))


def _read_window(dataset, window: Window | None) -> np.ndarray:
    try:
        return dataset.read(window=window)
    except RasterioIOError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise classify_gdal_error(str(cause)) from exc


@contextmanager
def open_layer(
    source: WmsSource, layer: str, bbox: BBox, width: int, height: int,
    cache_mb: int | None = None,
) -> Iterator[rasterio.io.DatasetReader]:
    """A rasterio dataset over `layer` on the exact grid of `bbox` at width x height;
    `cache_mb` bounds GDAL's block cache while it is open (large reads).

    Opening sends nothing; reads fetch the WMS blocks they cover (GDAL's block cache
    keeps them, within GDAL_CACHEMAX). Read with read_window, which raises WmsError.
    """
    xml = gdal_wms_xml(source, layer, bbox, width, height)
    options: dict[str, str | int] = dict(gdal_env(source))
    if cache_mb is not None:
        options["GDAL_CACHEMAX"] = cache_mb * 1024 * 1024  # rasterio takes bytes
    with rasterio.Env(**options), rasterio.open(xml) as dataset:
        if dataset.count < 3:
            raise WmsBadResponse(f"the WMS returned {dataset.count} band(s), expected RGBA")
        yield dataset


def read_window(dataset, window: Window | None = None) -> np.ndarray:
    """Read (bands, rows, cols) uint8 of `window` (the whole dataset when None); raises
    WmsError subclasses."""
    data = _read_window(dataset, window)
    expected = (dataset.height, dataset.width) if window is None else (
        int(window.height), int(window.width))
    if data.shape[1:] != expected:
        raise WmsBadResponse(f"the WMS returned an image of size {data.shape[1:]}")
    return data


ReadRows = Callable[[int, int], np.ndarray]


@contextmanager
def open_grid(
    source: WmsSource, layer: str, bbox: BBox, width: int, height: int,
    cache_mb: int | None = None, sleep: Sleep = time.sleep,
) -> Iterator[ReadRows]:
    """Open `layer` over `bbox` (EPSG:4326) at width x height; yields read_rows(first, end),
    which returns rows [first, end) at full width as (bands, end - first, width) uint8.

    Reads go through one dataset, so a window's GetMap blocks stay in GDAL's block cache
    for the next window (`cache_mb` bounds it; see open_layer). A failed read is retried
    by with_retries through a freshly opened dataset, so nothing GDAL cached from the
    failed try is reused: a window costs at most 1 + source.retries attempts.
    """
    with open_layer(source, layer, bbox, width, height, cache_mb=cache_mb) as dataset:

        def read_rows(first: int, end: int) -> np.ndarray:
            window = Window(0, first, width, end - first)
            shared = [dataset]  # the first attempt reads through the open dataset

            def attempt() -> np.ndarray:
                if shared:
                    return read_window(shared.pop(), window)
                with open_layer(source, layer, bbox, width, height, cache_mb=cache_mb) as fresh:
                    return read_window(fresh, window)

            return with_retries(source, attempt, sleep)

        yield read_rows


def read_rgba(source: WmsSource, layer: str, bbox: BBox, width: int, height: int) -> Raster:
    """Read `layer` over `bbox` (EPSG:4326) as (4, height, width) uint8 RGBA.

    The returned Raster carries exactly from_bounds(west, south, east, north, width,
    height) and EPSG:4326. Timeouts, HTTP 429 and 5xx are retried up to
    `source.retries` times; every failure raises a WmsError subclass.
    """
    with open_grid(source, layer, bbox, width, height) as read_rows:
        data = read_rows(0, height)
    return Raster(data, from_bounds(*bbox.bounds, width, height))


def grown_by_one_pixel(bbox: BBox, width: int, height: int) -> BBox:
    """`bbox` grown by one pixel (of a width x height grid) on every side; it may reach
    past +-180/90 by that pixel, so it is not validated again."""
    dx = bbox.width_deg / width
    dy = bbox.height_deg / height
    grown = BBox.__new__(BBox)
    object.__setattr__(grown, "west", bbox.west - dx)
    object.__setattr__(grown, "south", bbox.south - dy)
    object.__setattr__(grown, "east", bbox.east + dx)
    object.__setattr__(grown, "north", bbox.north + dy)
    return grown


def read_with_halo(
    source: WmsSource, layer: str, bbox: BBox, width: int, height: int
) -> Raster:
    """Read `bbox` grown by one pixel on every side, at (width+2) x (height+2) pixels.

    A 3x3 filter over the result then sees true neighbours at the borders of `bbox`, so
    adjacent tiles mosaic without seams; crop one pixel after filtering.
    """
    grown = grown_by_one_pixel(bbox, width, height)
    return read_rgba(source, layer, grown, width + 2, height + 2)


@dataclass(frozen=True)
class SourceState:
    """What the last probes of a WMS said: `status` "unknown" (never probed), "ok" or
    "down"; `since` and `checked` in seconds since the epoch (UTC)."""

    status: str = "unknown"
    since: float | None = None
    checked: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Capabilities:
    """A WMS's layers: name -> title, and name -> (west, south, east, north) in degrees
    (EX_GeographicBoundingBox / LatLonBoundingBox) where the WMS advertises one; the MIME
    types its GetMap offers."""

    titles: dict[str, str]
    extents: dict[str, tuple[float, float, float, float]]
    formats: tuple[str, ...] = ()


class LayerCatalog:
    """The layers a WMS advertises, kept fresh in the background, never fetched inline.

    Requests read the last known list at once (`layers`, `extents`); a daemon thread
    (`start`) probes the WMS every `probe_s` seconds while it answers, and backs off (1, 2,
    4 ... up to `max_backoff_s` seconds) while it does not, so a hung or dead WMS costs the
    service no request time and no extra upstream request per client request. `state`
    says what the probes found (health checks read it).

    Parameters
    ----------
    source : WmsSource
    probe_s : float
        Seconds between two probes while the WMS answers.
    max_backoff_s : float
        Longest wait between two probes while it does not.
    fetch : callable
        WmsSource -> Capabilities (injectable for tests).
    clock : callable
        Seconds since the epoch.
    """

    def __init__(self, source: WmsSource, probe_s: float = 10.0, max_backoff_s: float = 60.0,
                 fetch: Callable[[WmsSource], Capabilities] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.probe_s = probe_s
        self.max_backoff_s = max_backoff_s
        self._fetch = fetch or fetch_capabilities
        self._clock = clock
        self._capabilities: Capabilities | None = None
        self._state = SourceState()
        self._failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first_probe_done = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Probe the WMS once now; True when it answered (its layers are then current)."""
        now = self._clock()
        try:
            capabilities = self._fetch(self.source)
        except WmsError as exc:
            with self._lock:
                self._failures += 1
                since = self._state.since if self._state.status == "down" else now
                self._state = SourceState("down", since, now, str(exc))
            LOGGER.warning("WMS capabilities unavailable: %s (%s)", exc, exc.detail)
            self._first_probe_done.set()
            return False
        with self._lock:
            self._failures = 0
            self._capabilities = capabilities
            since = self._state.since if self._state.status == "ok" else now
            self._state = SourceState("ok", since, now)
        self._first_probe_done.set()
        return True

    def next_wait_s(self) -> float:
        """Seconds until the next probe: probe_s while it answers, a growing backoff while
        it does not."""
        with self._lock:
            failures = self._failures
        if not failures:
            return self.probe_s
        return min(self.max_backoff_s, float(2 ** min(failures - 1, 16)))

    def start(self) -> None:
        """Probe now and then in a daemon thread of this process (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(self.next_wait_s())

        self._thread = threading.Thread(target=loop, name="wms-capabilities", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background probes."""
        self._stop.set()

    def layers(self, wait_s: float = 0.0) -> dict[str, str]:
        """Layer name -> title, as last fetched. Raises LayersNotKnownYet while no list was
        ever fetched (the WMS has not answered since start-up). Just after start-up, the
        first probe may still be on its way: `wait_s` seconds at most are given to it (an
        Execute, which needs the WMS anyway, waits; documents that list layers do not)."""
        if wait_s > 0 and self._capabilities is None:
            self._first_probe_done.wait(wait_s)
        with self._lock:
            capabilities, state = self._capabilities, self._state
        if capabilities is None:
            raise LayersNotKnownYet("the layer list of this WMS is not known yet"
                                    + (f" ({state.reason})" if state.reason else ""))
        return dict(capabilities.titles)

    def cached(self) -> dict[str, str]:
        """The last fetched layers ({} before the first), without raising."""
        with self._lock:
            return dict(self._capabilities.titles) if self._capabilities else {}

    def extents(self) -> dict[str, tuple[float, float, float, float]]:
        """Layer name -> (west, south, east, north) degrees, where advertised."""
        with self._lock:
            return dict(self._capabilities.extents) if self._capabilities else {}

    def image_format(self) -> str:
        """The GetMap format to read in: choose_image_format of the last capabilities
        (PNG before the first)."""
        with self._lock:
            formats = self._capabilities.formats if self._capabilities else ()
        return choose_image_format(formats)

    def state(self) -> SourceState:
        """What the probes found last."""
        with self._lock:
            return self._state


def fetch_capabilities(source: WmsSource) -> Capabilities:
    """The layers (titles and geographic extents) from the WMS GetCapabilities. Raises
    WmsError."""
    service = _capabilities_document(source)
    titles, extents = {}, {}
    for name, layer in service.contents.items():
        if not name:
            continue
        titles[name] = layer.title or name
        box = getattr(layer, "boundingBoxWGS84", None)
        if box and len(box) >= 4 and all(isinstance(v, (int, float)) for v in box[:4]):
            extents[name] = tuple(float(v) for v in box[:4])
    return Capabilities(titles, extents, _getmap_formats(service))


def _getmap_formats(service) -> tuple[str, ...]:
    """The MIME types OWSLib read from the GetMap operation ((), when none)."""
    try:
        options = service.getOperationByName("GetMap").formatOptions
    except (KeyError, AttributeError):
        return ()
    return tuple(str(value) for value in options or ())


def _capabilities_document(source: WmsSource):
    """OWSLib's parsed GetCapabilities of `source`. Raises WmsError."""
    from owslib.wms import WebMapService  # slow import, only needed here

    try:
        service = WebMapService(source.request_url, version=source.version,
                                timeout=source.timeout_s)
    except Exception as exc:  # owslib raises requests, lxml and ServiceException errors
        text = str(exc)
        detail = redact(text, keep_hosts=True)[:300]
        if "timed out" in text.lower():
            raise WmsTimeout("the WMS GetCapabilities did not answer in time",
                             detail=detail) from exc
        if "connect" in text.lower():
            raise WmsUnavailable("the WMS is not reachable (connection failed)",
                                 detail=detail) from exc
        raise WmsBadResponse("the WMS GetCapabilities could not be read",
                             detail=detail) from exc
    return service



def fetch_layers(source: WmsSource) -> dict[str, str]:
    """Named layers (name -> title) from the WMS GetCapabilities. Raises WmsError."""
    return fetch_capabilities(source).titles
