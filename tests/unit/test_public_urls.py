"""Public base URLs from a trusted proxy's X-Forwarded-* headers, and only from those."""

from __future__ import annotations

from wps_app.wps.public_urls import forwarded_base, parse_networks


def test_forwarded_base_validates_headers():
    trusted = parse_networks("127.0.0.1, 10.0.0.0/8")
    ok = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_HOST": "127.0.0.1:8443",
          "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_PREFIX": "/geo/"}
    assert forwarded_base(ok, trusted) == "https://127.0.0.1:8443/geo"
    assert forwarded_base({**ok, "REMOTE_ADDR": "192.0.2.1"}, trusted) is None
    assert forwarded_base({**ok, "HTTP_X_FORWARDED_HOST": "127.0.0.1/x?y"}, trusted) is None
    assert forwarded_base({**ok, "HTTP_X_FORWARDED_PROTO": "ftp"}, trusted) is None
    assert forwarded_base({**ok, "HTTP_X_FORWARDED_PREFIX": "/a/../b"}, trusted) is None
    assert forwarded_base(ok, ()) is None


def test_the_nearest_proxys_value_wins_over_a_clients():
    """A client may send its own X-Forwarded-Host; a proxy appends its own after it."""
    trusted = parse_networks("127.0.0.1")
    environ = {"REMOTE_ADDR": "127.0.0.1",
               "HTTP_X_FORWARDED_HOST": "evil.example, 127.0.0.2:8443",
               "HTTP_X_FORWARDED_PROTO": "http, https",
               "HTTP_X_FORWARDED_PREFIX": "/phish, /geo"}
    assert forwarded_base(environ, trusted) == "https://127.0.0.2:8443/geo"


def test_public_urls_nest_and_restore():
    """A job's URLs applied while a request is served (a queued job started by it) give
    way to the request's own again afterwards, not to the configured ones."""
    from wps_app.wps.public_urls import current_public, serving, using

    proxied = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": "127.0.0.2:8443"}
    job = {"url": "http://127.0.0.3/wps", "outputurl": "http://127.0.0.3/outputs/"}
    with serving(proxied, parse_networks("127.0.0.1")):
        request = current_public()
        with using(job):
            assert current_public() == job
        assert current_public() == request == {
            "url": "http://127.0.0.2:8443/wps", "outputurl": "http://127.0.0.2:8443/outputs/"}
    assert current_public() is None
