"""The settings and the WMS layer catalogs of the running service, set once at start-up.

PyWPS re-creates processes with no arguments (for async and stored jobs), so a process
finds its configuration here instead of through its constructor.
"""

from __future__ import annotations

import threading

from wps_app.core.wms import LayerCatalog
from wps_app.settings import Settings, load_settings

_settings: Settings | None = None
_catalogs: dict[str, LayerCatalog] = {}
_request = threading.local()


def configure(settings: Settings) -> None:
    """Install `settings` and a fresh layer catalog per configured WMS source."""
    global _settings, _catalogs
    _settings = settings
    _catalogs = {
        server.name: LayerCatalog(settings.wms_source(server.name), settings.capabilities_ttl_s)
        for server in settings.wms_servers
    }


def settings() -> Settings:
    """The active settings (read from the configuration files on first use)."""
    if _settings is None:
        configure(load_settings())
    assert _settings is not None
    return _settings


def catalog(source: str | None = None) -> LayerCatalog:
    """The layer catalog of WMS source `source` (the default one for None)."""
    name = settings().wms_server(source).name
    return _catalogs[name]


def catalogs() -> dict[str, LayerCatalog]:
    """Every source's layer catalog, the default source first."""
    settings()
    return dict(_catalogs)


def set_current_job(job_id: str | None) -> None:
    """Remember the job the current request started (for its request log line)."""
    _request.job_id = job_id


def pop_current_job() -> str | None:
    """The job id set during the current request, cleared for the next one."""
    job_id = getattr(_request, "job_id", None)
    _request.job_id = None
    return job_id
