"""The POST guard: UTF-8 WPS 1.0.0 XML only, whatever the encoding tricks."""

from __future__ import annotations

import codecs
import io

import pytest

from wps_app.wps.request_guard import RejectedBody, check_body, read_checked_body

GET_CAPABILITIES = (b'<?xml version="1.0" encoding="UTF-8"?>'
                    b'<wps:GetCapabilities xmlns:wps="http://www.opengis.net/wps/1.0.0" '
                    b'service="WPS"/>')
DOCTYPE = ('<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
           '<wps:GetCapabilities xmlns:wps="http://www.opengis.net/wps/1.0.0">&b;'
           '</wps:GetCapabilities>')


def _utf7(text: str) -> bytes:
    return codecs.encode(text, "utf-7")


def test_a_plain_request_passes():
    check_body(GET_CAPABILITIES, "text/xml")
    check_body(GET_CAPABILITIES.replace(b'encoding="UTF-8"', b"encoding='utf8'"))
    check_body(b"\xef\xbb\xbf" + GET_CAPABILITIES)  # a UTF-8 byte-order mark


@pytest.mark.parametrize("body", [
    # UTF-7: every byte is ASCII, so the DOCTYPE is invisible to a byte scan
    b'<?xml version="1.0" encoding="UTF-7"?>' + _utf7(DOCTYPE),
    b'<?xml version="1.0" encoding="utf-7"?>' + _utf7("<wps:GetCapabilities "
                                                      'xmlns:wps="http://www.opengis.net/wps/1.0.0"/>'),
    ('<?xml version="1.0" encoding="UTF-16"?>' + DOCTYPE).encode("utf-16"),
    ('<?xml version="1.0" encoding="UTF-32"?>' + DOCTYPE).encode("utf-32"),
    ('<?xml version="1.0" encoding="UTF-16LE"?>' + DOCTYPE).encode("utf-16-le"),
    b'<?xml version="1.0" encoding="ISO-8859-1"?><wps:GetCapabilities '
    b'xmlns:wps="http://www.opengis.net/wps/1.0.0"/>',
    b'<?xml version="1.0"?>' + DOCTYPE.encode(),
    b"<!doctype html><html/>",
])
def test_encodings_and_dtds_are_refused(body):
    with pytest.raises(RejectedBody) as info:
        check_body(body, "text/xml")
    assert info.value.status == 400


@pytest.mark.parametrize(("body", "words"), [
    (b"<Execute/>", "root element"),
    (b'<Execute xmlns="http://www.opengis.net/wps/2.0"/>', "root element"),
    (b'<wps:Foo xmlns:wps="http://www.opengis.net/wps/1.0.0"/>', "root element"),
    (b"<unclosed>", "not well-formed"),
    (b"<a>" * 300 + b"</a>" * 300, "not well-formed"),
    (b"", "not well-formed"),
])
def test_anything_but_a_wps_request_gets_a_plain_message(body, words):
    with pytest.raises(RejectedBody) as info:
        check_body(body, "text/xml")
    message = str(info.value)
    assert words in message and "Execute, GetCapabilities, DescribeProcess" in message
    assert "XML_PARSE_HUGE" not in message and "libxml" not in message.lower()


@pytest.mark.parametrize("content_type", ["application/json", "text/json; charset=utf-8",
                                          "application/vnd.oai.openapi+json"])
def test_json_is_not_a_wps_request(content_type):
    with pytest.raises(RejectedBody, match="OGC API - Processes"):
        check_body(b'{"identifier": "get_raster_process"}', content_type)


def test_size_is_checked_before_reading_everything():
    environ = {"CONTENT_LENGTH": "2048", "wsgi.input": io.BytesIO(b"x" * 2048)}
    with pytest.raises(RejectedBody) as info:
        read_checked_body(environ, 1024)
    assert info.value.status == 413
    assert environ["wsgi.input"].tell() == 0  # nothing was read


def test_an_undeclared_length_is_read_one_byte_past_the_limit():
    stream = io.BytesIO(b"x" * 4096)
    with pytest.raises(RejectedBody):
        read_checked_body({"wsgi.input": stream}, 1024)
    assert stream.tell() == 1025


def test_the_body_is_put_back_for_pywps():
    environ = {"CONTENT_LENGTH": str(len(GET_CAPABILITIES)),
               "wsgi.input": io.BytesIO(GET_CAPABILITIES), "CONTENT_TYPE": "text/xml"}
    read_checked_body(environ, 1024)
    assert environ["wsgi.input"].read() == GET_CAPABILITIES
