"""`[wms] headers`: parsed strictly, never inherited, never shown; the relay's URL rules."""

from __future__ import annotations

import configparser
import logging

import pytest

from wps_app.core.relay import _credentials, origin, with_query
from wps_app.core.types import BBox
from wps_app.core.wms import WmsSource, gdal_wms_xml
from wps_app.settings import Settings, parse_headers
from wps_app.web.logs import EscapingFormatter

KEY = "s3cr3t-0c7d"


def settings_of(text: str) -> Settings:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return Settings.from_parser(parser)


def test_header_lines_become_pairs():
    assert parse_headers(f"\nX-API-Key: {KEY}\n\nX-Tenant:  acme \n", "k") == (
        ("X-API-Key", KEY), ("X-Tenant", "acme"))


@pytest.mark.parametrize("text", [
    f"X API Key: {KEY}",          # not a token
    f"X-API-Key {KEY}",           # no colon
    "X-API-Key:",                 # no value
    f"Host: {KEY}",               # set by the client
    f"Content-Length: {KEY}",
    f"Transfer-Encoding: {KEY}",
    f"X-API-Key: {KEY}\x00",      # control character
    f"X-API-Key: {KEY}\x7f",
])
def test_bad_header_lines_are_refused_without_echoing_the_value(text):
    with pytest.raises(ValueError) as caught:
        parse_headers(text, "[wms] headers")
    assert KEY not in str(caught.value) and "line 1" in str(caught.value)


def test_headers_reach_the_core_and_are_not_inherited():
    settings = settings_of(f"[wms]\nurl = http://127.0.0.1:1/wms\nheaders = X-API-Key: {KEY}\n"
                           "[wms:other]\nurl = http://127.0.0.1:2/wms\n")
    assert settings.wms_source().headers == (("X-API-Key", KEY),)
    assert settings.wms_source("other").headers == ()
    assert settings.secret_values == (KEY,)


def test_no_repr_shows_the_url_or_the_headers():
    settings = settings_of(f"[wms]\nurl = http://127.0.0.1:1/wms?apikey={KEY}\n"
                           f"headers = X-API-Key: {KEY}\n")
    assert KEY not in repr(settings.wms) and KEY not in repr(settings.wms_source())


def test_without_headers_gdal_asks_the_configured_url_itself():
    source = WmsSource("http://127.0.0.1:1/wms?map=x")
    assert source.request_url == source.url
    assert "http://127.0.0.1:1/wms?map=x&amp;" in gdal_wms_xml(
        source, "a", BBox(0, 0, 1, 1), 4, 4)


def test_with_headers_gdal_asks_the_relay_and_never_sees_the_key():
    source = WmsSource(f"http://127.0.0.1:1/wms?apikey={KEY}", headers=(("X-API-Key", KEY),))
    description = gdal_wms_xml(source, "a", BBox(0, 0, 1, 1), 4, 4)
    assert KEY not in description and "http://127.0.0.1:" in description
    assert source.request_url == WmsSource(source.url, headers=source.headers).request_url


@pytest.mark.parametrize(("a", "b", "same"), [
    ("http://127.0.0.1/wms", "http://127.0.0.1:80/other?x=1", True),
    ("https://Host.example/wms", "https://host.example:443/", True),
    ("http://127.0.0.1:8081/wms", "http://127.0.0.1:8082/wms", False),
    ("http://127.0.0.1/wms", "https://127.0.0.1/wms", False),
    ("http://127.0.0.1/wms", "http://127.0.0.2/wms", False),
    ("http://user:pw@127.0.0.1/wms", "http://127.0.0.1/wms", True),
])
def test_origins(a, b, same):
    assert (origin(a) == origin(b)) is same


@pytest.mark.parametrize(("url", "query", "joined"), [
    ("http://h/wms", "a=1", "http://h/wms?a=1"),
    ("http://h/wms?", "a=1", "http://h/wms?a=1"),
    ("http://h/wms?map=m", "a=1", "http://h/wms?map=m&a=1"),
    ("http://h/wms?map=m&", "a=1", "http://h/wms?map=m&a=1"),
    ("http://h/wms?map=m", "", "http://h/wms?map=m"),
])
def test_queries_are_appended_as_gdal_appends_them(url, query, joined):
    assert with_query(url, query) == joined


def test_userinfo_becomes_basic_auth():
    assert _credentials(f"http://me:{KEY}@127.0.0.1:81/wms?x=1") == (
        "http://127.0.0.1:81/wms?x=1", ("me", KEY))
    assert _credentials("http://127.0.0.1/wms") == ("http://127.0.0.1/wms", None)


def test_logs_mask_configured_header_values():
    formatter = EscapingFormatter(secrets=(KEY,))
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "sent %s", (KEY,), None)
    assert KEY not in formatter.format(record)
    try:
        raise RuntimeError(f"upstream said {KEY}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    assert KEY not in formatter.format(record)
