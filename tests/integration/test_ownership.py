"""With API keys: async jobs belong to the key that created them; per-client job caps."""

from __future__ import annotations

import requests
from apikeys import KEY_A, KEY_B
from lxml import etree
from waiting import wait_until
from wpsclient import NS, document_output, exception_of, execute_body, literal

POINT = [literal("wms", "sample_city"), literal("lat", 45.5541), literal("lon", -73.4936),
         literal("width", 64), literal("height", 64)]
FORM = document_output(("geotiff", "image/tiff"))


def _post(server, key: str | None, body: str) -> requests.Response:
    headers = {"Content-Type": "text/xml"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(server.url, data=body.encode(), headers=headers, timeout=60)


def _get(url: str, key: str | None) -> requests.Response:
    return requests.get(url, headers={"X-API-Key": key} if key else {}, timeout=30)


def _status(url: str, key: str) -> str:
    doc = etree.fromstring(_get(url, key).content)
    return etree.QName(doc.find("wps:Status", NS)[0]).localname


def test_jobs_belong_to_their_key_and_each_key_has_its_cap(keyed_wps, gate):
    assert _post(keyed_wps, None, execute_body(POINT, FORM)).status_code == 401
    first = _post(keyed_wps, KEY_A, execute_body(POINT, FORM, store=True, status=True))
    location = etree.fromstring(first.content).get("statusLocation")
    gate.wait_held(1)  # alice's job runs, held at its GetMap
    # her second job is over her cap; bob's is not
    busy = _post(keyed_wps, KEY_A, execute_body(POINT, FORM, store=True, status=True))
    assert busy.status_code == 503 and exception_of(busy)[0] == "ServerBusy"
    assert int(busy.headers["Retry-After"]) > 0
    other = _post(keyed_wps, KEY_B, execute_body(POINT, FORM, store=True, status=True))
    other_location = etree.fromstring(other.content).get("statusLocation")
    assert other.status_code == 200 and other_location
    # only alice sees her job; bob gets 404 as if it did not exist, nobody without a key
    assert _get(location, KEY_A).status_code == 200
    assert _get(location, KEY_B).status_code == 404
    assert _get(location, None).status_code == 401
    gate.release()
    wait_until(lambda: _status(location, KEY_A) == "ProcessSucceeded", 60, "alice's job")
    wait_until(lambda: _status(other_location, KEY_B) == "ProcessSucceeded", 60, "bob's job")
    doc = etree.fromstring(_get(location, KEY_A).content)
    output = doc.find(".//wps:Reference", NS).get("href")
    assert _get(output, KEY_A).status_code == 200
    assert _get(output, KEY_B).status_code == 404
    # the sync outputs of a key are its own too
    sync = _post(keyed_wps, KEY_B, execute_body(POINT, FORM))
    href = etree.fromstring(sync.content).find(".//wps:Reference", NS).get("href")
    assert _get(href, KEY_B).status_code == 200 and _get(href, KEY_A).status_code == 404
    log = (keyed_wps.directory / "gunicorn.log").read_text()
    assert "client=alice" in log and KEY_A not in log and KEY_B not in log
