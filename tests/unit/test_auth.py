"""API keys: the key file, how a request presents a key, what is public."""

from __future__ import annotations

import pytest

from wps_app.web.auth import KeyRing, is_public, presented_key

KEY_A = "a" * 12 + "-secret-A"
KEY_B = "b" * 12 + "-secret-B"


@pytest.fixture
def ring(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# clients\n{KEY_A} alice\n\n{KEY_B}   bob   # the lab\n")
    return KeyRing.load(path)


def test_keys_map_to_names(ring):
    assert ring.name_of(KEY_A) == "alice"
    assert ring.name_of(KEY_B) == "bob"
    for wrong in (None, "", KEY_A[:-1], KEY_A + "x", "alice"):
        assert ring.name_of(wrong) is None


@pytest.mark.parametrize("text", [
    "short alice\n",  # a key under 16 characters
    f"{KEY_A}\n",  # no name
    f"{KEY_A} al ice\n",  # three fields
    f"{KEY_A} al/ice\n",  # a name that could not be logged safely
    f"{KEY_A} alice\n{KEY_B} alice\n",  # one name twice
    "# nothing\n",
])
def test_bad_key_files_are_refused_without_echoing_keys(tmp_path, text):
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        KeyRing.load(path)
    assert KEY_A not in str(info.value) and KEY_B not in str(info.value)


@pytest.mark.parametrize(("headers", "key"), [
    ({"HTTP_AUTHORIZATION": f"Bearer {KEY_A}"}, KEY_A),
    ({"HTTP_AUTHORIZATION": f"bearer  {KEY_A} "}, KEY_A),
    ({"HTTP_X_API_KEY": KEY_B}, KEY_B),
    ({"HTTP_AUTHORIZATION": f"Basic {KEY_A}"}, None),
    ({}, None),
])
def test_presented_key(headers, key):
    assert presented_key(headers) == key


@pytest.mark.parametrize(("method", "path", "query", "public"), [
    ("GET", "/health", "", True),
    ("GET", "/wps", "service=WPS&request=GetCapabilities", True),
    ("GET", "/", "SERVICE=WPS&REQUEST=getcapabilities", True),
    ("GET", "/wps", "service=WPS&request=DescribeProcess&identifier=x", False),
    ("POST", "/wps", "request=GetCapabilities", False),
    ("GET", "/outputs/x/y.tif", "", False),
    ("GET", "/wps", "", False),
])
def test_what_is_public(method, path, query, public):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    assert is_public(environ) is public
