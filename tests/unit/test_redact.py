"""Nothing configured (URL keys, credentials, paths) survives into client-facing text."""

from __future__ import annotations

import pytest

from wps_app.core.redact import redact

SECRET = "SECRET123"


@pytest.mark.parametrize("text", [
    f"HTTP error code : 500 for http://127.0.0.1:8081/wms?apikey={SECRET}&SERVICE=WMS",
    f"Max retries exceeded with url: /wms?apikey={SECRET}&service=WMS (Caused by ...)",
    f"401 Client Error: Unauthorized for url: https://user:{SECRET}@127.0.0.1/wms?x=1",
    f"msWMSLoadGetMapParams(): WMS server error. apikey={SECRET}&LAYERS=x&BBOX=1,2,3,4",
    f"curl error: could not resolve host for http://127.0.0.1/{SECRET}/wms",
    f"token={SECRET}",
])
def test_keys_never_survive(text):
    for cleaned in (redact(text), redact(text, keep_hosts=True)):
        assert SECRET not in cleaned
    assert "127.0.0.1" not in redact(text)  # clients are told no configured address


def test_configured_secrets_are_masked_anywhere():
    assert redact(f"header X-Key: {SECRET} was refused", (SECRET,)) == (
        "header X-Key: *** was refused")


def test_plain_text_is_kept():
    text = "the WMS refused the request (LayerNotDefined): layer sample_x is not defined"
    assert redact(text) == text


def test_hosts_stay_for_operators_only():
    text = "connect to http://127.0.0.1:8081/wms?k=v failed"
    assert redact(text, keep_hosts=True) == "connect to http://127.0.0.1:8081/... failed"
    assert redact(text) == "connect to [url] failed"
