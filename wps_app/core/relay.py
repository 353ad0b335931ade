"""Configured HTTP headers (a WMS key) sent to the configured server and nowhere else.

Some WMSs take their key as a header (`X-API-Key: ...`). GDAL's only way to send one is
GDAL_HTTP_HEADERS, and curl, which GDAL uses, follows redirects and sends such headers to
whatever host a redirect names (measured with GDAL 3.10.3: `X-API-Key` reached a server on
another port after a 302; only `Authorization` was dropped). GDAL has no option to stop
following redirects, and OWSLib (requests) re-sends custom headers on redirects too.

So neither gets the headers. Each process runs one loopback relay: GDAL and OWSLib ask
`http://127.0.0.1:PORT/<token>?<query>`; the relay asks the configured URL with the query
appended and the headers added, and follows a redirect only when it stays on the same
scheme, host and port. A redirect elsewhere is not followed at all and answers 502, so
nothing, key or not, goes to a host nobody configured. The token is random per process
and source (128 bits): another local process cannot use the relay as a keyed proxy.

The relay's failures are worded for core.wms's classification (GDAL and requests put the
reason or body in their messages): "timed out" -> WmsTimeout, "connect" -> WmsUnavailable.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3

LOGGER = logging.getLogger(__name__)

Headers = tuple[tuple[str, str], ...]
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK_BYTES = 1 << 16


class RedirectRefused(Exception):
    """The server redirected to another origin (scheme, host or port): not followed."""


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def with_query(url: str, query: str) -> str:
    """`url` with `query` appended as GDAL appends GetMap parameters to its ServerUrl."""
    if not query:
        return url
    if "?" not in url:
        return f"{url}?{query}"
    return url + query if url.endswith(("?", "&")) else f"{url}&{query}"


def _credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without userinfo, and the userinfo as a basic-auth pair (requests would drop
    it on a redirect; a same-origin redirect keeps it here)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username), unquote(parts.password or ""))


_session: tuple[int, requests.Session] | None = None
_session_lock = threading.Lock()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A WMS's cookies are neither kept nor sent back: no state between requests."""

    def set_ok(self, cookie, request) -> bool:
        return False


def session() -> requests.Session:
    """This process's keep-alive session to the WMSs, shared by its threads (urllib3's
    connection pool is thread-safe; the relay serves each request on a thread of its own,
    so a session per thread would never be used twice); a forked process makes its own. It
    ignores the environment (no netrc credentials, no proxy variables: configured headers
    go to the configured server only), keeps no cookies, and asks for no content coding
    (bodies are passed on as sent)."""
    global _session
    with _session_lock:
        if _session is None or _session[0] != os.getpid():
            made = requests.Session()
            made.trust_env = False
            made.headers["Accept-Encoding"] = "identity"
            made.cookies.set_policy(_NoCookies())
            _session = (os.getpid(), made)
        return _session[1]


def _get_once_more_if_dropped(http: requests.Session, url: str, **kwargs) -> requests.Response:
    """http.get, asked once more on a new connection when the first failed to connect or
    was dropped: a kept-alive connection the server closes just as it is reused fails
    though the server is fine (a GetMap is idempotent). A timeout is not retried: the
    server is slow, and asking again would double the wait."""
    try:
        return http.get(url, **kwargs)
    except requests.ConnectionError as exc:
        if isinstance(exc, requests.Timeout):
            raise
        return http.get(url, **kwargs)


