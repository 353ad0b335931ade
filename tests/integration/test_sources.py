"""Named WMS sources: servers come from configuration only; clients pick one by name."""

from __future__ import annotations

import configparser

import pytest
import requests
from lxml import etree
from rasters import read_url
from wpsclient import (
    NS,
    document_output,
    exception_of,
    execute_body,
    get,
    literal,
    post,
    references,
)

from wps_app.settings import Settings, read_wms_servers

POINT = [literal("lat", 45.554), literal("lon", -73.4935), literal("width", 32),
         literal("height", 32)]
GEOTIFF = document_output(("geotiff", "image/tiff"))


def test_describe_lists_sources_and_their_layers(multi_wps):
    """Both sources' layers are advertised once the background probes have read them."""
    from waiting import wait_until

    def described():
        doc = etree.fromstring(get(multi_wps.url, request="DescribeProcess",
                                   identifier="get_raster_process").content)
        layers = doc.xpath("//Input[ows:Identifier='wms']//ows:Value/text()", namespaces=NS)
        # a tuple: an lxml element's truth is its number of children
        return (doc,) if {"sample_city", "broken_layer"} <= set(layers) else None

    (doc,) = wait_until(described, 30, "both sources' layers advertised")
    source = doc.xpath("//Input[ows:Identifier='source']", namespaces=NS)[0]
    assert source.xpath(".//ows:Value/text()", namespaces=NS) == ["sample", "faults"]
    assert source.findtext(".//DefaultValue") == "sample"
    layers = doc.xpath("//Input[ows:Identifier='wms']//ows:Value/text()", namespaces=NS)
    assert {"sample_city", "broken_layer"} <= set(layers)


def test_the_named_source_is_the_one_read(multi_wps, faults_wms):
    """broken_layer exists only on `faults`: there MapServer refuses to draw it."""
    answer = post(multi_wps.url, execute_body(
        [literal("wms", "broken_layer"), literal("source", "faults"), *POINT], GEOTIFF))
    code, locator, text = exception_of(answer)
    assert (answer.status_code, code, locator) == (502, "NoApplicableCode", "faults")
    assert "refused" in text
    good = references(post(multi_wps.url, execute_body(
        [literal("wms", "sample_city"), literal("source", "faults"), *POINT], GEOTIFF)))
    tags = read_url(good["geotiff"])[3]
    assert tags["WMS_SOURCE"] == "faults" and faults_wms.url not in str(tags)


def test_layer_is_checked_against_the_chosen_source(multi_wps):
    answer = post(multi_wps.url, execute_body([literal("wms", "broken_layer"), *POINT],
                                              GEOTIFF))
    assert answer.status_code == 400
    assert exception_of(answer)[:2] == ("InvalidParameterValue", "wms")


@pytest.mark.parametrize("value", ["nope", "http://127.0.0.1:9/wms", "file:///etc/passwd"])
def test_unconfigured_source_is_refused(multi_wps, value):
    answer = post(multi_wps.url, execute_body(
        [literal("wms", "sample_city"), literal("source", value), *POINT], GEOTIFF))
    assert answer.status_code == 400
    code, locator, text = exception_of(answer)
    assert (code, locator) == ("InvalidParameterValue", "source")
    assert "sample, faults" in text


def test_health_reports_every_source(multi_wps):
    body = requests.get(f"{multi_wps.base}/health", timeout=30).json()
    assert set(body["sources"]) == {"sample", "faults"}
    assert body["status"] == "ok"


def parse(text: str) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    return cfg


def test_named_sources_inherit_the_default_values():
    servers = read_wms_servers(parse(
        "[wms]\nname = main\nurl = http://127.0.0.1:1/wms\ntimeout = 7\nversion = 1.1.1\n"
        "[wms:other]\nurl = http://127.0.0.1:2/wms\n"))
    assert [s.name for s in servers] == ["main", "other"]
    assert servers[1].timeout_s == 7 and servers[1].version == "1.1.1"
    assert servers[1].url == "http://127.0.0.1:2/wms"


@pytest.mark.parametrize("text", [
    "[wms:other]\ntimeout = 3\n",  # no url
    "[wms:bad name]\nurl = http://127.0.0.1:2/wms\n",
    "[wms:x]\nurl = file:///etc/passwd\n",
    "[wms]\nname = x\n[wms:x]\nurl = http://127.0.0.1:2/wms\n",  # twice
])
def test_bad_source_configuration_is_refused(text):
    with pytest.raises(ValueError):
        Settings.from_parser(parse(text))
