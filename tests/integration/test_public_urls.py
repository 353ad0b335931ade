"""statusLocation and output references use the public base URL: configured, or taken from
a trusted reverse proxy's X-Forwarded-* headers."""

from __future__ import annotations

import requests
from jobs import references_of, wait_for_end
from lxml import etree
from wpsclient import NS, document_output, execute_body, get, literal, post, references

POINT = [literal("wms", "sample_city"), literal("lat", 45.5542), literal("lon", -73.4937),
         literal("width", 64), literal("height", 64)]
BOTH = document_output(("image", "image/png"), ("geotiff", "image/tiff"))


def test_configured_base_is_used_by_default(wps):
    """Without a trusted proxy, every URL starts with [server] url / outputurl."""
    answer = post(wps.url, execute_body(POINT, BOTH, store=True, status=True),)
    doc = etree.fromstring(answer.content)
    assert doc.get("statusLocation").startswith(f"{wps.base}/outputs/")
    assert doc.get("serviceInstance").startswith(f"{wps.url}?")
    refs = references_of(wait_for_end(doc.get("statusLocation"))[-1][3])
    assert all(url.startswith(f"{wps.base}/outputs/") for url in refs.values())


def test_forwarded_headers_from_untrusted_clients_are_ignored(wps):
    answer = requests.post(
        wps.url, data=execute_body(POINT, BOTH).encode(),
        headers={"Content-Type": "text/xml", "X-Forwarded-Host": "127.0.0.9",
                 "X-Forwarded-Prefix": "/x"}, timeout=60)
    assert all(url.startswith(f"{wps.base}/outputs/") for url in references(answer).values())


def test_async_and_references_through_a_reverse_proxy(proxied_wps):
    """Through the proxy's /geo prefix: statusLocation, references and the capabilities'
    service URL are the proxy's, and each of them answers through the proxy."""
    server, proxy = proxied_wps
    public = f"http://127.0.0.1:{proxy.port}/geo"
    caps = etree.fromstring(get(proxy.url, request="GetCapabilities").content)
    hrefs = caps.xpath("//ows:Get/@xlink:href", namespaces=NS)
    assert hrefs and all(h.startswith(f"{public}/wps") for h in hrefs)
    answer = post(proxy.url, execute_body(POINT, BOTH, store=True, status=True))
    status_url = etree.fromstring(answer.content).get("statusLocation")
    assert status_url.startswith(f"{public}/outputs/")
    final = wait_for_end(status_url)[-1]
    assert final[0] == "ProcessSucceeded"
    refs = references_of(final[3])
    for url in refs.values():
        assert url.startswith(f"{public}/outputs/")
        assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(refs["image"] + ".aux.xml", timeout=30).status_code == 200
    # a client's own X-Forwarded-Host, sent before the proxy's, is not the one used
    spoofed = requests.post(proxy.url, data=execute_body(POINT, BOTH).encode(), timeout=60,
                            headers={"Content-Type": "text/xml",
                                     "X-Forwarded-Host": "evil.example",
                                     "X-Forwarded-Prefix": "/phish"})
    assert all(url.startswith(f"{public}/outputs/") for url in references(spoofed).values())
    # the same service reached directly still answers with its configured URLs
    direct = references(post(server.url, execute_body(POINT, BOTH)))
    assert all(url.startswith(f"{server.base}/outputs/") for url in direct.values())
