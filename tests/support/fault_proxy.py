"""A loopback TCP proxy in front of the real MapServer that injects faults.

The main paths talk to MapServer directly; this proxy only shapes failures the real
server does not produce on demand: a delay longer than the service's timeout, an HTTP 500,
a body that is not an image, or a GetMap held until the test lets it go ("hold"), which
makes the states of a job observable while it waits for the WMS. GetCapabilities requests
always pass through untouched, so the service can list layers while its GetMaps fail.
"""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("pass", "delay", "hold", "http500", "not_image", "truncated", "wrong_size", "flaky",
         "hang_all", "redirect_home", "redirect_away", "redirect_away_all")
MOVED = b"/moved"  # "redirect_home" sends GetMaps here, on this proxy, which then passes


class Sink:
    """A loopback HTTP server on its own port that records every request's head and answers
    404: the "other host" a redirecting proxy points at."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                sink.heads.append(f"{self.requestline}\r\n{self.headers}".encode())
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FaultProxy:
    """Forward 127.0.0.1:port -> 127.0.0.1:target_port, faulting GetMap as `mode` says."""

    def __init__(self, target_port: int, mode: str = "pass", delay_s: float = 8.0,
                 hold_cap_s: float = 60.0) -> None:
        self.target_port = target_port
        self._changed = threading.Condition()  # mode changes, GetMaps held and let go
        self._mode = "pass"
        self.mode = mode
        self.delay_s = delay_s
        self.hold_cap_s = hold_cap_s  # "hold": a GetMap never waits longer than this
        self.held = 0  # GetMaps being held right now
        self.flaky_failures = 2  # "flaky": this many GetMaps answer 503, then all pass
        self.getmaps = 0
        self.requests = 0  # every request, GetCapabilities included
        self.heads: list[bytes] = []  # the last 500 requests' heads (request line, headers)
        self.sink = Sink()  # where the "redirect_away" modes send clients
        # bound to a port the kernel picks, not one found free and bound later (a race)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        assert mode in MODES, mode
        with self._changed:
            self._mode = mode
            self._changed.notify_all()  # held GetMaps leave "hold"

    def hold(self) -> None:
        """Hold every GetMap from now on, until release()."""
        self.mode = "hold"

    def release(self) -> None:
        """Let every held GetMap through, and pass the later ones."""
        self.mode = "pass"

    def wait_held(self, count: int = 1, timeout_s: float = 30) -> None:
        """Wait until `count` GetMaps are being held at once; AssertionError after
        `timeout_s` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.held >= count, timeout_s):
                raise AssertionError(f"waited {timeout_s:g} s for {count} GetMap(s) held by "
                                     f"the proxy; {self.held} held, mode {self._mode}")

    def _hold_getmap(self, mode: str = "hold") -> None:
        with self._changed:
            self.held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._mode != mode, self.hold_cap_s)
            self.held -= 1
            self._changed.notify_all()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wms"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()
        self.sink.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _redirect(self, client: socket.socket, request: bytes, base: bytes) -> None:
        target = request.split(b" ", 2)[1]
        if target.startswith(b"http"):
            target = b"/" + target.split(b"/", 3)[-1]
        client.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + base + target
                       + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _handle(self, client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(65536)
                if not chunk:
                    return
                request += chunk
            request_line = request.split(b"\r\n", 1)[0]
            is_getmap = b"getmap" in request_line.lower()
            moved = request_line.split(b" ")[1].startswith(MOVED)
            with self._changed:
                self.requests += 1
                self.heads = [*self.heads[-499:], request.partition(b"\r\n\r\n")[0]]
            mode = self.mode
            if (mode == "redirect_away_all" or is_getmap and mode == "redirect_away"):
                self._redirect(client, request, self.sink.url.encode())
                return
            if is_getmap and mode == "redirect_home" and not moved:
                self._redirect(client, request,
                               f"http://127.0.0.1:{self.port}".encode() + MOVED)
                return
            if moved:  # back to the path MapServer serves
                method, target, rest = request.split(b" ", 2)
                request = b" ".join([method, target[len(MOVED):], rest])
            if self.mode == "hang_all":  # any request, GetCapabilities too: never answered
                self._hold_getmap("hang_all")
                return
            if is_getmap:
                with self._changed:
                    self.getmaps += 1
            if is_getmap and self.mode == "hold":
                self._hold_getmap()
            if is_getmap and self.mode == "flaky" and self.getmaps <= self.flaky_failures:
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                               b"Connection: close\r\n\r\nbusy\n")
                return
            if is_getmap and self.mode == "wrong_size":
                # ask MapServer for a smaller image than the client asked for
                request = re.sub(rb"(?i)(WIDTH=)(\d+)", lambda m: m.group(1) + b"17", request,
                                 count=1)
            if is_getmap and self.mode == "delay":
                threading.Event().wait(self.delay_s)  # the slow WMS this mode plays
            if is_getmap and self.mode == "http500":
                client.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n"
                               b"Connection: close\r\n\r\nboom\n")
                return
            if is_getmap and self.mode == "not_image":
                body = b"<html><body>maintenance</body></html>"
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: "
                               + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                return
            answer = self._forward(request)
            if is_getmap and self.mode == "truncated":
                head, _, body = answer.partition(b"\r\n\r\n")
                answer = head + b"\r\n\r\n" + body[: len(body) // 3]
            try:
                client.sendall(answer)
            except OSError:
                pass

    def _forward(self, request: bytes) -> bytes:
        # Ask for a closed connection so the whole answer can be read to EOF.
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body
        with socket.create_connection(("127.0.0.1", self.target_port), timeout=30) as upstream:
            upstream.sendall(request)
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)
