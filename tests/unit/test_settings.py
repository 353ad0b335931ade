"""One configuration source: files, then the environment, read once and handed to PyWPS."""

from __future__ import annotations

import configparser
import dataclasses
import re
from pathlib import Path

import pytest
import pywps.configuration as pywps_config

from wps_app.core.types import Limits, RenderOptions
from wps_app.core.wms import WmsSource
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


def test_keywords_reach_pywps_without_the_spaces_after_commas(tmp_path):
    """PyWPS splits keyword lists on ',' only: ' PyWPS' would be a keyword otherwise."""
    extra = _write(tmp_path, "[metadata:main]\nidentification_keywords = WPS,  Sobel , ,edges\n")
    parser = read_config([DEFAULT_CONFIG, extra], {})
    config = pywps_configuration(parser, Settings.from_parser(parser))
    assert config.get("metadata:main", "identification_keywords").split(",") == [
        "WPS", "Sobel", "edges"]


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
    """No Settings field is dead: each is read by a module outside settings.py, or by one
    of its builders of the core's value objects (self.<field>)."""
    sources = "\n".join(p.read_text() for folder in ("wps_app", "processes")
                        for p in (REPO_ROOT / folder).rglob("*.py")
                        if p.name != "settings.py")
    own = (REPO_ROOT / "wps_app" / "settings.py").read_text()
    for field in dataclasses.fields(Settings):
        assert re.search(rf"\.{field.name}\b", sources) or re.search(
            rf"self\.{field.name}\b", own), field.name


# --- builders of the core's value objects ---------------------------------------------


def settings_of(values: dict) -> Settings:
    cfg = read_config([], {})
    cfg.read_dict(values)
    return Settings.from_parser(cfg)


def test_builders_carry_the_configured_values():
    settings = settings_of({
        "limits": {"default_size": "256", "default_side_deg": "0.001", "max_width": "4000",
                   "max_height": "3000", "max_pixels": "9000000", "max_bbox_deg": "0.25",
                   "stream_above_px": "10000"},
        "output": {"geotiff_compress": "zstd", "geotiff_zlevel": "9", "png_zlevel": "6"},
        "wms": {"url": "http://127.0.0.1:1/wms", "version": "1.1.1", "timeout": "3",
                "retries": "4", "block_px": "64"},
        "wms:other": {"url": "http://127.0.0.1:2/wms"},
    })
    assert settings.limits() == Limits(256, 0.001, 4000, 3000, 9_000_000, 0.25)
    assert settings.render_options() == RenderOptions("ZSTD", 9, 6, 10000)
    assert settings.wms_source() == WmsSource("http://127.0.0.1:1/wms", "1.1.1", 3.0, 4,
                                              max_block_px=64)
    # [wms:NAME] inherits what it does not set, except the URL.
    assert settings.wms_source("other") == WmsSource("http://127.0.0.1:2/wms", "1.1.1", 3.0, 4,
                                                     max_block_px=64)
    assert settings.source_names == ("sample", "other")


def test_defaults_equal_the_cores_defaults():
    """Unconfigured, the service's limits and options are the core's own defaults."""
    settings = Settings()
    assert settings.limits() == Limits()
    assert settings.render_options() == RenderOptions()


def test_unknown_source_is_a_key_error():
    with pytest.raises(KeyError):
        Settings().wms_source("nowhere")


def test_configured_wms_url_must_be_http():
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/",
                "/vsicurl/http://127.0.0.1/", "WMS:http://127.0.0.1/wms"):
        with pytest.raises(ValueError):
            settings_of({"wms": {"url": url}})


def test_the_wms_image_format_is_auto_or_a_lossless_one():
    """[wms] image_format: auto leaves the choice to the capabilities (the source keeps
    PNG until then); a named format is the source's; anything else is refused."""
    assert settings_of({}).wms.image_format == "auto"
    assert settings_of({}).wms_source().image_format == "image/png"
    tiff = settings_of({"wms": {"image_format": "image/tiff"},
                        "wms:b": {"url": "http://127.0.0.1:9/b"}})
    assert tiff.wms_source().image_format == "image/tiff"
    assert tiff.wms_source("b").image_format == "image/tiff"  # inherited from [wms]
    with pytest.raises(ValueError, match="image_format"):
        settings_of({"wms": {"image_format": "image/jpeg"}})
