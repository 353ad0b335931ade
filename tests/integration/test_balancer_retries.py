"""HAProxy (deploy/haproxy.cfg.in) retries a request that met a dead instance on another
one, but never an Execute: a WPS Execute sent by GET (KVP) counts as much as a POST, since
one that failed after it started (a worker killed by a request too large for it, a 502 from
the front) would otherwise run again on every instance, or start a second async job.

Two stand-in instances answer /health with 200 (HAProxy keeps them) and everything else
with 502, and count what they got.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import requests
from waiting import wait_until

from wps_app.ops import balancer


class Failing(http.server.ThreadingHTTPServer):
    """An instance whose front answers 502 (its gunicorn gone) to anything but /health."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        failing = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                healthy = self.path == "/health"
                if not healthy:
                    failing.paths.append(self.path)
                self.send_response(200 if healthy else 502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                """Quiet."""

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def balanced(tmp_path):
    instances = [Failing(), Failing()]
    listen = f"127.0.0.1:{_free_port()}"
    process = balancer.start(balancer.BalancerOptions(
        listen, tuple((f"i{n}", s.address) for n, s in enumerate(instances)),
        tmp_path / "haproxy"))
    try:
        wait_until(lambda: set(balancer.server_states(tmp_path / "haproxy").values())
                   == {"UP"} if (tmp_path / "haproxy" / "haproxy.sock").exists() else False,
                   30, "HAProxy up with both instances")
        yield f"http://{listen}", instances
    finally:
        balancer.stop(process)
        for instance in instances:
            instance.shutdown()
            instance.server_close()


def _seen(instances) -> int:
    return sum(len(instance.paths) for instance in instances)


@pytest.mark.parametrize("query", [
    "service=WPS&version=1.0.0&request=Execute&identifier=get_raster_process",
    "SERVICE=WPS&REQUEST=execute&IDENTIFIER=get_raster_process",
    "Request=EXECUTE&service=WPS",
])
def test_an_execute_by_get_is_never_retried(balanced, query):
    url, instances = balanced
    assert requests.get(f"{url}/wps?{query}", timeout=30).status_code == 502
    assert _seen(instances) == 1


def test_other_requests_are_retried_on_another_instance(balanced):
    url, instances = balanced
    query = "service=WPS&request=GetCapabilities"
    assert requests.get(f"{url}/wps?{query}", timeout=30).status_code == 502
    assert _seen(instances) == 3  # the first try and `retries 2`
    assert all(instance.paths for instance in instances)
