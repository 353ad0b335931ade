"""The QGIS plugin: registers the `wps` Processing provider (and removes it on unload)."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import WpsProvider


class WpsProcessingPlugin:
    """Started by QGIS through classFactory; `iface` is None when QGIS runs headless."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: WpsProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider; in a QGIS window the servers are described in the
        background, so that none can hold up QGIS's start."""
        if self.provider is None:
            self.provider = WpsProvider(background=self.iface is not None)
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
