"""A small reverse proxy on loopback, as nginx or traefik would sit in front of the WPS:
it publishes the service under a path prefix and sends X-Forwarded-Proto/Host/Prefix."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class ReverseProxy:
    """http://127.0.0.1:port/<prefix>/... -> http://127.0.0.1:upstream_port/..."""

    def __init__(self, upstream_port: int, prefix: str = "/geo", forward_headers: bool = True):
        self.prefix = prefix
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _relay(self):
                if not self.path.startswith(proxy.prefix + "/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
                if forward_headers:
                    # Appended to what the client sent, as chained proxies do: the
                    # right-most value is the one this (trusted) proxy vouches for.
                    ours = {"X-Forwarded-Proto": "http",
                            "X-Forwarded-Host": f"127.0.0.1:{proxy.port}",
                            "X-Forwarded-Prefix": proxy.prefix}
                    for key, value in ours.items():
                        sent = [v for k, v in headers.items() if k.lower() == key.lower()]
                        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
                        headers[key] = ", ".join([*sent, value])
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                upstream.request(self.command, self.path[len(proxy.prefix):], body, headers)
                answer = upstream.getresponse()
                content = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                upstream.close()

            do_GET = do_POST = _relay

        # bound to a port the kernel picks, not one found free and bound later (a race)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}/wps"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