def fetch_within_origin(url: str, headers: Headers, timeout_s: float,
                        http: requests.Session | None = None) -> requests.Response:
    """GET `url` with `headers` through `http` (this process's session() by default),
    following at most MAX_REDIRECTS redirects that stay on `url`'s origin; a streamed
    response the caller closes. Raises RedirectRefused for a redirect elsewhere (nothing is
    sent there) or too many, and requests' errors."""
    bare, auth = _credentials(url)
    home = origin(bare)
    http = http or session()
    current = bare
    for _ in range(MAX_REDIRECTS + 1):
        response = _get_once_more_if_dropped(
            http, current, headers=dict(headers), auth=auth, timeout=timeout_s,
            allow_redirects=False, stream=True)
        if response.status_code not in REDIRECTS or "Location" not in response.headers:
            return response
        target = urljoin(current, response.headers["Location"])
        response.close()
        if origin(target) != home:
            scheme, host, port = origin(target)
            raise RedirectRefused(f"redirected to another origin ({scheme}://{host}:{port})")
        current = target
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class Route:
    """Where one relay path leads: the configured URL, its headers, the read timeout."""

    url: str
    headers: Headers
    timeout_s: float


class _Handler(BaseHTTPRequestHandler):
    server: _RelayServer
    protocol_version = "HTTP/1.0"  # one request per connection, body ends at close

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path, _, query = self.path.partition("?")
        route = self.server.routes.get(path.strip("/"))
        if route is None:
            self._answer(404, "Not Found", b"unknown relay path\n")
            return
        try:
            response = fetch_within_origin(with_query(route.url, query), route.headers,
                                           route.timeout_s)
        except RedirectRefused as exc:
            LOGGER.warning("WMS relay: %s; not followed, headers not sent", exc)
            self._answer(502, "Redirect Refused",
                         b"relay: the WMS redirected to another origin, refused\n")
            return
        except requests.Timeout:
            self._answer(504, "Upstream Timed Out", b"relay: the WMS timed out\n")
            return
        except requests.RequestException:
            self._answer(503, "Upstream Connect Failed",
                         b"relay: could not connect to the WMS\n")
            return
        with response:
            try:
                self.send_response(response.status_code, response.reason or "")
                # the length lets GDAL tell a truncated image from a short one (bodies come
                # as sent: the session asks for no content coding)
                for name in ("Content-Type", "Content-Disposition", "Content-Length"):
                    if name in response.headers:
                        self.send_header(name, response.headers[name])
                self.end_headers()
                for chunk in response.raw.stream(CHUNK_BYTES, decode_content=False):
                    self.wfile.write(chunk)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                # upstream or GDAL went away mid-body: the short body is GDAL's error
                LOGGER.warning("WMS relay: the transfer broke off")

    def _answer(self, status: int, reason: str, body: bytes) -> None:
        try:
            self.send_response(status, reason)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # GDAL gave up first (its timeout is the relay's): nobody to tell

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the path holds the token and the query; the service logs its own reads


class _RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        LOGGER.warning("WMS relay: a request failed", exc_info=True)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}


class HeaderRelay:
    """The loopback relay of this process (see the module docstring)."""

    def __init__(self) -> None:
        self._server = _RelayServer()
        self._tokens: dict[tuple[str, Headers, float], str] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._server.serve_forever, name="wms-header-relay",
                         daemon=True).start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url_for(self, url: str, headers: Headers, timeout_s: float) -> str:
        """The loopback URL standing for `url` with `headers` (no trailing '?')."""
        # whole seconds, as GDAL counts them: the sync deadline cuts timeouts to what is
        # left, and a route per fraction would grow without bound
        timeout_s = float(max(1, round(timeout_s)))
        key = (url, headers, timeout_s)
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                token = secrets.token_urlsafe(16)
                self._server.routes[token] = Route(url, headers, timeout_s)
                self._tokens[key] = token
        return f"http://127.0.0.1:{self.port}/{token}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_relay: tuple[int, HeaderRelay] | None = None
_relay_lock = threading.Lock()


def relayed_url(url: str, headers: Iterable[tuple[str, str]], timeout_s: float) -> str:
    """`url` as this process's relay serves it with `headers` added. The relay starts on
    first use in each process (a forked gunicorn worker or job runs its own: threads do
    not survive fork)."""
    global _relay
    with _relay_lock:
        if _relay is None or _relay[0] != os.getpid():
            _relay = (os.getpid(), HeaderRelay())
        relay = _relay[1]
    return relay.url_for(url, tuple(headers), timeout_s)
