"""Settings hand the core its own value objects: limits, render options, WMS sources."""

from __future__ import annotations

import pytest

from wps_app.core.types import Limits, RenderOptions
from wps_app.core.wms import WmsSource
from wps_app.settings import Settings, read_config


def settings_of(values: dict) -> Settings:
    cfg = read_config([])
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
