"""A loopback HTTP proxy in front of the WMS whose GetMap requests can be held at a gate.

A test closes the gate, starts a job and opens the gate once it has seen the job in
progress: the job cannot finish before, so what the client observes meanwhile does not
depend on timing. Any process may work the gate: GET /gate/close, /gate/open.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_AT_MOST_S = 120.0  # a gate left closed by a failing test lets requests through then


class GateProxy:
    """Forwards GET http://127.0.0.1:<port>/... to `target` (e.g. http://127.0.0.1:8081);
    while the gate is closed, GetMap requests wait for it to open."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.opened = threading.Event()
        self.opened.set()
        self.held = 0  # GetMaps that found the gate closed
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wms"

    def close(self) -> None:
        self.opened.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path in ("/gate/close", "/gate/open"):
                    if self.path == "/gate/close":
                        proxy.opened.clear()
                    else:
                        proxy.opened.set()
                    self._reply(200, "text/plain", self.path.encode() + b"\n")
                    return
                if "request=getmap" in self.path.lower() and not proxy.opened.is_set():
                    proxy.held += 1
                    proxy.opened.wait(HOLD_AT_MOST_S)
                try:
                    with urllib.request.urlopen(proxy.target + self.path, timeout=60) as up:
                        self._reply(up.status, up.headers.get("Content-Type", ""), up.read())
                except urllib.error.HTTPError as exc:
                    self._reply(exc.code, exc.headers.get("Content-Type", ""), exc.read())

        return Handler
