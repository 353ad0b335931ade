"""The map page's routes in-process: `/` as the page or WPS, the static files, and the
/wms/<source> base-map route (its whitelist, and the source's key kept from the client)."""

from __future__ import annotations

import http.server
import io
import json
import re
import threading
from pathlib import Path

import pytest
from lxml import etree, html
from PIL import Image
from werkzeug.test import Client

from wps_app.core.wms import SourceState
from wps_app.web import page
from wps_app.web.app import create_app

KEY = "s3cr3t-upstream-key-0042"
LAYERS = {"sample_city": "Sample city", "roads": "Roads"}
PNG = io.BytesIO()
Image.new("RGB", (4, 4), (10, 20, 30)).save(PNG, format="PNG")
GETMAP = ("/wms/sample?SERVICE=WMS&REQUEST=GetMap&VERSION=1.3.0&LAYERS=sample_city&STYLES="
          "&FORMAT=image/png&TRANSPARENT=false&CRS=EPSG:4326&WIDTH=256&HEIGHT=256"
          "&BBOX=45.55,-73.50,45.56,-73.49")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


class StubCatalog:
    """A layer catalog that answers from memory."""

    source = type("Source", (), {"timeout_s": 1.0})()

    def start(self) -> None:
        """Nothing to probe."""

    def layers(self, wait_s: float = 0.0) -> dict[str, str]:
        return dict(LAYERS)

    def cached(self) -> dict[str, str]:
        return dict(LAYERS)

    def extents(self) -> dict:
        return {"sample_city": (-73.5, 45.55, -73.49, 45.56)}

    def state(self) -> SourceState:
        return SourceState("ok", 1.7e9, 1.7e9 + 5)


