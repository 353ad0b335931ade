"""The settings and the WMS layer catalog of the running service, set once at start-up.

PyWPS re-creates processes with no arguments (for async and stored jobs), so a process
finds its configuration here instead of through its constructor.
"""

from __future__ import annotations

from wps_app.settings import Settings, load_settings
from wps_app.tile import wms_source
from wps_app.wms import LayerCatalog

_settings: Settings | None = None
_catalog: LayerCatalog | None = None


def configure(settings: Settings) -> None:
    """Install `settings` and a fresh layer catalog for this process."""
    global _settings, _catalog
    _settings = settings
    _catalog = LayerCatalog(wms_source(settings), settings.capabilities_ttl_s)


def settings() -> Settings:
    """The active settings (read from the configuration files on first use)."""
    if _settings is None:
        configure(load_settings())
    assert _settings is not None
    return _settings


def catalog() -> LayerCatalog:
    """The active WMS layer catalog."""
    if _catalog is None:
        configure(settings())
    assert _catalog is not None
    return _catalog
