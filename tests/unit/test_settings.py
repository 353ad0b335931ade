"""One configuration source: files, then the environment, read once and handed to PyWPS."""

from __future__ import annotations

import configparser
import dataclasses
import re
from pathlib import Path

import pytest
import pywps.configuration as pywps_config

from wps_app.settings import (
    REPO_ROOT,
    Settings,
    environment_overrides,
    parse_size,
    read_config,
)
from wps_app.wps.config import pywps_configuration

DEFAULT_CONFIG = REPO_ROOT / "pywps.cfg"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.cfg"
    path.write_text(text)
    return path


def test_later_files_and_the_environment_win(tmp_path):
    extra = _write(tmp_path, "[wms]\nurl = http://127.0.0.1:9/file\ntimeout = 3\n")
    parser = read_config([DEFAULT_CONFIG, extra], {"WPS_WMS_URL": "http://127.0.0.1:9/env"})
    settings = Settings.from_parser(parser)
    assert settings.wms.url == "http://127.0.0.1:9/env"
    assert settings.wms.timeout_s == 3.0


def test_named_sections_are_reachable_from_the_environment(tmp_path):
    environ = {"WPS_WMS__ORTHO__URL": "http://127.0.0.1:9/ortho",
               "WPS_WMS__ORTHO__VERSION": "1.1.1",
               "WPS_METADATA__MAIN__PROVIDER_NAME": "Example"}
    parser = read_config([DEFAULT_CONFIG], environ)
    settings = Settings.from_parser(parser)
    ortho = settings.wms_server("ortho")
    assert (ortho.url, ortho.version) == ("http://127.0.0.1:9/ortho", "1.1.1")
    assert ortho.timeout_s == settings.wms.timeout_s  # inherited from [wms]
    assert parser.get("metadata:main", "provider_name") == "Example"


@pytest.mark.parametrize("name", ["WPS_PORT", "WPS__WMS_URL", "WPS_WMS__ORTHO_URL",
                                  "WPS_WMS__OR-THO__URL", "WPS_WMS__ORTHO__", "WPSX_WMS_URL"])
def test_variables_of_neither_form_are_not_configuration(name):
    assert environment_overrides({name: "x", "WPS_WMS_TIMEOUT": "3"}) == [
        ("wms", "timeout", "3")]


def test_variables_are_interpolated_once_and_percent_stays_literal(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_TEST_KEY", "s3cr%t")
    extra = _write(tmp_path, "[wms]\nurl = http://127.0.0.1:9/wms?key=${EDGE_TEST_KEY}&a=%20\n"
                             "[wms:other]\nurl = http://127.0.0.1:9/${EDGE_TEST_UNSET}\n")
    settings = Settings.from_parser(read_config([DEFAULT_CONFIG, extra], {}))
    assert settings.wms.url == "http://127.0.0.1:9/wms?key=s3cr%t&a=%20"
    assert settings.wms_server("other").url == "http://127.0.0.1:9/${EDGE_TEST_UNSET}"


def test_pywps_reads_the_same_values(tmp_path, monkeypatch):
    """PyWPS's own parser would choke on '%' and copy the environment into every section."""
    monkeypatch.setenv("EDGE_TEST_NOISE", "1")
    extra = _write(tmp_path, "[wms]\nurl = http://127.0.0.1:9/wms?a=%20\n"
                             "[server]\noutputpath = relative/out\nmaxrequestsize = 2mb\n")
    parser = read_config([DEFAULT_CONFIG, extra], {})
    settings = Settings.from_parser(parser)
    config = pywps_configuration(parser, settings)
    assert config.get("wms", "url") == "http://127.0.0.1:9/wms?a=%20"
    assert config.get("server", "outputpath") == str(REPO_ROOT / "relative" / "out")
    assert config.get("server", "maxrequestsize") == "2mb"
    assert settings.max_request_bytes == 2 * 1024 * 1024
    assert "edge_test_noise" not in config.options("server")
    assert config.get("server", "url") == settings.server_url
    assert config.get("logging", "database") == settings.database
    assert config.get("server", "language") == "en-US"  # PyWPS's default kept


def test_relative_sqlite_database_is_under_the_repository():
    parser = read_config([DEFAULT_CONFIG], {"WPS_LOGGING_DATABASE": "sqlite:///var/x.sqlite"})
    assert Settings.from_parser(parser).database == f"sqlite:///{REPO_ROOT / 'var' / 'x.sqlite'}"


@pytest.mark.parametrize(("text", "size"), [("1mb", 1048576), ("512", 512), ("2 kb", 2048),
                                            ("1.5gb", 1610612736)])
def test_sizes(text, size):
    assert parse_size(text) == size


class _Recording(configparser.ConfigParser):
    """A parser that remembers every (section, key) read."""

    def __init__(self):
        super().__init__(interpolation=None)
        self.read_keys: set[tuple[str, str]] = set()

    def get(self, section, option, **kwargs):
        self.read_keys.add((section, option))
        return super().get(section, option, **kwargs)

    def has_option(self, section, option):
        self.read_keys.add((section, option))
        return super().has_option(section, option)


def test_no_dead_keys_in_the_shipped_configuration():
    """Every key of pywps.cfg is read by Settings or is one PyWPS knows."""
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(DEFAULT_CONFIG)
    recording = _Recording()
    recording.read(DEFAULT_CONFIG)
    Settings.from_parser(recording)
    pywps_config.load_hardcoded_configuration()
    pywps_keys = {(s, k) for s in pywps_config.CONFIG.sections()
                  for k in pywps_config.CONFIG.options(s)}
    for section in shipped.sections():
        for key in shipped.options(section):
            if section.startswith("metadata:"):
                continue  # PyWPS's capabilities metadata, free-form
            assert (section, key) in recording.read_keys | pywps_keys, f"[{section}] {key}"


def test_every_setting_is_read_somewhere():
    """No Settings field is dead: each is read by a module outside settings.py."""
    sources = "\n".join(p.read_text() for folder in ("wps_app", "processes")
                        for p in (REPO_ROOT / folder).rglob("*.py")
                        if p.name != "settings.py")
    for field in dataclasses.fields(Settings):
        assert re.search(rf"\.{field.name}\b", sources), field.name
