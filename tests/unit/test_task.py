"""EdgeTask's choice of the WMS source a request is read from."""

from __future__ import annotations

from wps_app.core import wms
from wps_app.jobs import JobStore
from wps_app.runtime import Runtime
from wps_app.settings import Settings, WmsServer
from wps_app.task import EdgeTask


def _task(tmp_path, image_format: str, offered: tuple[str, ...]) -> EdgeTask:
    settings = Settings(wms_servers=(WmsServer(url="http://127.0.0.1:9/wms",
                                               image_format=image_format),))
    capabilities = wms.Capabilities({"a": "A"}, {}, offered)
    catalog = wms.LayerCatalog(settings.wms_source(), fetch=lambda _source: capabilities)
    catalog.refresh()
    store = JobStore.from_url(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    return EdgeTask(Runtime(settings, {"sample": catalog}, store))


def test_auto_reads_in_the_format_the_capabilities_offer(tmp_path):
    assert _task(tmp_path, "auto", ("image/png", "image/tiff")).source(None).image_format \
        == "image/tiff"
    assert _task(tmp_path, "auto", ("image/png",)).source("sample").image_format == "image/png"


def test_a_configured_format_wins_over_the_capabilities(tmp_path):
    task = _task(tmp_path, "image/png", ("image/png", "image/tiff"))
    source = task.source(None)
    assert source.image_format == "image/png" and source.url == "http://127.0.0.1:9/wms"
