"""Slow clients cannot take the service down: the nginx front (deploy/nginx.conf.in, the
configuration make run and the container use) reads requests and responses on behalf of a
single gunicorn sync worker, which would otherwise be held by any one of them."""

from __future__ import annotations

import socket

import pytest
import requests
from lxml import etree
from rasters import execute_bbox
from reference import aligned
from wpsclient import NS, document_output, execute_body, get, literal, post, references

POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 64), literal("height", 64)]


def _served(front) -> bool:
    """A GetCapabilities and a small Execute both answer through the front, each within a
    deadline far shorter than the front's client timeout (180 s): a worker held by a slow
    client would make them time out."""
    caps = get(front.url, timeout=60, request="GetCapabilities")
    execute = post(front.url, execute_body(POINT, document_output(("geotiff", "image/tiff"))),
                   timeout=60)
    return caps.status_code == 200 and execute.status_code == 200 and bool(
        references(execute))


def _connect(front) -> socket.socket:
    return socket.create_connection(("127.0.0.1", front.port), timeout=30)


def test_clients_that_never_finish_their_headers(front_wps):
    held = []
    try:
        for _ in range(3):
            sock = _connect(front_wps)
            sock.sendall(b"GET /wps?service=WPS&request=GetCapabilities HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\nX-Slow: 1\r\n")  # no blank line: never done
            held.append(sock)
        assert _served(front_wps)
    finally:
        for sock in held:
            sock.close()


def test_clients_that_never_finish_their_body(front_wps):
    held = []
    try:
        for _ in range(3):
            sock = _connect(front_wps)
            sock.sendall(b"POST /wps HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: text/xml\r\nContent-Length: 5000\r\n\r\n<wps:Exe")
            held.append(sock)
        assert _served(front_wps)
    finally:
        for sock in held:
            sock.close()


def test_clients_that_read_slowly(front_wps, sample):
    """A large output read a kilobyte at a time does not hold the worker: the front takes
    the whole response from gunicorn and feeds the slow reader itself."""
    url = execute_bbox(front_wps, aligned(sample, 300, 300, 3000, 3000), 3000, 3000,
                       "sobel_x")["geotiff"]
    assert int(requests.head(url, timeout=30).headers["Content-Length"]) > 8 * 1024 * 1024
    path = "/" + url.split("/", 3)[3]
    held = []
    try:
        for _ in range(2):
            sock = _connect(front_wps)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            held.append(sock)
        assert _served(front_wps)
    finally:
        for sock in held:
            sock.close()


def test_links_follow_the_front(front_wps):
    """The front sets X-Forwarded-Host itself: statusLocation points at the front, and a
    client's own X-Forwarded-* values are replaced, not trusted."""
    answer = requests.post(front_wps.url, timeout=60, headers={
        "Content-Type": "text/xml", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Prefix": "/phish"},
        data=execute_body(POINT, document_output(("geotiff", "image/tiff")), store=True,
                          status=True).encode())
    location = etree.fromstring(answer.content).get("statusLocation")
    assert location.startswith(f"{front_wps.base}/outputs/")
    assert requests.get(location, timeout=30).status_code == 200
    caps = etree.fromstring(get(front_wps.url, request="GetCapabilities").content)
    assert all(h.startswith(front_wps.url)
               for h in caps.xpath("//ows:Get/@xlink:href", namespaces=NS))


@pytest.mark.parametrize("size", [2 * 1024 * 1024 + 1])
def test_oversized_bodies_stop_at_the_front(front_wps, size):
    answer = requests.post(front_wps.url, data=b" " * size, timeout=60,
                           headers={"Content-Type": "text/xml"})
    assert answer.status_code == 413