class Upstream(http.server.ThreadingHTTPServer):
    """A loopback WMS stand-in: records the query strings it gets and answers a PNG, or
    (mode "exception") a ServiceException that echoes the request, key included."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.connections = 0
        self.mode = "png"
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real WMS

            def setup(self) -> None:
                super().setup()
                upstream.connections += 1

            def do_GET(self) -> None:
                upstream.queries.append(self.path.partition("?")[2])
                if upstream.mode == "png":
                    body, kind = PNG.getvalue(), "image/png"
                elif upstream.mode == "svg":
                    body, kind = SVG, "image/svg+xml"
                else:
                    body, kind = (f"<ServiceExceptionReport><ServiceException>bad request "
                                  f"{self.path}</ServiceException></ServiceExceptionReport>"
                                  ).encode(), "application/vnd.ogc.se_xml"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                """Quiet."""

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/wms?map=sample&apikey={KEY}"


@pytest.fixture
def upstream():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(tmp_path, wms_url: str) -> Client:
    config = tmp_path / "test.cfg"
    config.write_text(
        "[server]\n"
        f"outputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        "[logging]\n"
        f"database = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        f"[wms]\nurl = {wms_url}\ntimeout = 2\nretries = 0\n"
    )
    return Client(create_app([config], catalogs={"sample": StubCatalog()}))


@pytest.fixture
def client(tmp_path, upstream):
    return _client(tmp_path, upstream.url)


def _no_secret(response) -> None:
    """Neither the key nor the upstream address appear in the body or headers."""
    text = response.get_data().decode("latin-1") + str(response.headers)
    assert KEY not in text
    assert "map=sample" not in text and "/wms?" not in text


def test_root_without_wps_parameters_is_the_page(client):
    """GET / (and a permalink) is the page, with the controls the scripts rely on."""
    for url in ("/", "/?layer=sample_city&method=sobel_y&bbox=-73.5,45.55,-73.49,45.56"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        doc = html.fromstring(response.get_data())
        for element_id, tag in (("map", "div"), ("layer", "select"), ("method", "select"),
                                ("run", "button"), ("message", "p")):
            assert doc.get_element_by_id(element_id).tag == tag
        _no_secret(response)


def test_head_of_root_is_the_page(client):
    """HEAD / answers as GET / does, without a body."""
    response = client.head("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.get_data() == b""


def test_page_loads_nothing_from_another_host(client):
    """Every script, stylesheet and image of the page is a relative URL of the service; the
    content security policy allows 'self' only."""
    response = client.get("/")
    doc = html.fromstring(response.get_data())
    urls = doc.xpath("//script/@src | //link/@href | //img/@src")
    assert urls and all(not re.match(r"(?i)^([a-z]+:)?//", url) for url in urls)
    assert all(url.startswith(("static/", "data:")) for url in urls)
    for url in urls:
        if url.startswith("static/page/"):
            assert client.get("/" + url).status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "http" not in policy
    script = client.get("/static/page/map.js").get_data(as_text=True)
    assert not re.search(r"https?://", script.replace(
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84", ""))


def test_page_config_names_the_source_and_extents(client):
    """The page's configuration block: the base-map source, the layers' extents, the /wms
    size cap, as JSON."""
    doc = html.fromstring(client.get("/").get_data())
    config = json.loads(doc.get_element_by_id("page-config").text)
    assert config == {"source": "sample", "maxWmsPx": 2048,
                      "extents": {"sample_city": [-73.5, 45.55, -73.49, 45.56]}}


@pytest.mark.parametrize("query", ["service=WPS&request=GetCapabilities",
                                   "SERVICE=WPS&REQUEST=GetCapabilities",
                                   "request=GetCapabilities&service=WPS&layer=x"])
def test_root_with_wps_parameters_is_still_wps(client, query):
    """GET / with service/request (any case) is answered by the WPS."""
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert etree.QName(etree.fromstring(response.get_data())).localname == "Capabilities"


def test_post_to_root_is_still_wps(client):
    """A POST to / is a WPS request (here a malformed one: an ExceptionReport)."""
    response = client.post("/", data=b"<nonsense/>", content_type="text/xml")
    assert etree.QName(etree.fromstring(response.get_data())).localname == "ExceptionReport"


def test_leaflet_is_served_from_debians_folder(client):
    """/static/leaflet/ serves libjs-leaflet's installed files (make system-deps installs
    the package: a machine without it fails here, as the page would)."""
    response = client.get("/static/leaflet/leaflet.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.get_data() == (page.LEAFLET_DIR / "leaflet.js").read_bytes()
    assert client.get("/static/leaflet/images/layers.png").mimetype == "image/png"


@pytest.mark.parametrize("path", [
    "/static/page/../page.py", "/static/page/%2e%2e/page.py", "/static/page/",
    "/static/page", "/static/other/map.js", "/static/leaflet/../../../etc/passwd",
    "/static/page/.hidden", "/static/page//etc/passwd", "/static/",
])
def test_static_paths_stay_in_their_folders(client, path):
    """Only files under the two static folders are served."""
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("query, message", [
    (GETMAP.replace("REQUEST=GetMap", "REQUEST=GetCapabilities"), "GetMap"),
    (GETMAP.replace("LAYERS=sample_city", "LAYERS=secret_layer"), "LAYERS"),
    (GETMAP.replace("LAYERS=sample_city", "LAYERS=sample_city,secret"), "LAYERS"),
    (GETMAP.replace("WIDTH=256", "WIDTH=2049"), "WIDTH"),
    (GETMAP.replace("HEIGHT=256", "HEIGHT=0"), "HEIGHT"),
    (GETMAP.replace("HEIGHT=256", "HEIGHT=big"), "HEIGHT"),
    (GETMAP.replace("CRS=EPSG:4326", "CRS=EPSG:2154"), "CRS"),
    (GETMAP.replace("FORMAT=image/png", "FORMAT=application/xml"), "FORMAT"),
    (GETMAP.replace("BBOX=45.55,-73.50,45.56,-73.49", "BBOX=1,2,3"), "BBOX"),
    (GETMAP.replace("VERSION=1.3.0", "VERSION=1.0.0"), "VERSION"),
    (GETMAP + "&SLD=http://127.0.0.1/evil.sld", "SLD"),
    (GETMAP + "&map=/etc/other.map", "map"),
    (GETMAP + "&WIDTH=300", "twice"),
])
def test_wms_route_refuses_what_is_not_whitelisted(client, upstream, query, message):
    """Anything outside the whitelist is a 400 with a plain message; the WMS never sees it."""
    response = client.get(query)
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert message in response.get_data(as_text=True)
    assert upstream.queries == []
    _no_secret(response)


def test_wms_route_passes_a_getmap_with_the_key_added(client, upstream):
    """A whitelisted GetMap reaches the WMS with the source's own parameters (the key)
    added server-side; the client gets the image and never the key."""
    response = client.get(GETMAP)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.get_data() == PNG.getvalue()
    _no_secret(response)
    [query] = upstream.queries
    assert f"apikey={KEY}" in query and "map=sample" in query
    assert "LAYERS=sample_city" in query and "CRS=EPSG%3A4326" in query


def test_wms_route_ignores_proxy_variables(client, upstream, monkeypatch):
    """The base-map GetMap goes straight to the configured WMS, as the relay's reads do:
    no proxy from the environment sees the key (nor netrc credentials added)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    response = client.get(GETMAP)
    assert response.status_code == 200
    assert len(upstream.queries) == 1


