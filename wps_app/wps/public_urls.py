"""The public URLs a response carries (statusLocation, output references, service URL).

By default they come from [server] url and outputurl. Behind a reverse proxy listed in
[server] trusted_proxies, they follow the proxy's X-Forwarded-Proto, X-Forwarded-Host and
X-Forwarded-Prefix headers instead, so async jobs and outputs by reference work whatever
name and path the proxy publishes the service under. Headers from any other client are
ignored.

PyWPS reads both URLs from its global configuration, so they are overridden per request
through a thread-local layer that pywps_compat puts over
pywps.configuration.get_config_value: correct with threaded workers too, and inherited by
the forked process of an async job.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pywps.configuration as pywps_config

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_PREFIX = re.compile(r"^(/(?!\.{1,2}(/|$))[A-Za-z0-9._~-]+)*$")  # no '.' or '..' segments
_local = threading.local()


def current_overrides() -> dict[tuple[str, str], str] | None:
    """The (section, key) -> value overrides of the request being served, if any."""
    return getattr(_local, "overrides", None)


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """'127.0.0.1, ::1, 10.0.0.0/8' -> networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False)
                 for p in text.split(",") if p.strip())


def forwarded_base(environ: dict, trusted: tuple) -> str | None:
    """'proto://host/prefix' from X-Forwarded-* when the peer is a trusted proxy and the
    headers are well-formed; None otherwise."""
    if not trusted:
        return None
    try:
        peer = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    if not any(peer in network for network in trusted):
        return None
    # Of several values, the right-most is the one the nearest (trusted) proxy added; the
    # ones before it came from whoever talked to that proxy (werkzeug's ProxyFix, x_host=1).
    host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
    if not host or not _HOST.match(host):
        return None
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "http").split(",")[-1].strip().lower()
    if proto not in ("http", "https"):
        return None
    prefix = environ.get("HTTP_X_FORWARDED_PREFIX", "").split(",")[-1].strip().rstrip("/")
    if not _PREFIX.match(prefix):
        return None
    return f"{proto}://{host}{prefix}"


def client_address(environ: dict, trusted: tuple) -> str:
    """The client's IP address: the peer's, or, when the peer is a trusted proxy, the
    right-most X-Forwarded-For value (the one that proxy added)."""
    peer = environ.get("REMOTE_ADDR", "") or "-"
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer[:64]
    if trusted and any(address in network for network in trusted):
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return str(address)


def current_output_url() -> str:
    """The public base URL of outputs for the request being served."""
    return pywps_config.get_config_value("server", "outputurl")


def current_public() -> dict[str, str] | None:
    """The request's public URLs as plain values ({"url", "outputurl"}), or None when the
    configured ones apply: what a job run elsewhere (a Dask worker) needs to write the same
    statusLocation and output URLs (`using`)."""
    overrides = current_overrides()
    if not overrides:
        return None
    return {key: value for (_section, key), value in overrides.items()}


@contextmanager
def using(public: dict[str, str] | None) -> Iterator[None]:
    """Within this block, PyWPS and our handlers see `public` (from `current_public` of the
    request that accepted a job) as the public URLs; None: the configured ones."""
    if not public:
        yield
        return
    with _overriding({("server", "url"): str(public["url"]),
                      ("server", "outputurl"): str(public["outputurl"])}):
        yield


@contextmanager
def _overriding(overrides: dict[tuple[str, str], str]) -> Iterator[None]:
    """`overrides` within the block, then whatever applied before (blocks nest: a queued
    job started while a request is served keeps its own URLs, the request its own)."""
    before = current_overrides()
    _local.overrides = overrides
    try:
        yield
    finally:
        _local.overrides = before


@contextmanager
def serving(environ: dict, trusted: tuple) -> Iterator[None]:
    """Within this block, PyWPS and our handlers see the request's public URLs."""
    base = forwarded_base(environ, trusted)
    if base is None:
        yield
        return
    with _overriding({("server", "url"): f"{base}/wps",
                      ("server", "outputurl"): f"{base}/outputs/"}):
        yield