def test_wms_route_reuses_its_connection_to_the_wms(client, upstream):
    """Base-map GetMaps of one process go over one kept-alive connection to the WMS."""
    for _ in range(3):
        assert client.get(GETMAP).status_code == 200
    assert (len(upstream.queries), upstream.connections) == (3, 1)


def test_wms_route_keeps_the_protocols_projection_key(client, upstream):
    """Under WMS 1.1.1 the projection goes as SRS, under 1.3.0 as CRS."""
    response = client.get(GETMAP.replace("VERSION=1.3.0", "VERSION=1.1.1"))
    assert response.status_code == 200
    assert "SRS=EPSG%3A4326" in upstream.queries[0] and "CRS=" not in upstream.queries[0]


def test_wms_exception_text_is_not_passed_on(client, upstream):
    """A ServiceException (which echoes the request and its key) becomes a plain 502."""
    upstream.mode = "exception"
    response = client.get(GETMAP)
    assert response.status_code == 502
    assert response.get_data(as_text=True).strip() == "the WMS could not draw this map"
    _no_secret(response)


def test_wms_route_answers_only_the_format_asked(client, upstream):
    """A WMS answering another image type than the FORMAT asked (an SVG, a document that
    runs scripts in this service's origin) is a plain 502; an image goes out as the type
    asked, never to be sniffed as another."""
    upstream.mode = "svg"
    response = client.get(GETMAP)
    assert response.status_code == 502
    assert b"<script>" not in response.get_data()
    upstream.mode = "png"
    response = client.get(GETMAP)
    assert (response.status_code, response.mimetype) == (200, "image/png")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unreachable_wms_is_a_plain_502(tmp_path):
    """A WMS that refuses connections: 502, no address."""
    client = _client(tmp_path, f"http://127.0.0.1:9/wms?apikey={KEY}")
    response = client.get(GETMAP)
    assert response.status_code == 502
    assert response.get_data(as_text=True).strip() == "the WMS is not reachable"
    _no_secret(response)


def test_wms_route_unknown_source_and_methods(client, upstream):
    """An unconfigured source is 404; a POST is 405; nothing reaches the WMS."""
    assert client.get(GETMAP.replace("/wms/sample", "/wms/other")).status_code == 404
    assert client.post("/wms/sample", data=GETMAP.partition("?")[2]).status_code == 405
    assert client.get("/wms/sample/x?" + GETMAP.partition("?")[2]).status_code == 404
    assert upstream.queries == []


def test_static_folder_holds_the_pages_files():
    """The page's own files are in the package (wheel and container copy them)."""
    names = {path.name for path in Path(page.STATIC_DIR).iterdir()}
    assert {"index.html", "map.js", "map.css"} <= names


def test_the_relay_reuses_its_connection_to_the_wms(upstream):
    """The header relay (core.relay) serves each GDAL request on a thread of its own; its
    requests to the WMS still share one kept-alive connection."""
    import requests

    from wps_app.core.relay import relayed_url

    url = relayed_url(upstream.url, (("X-API-Key", KEY),), 5.0)
    for _ in range(3):
        answer = requests.get(url + "?SERVICE=WMS&REQUEST=GetMap", timeout=10)
        assert answer.content == PNG.getvalue()
    assert (len(upstream.queries), upstream.connections) == (3, 1)
