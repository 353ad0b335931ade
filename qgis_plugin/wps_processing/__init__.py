"""WPS Processing: the processes of OGC WPS 1.0.0 servers as QGIS Processing algorithms.

QGIS calls `classFactory(iface)` when it starts the plugin (with `iface=None` in headless
runs such as qgis_process). Scripts may also register the provider themselves:

    from wps_processing.provider import WpsProvider
    QgsApplication.processingRegistry().addProvider(WpsProvider())

The package imports nothing from QGIS at import time; the modules describe, execute,
errors, style, tiff and urls are plain Python (the repository's unit tests import them
without QGIS).
"""


def classFactory(iface):
    """The plugin instance QGIS starts; `iface` is None when QGIS runs headless."""
    from .plugin import WpsProcessingPlugin

    return WpsProcessingPlugin(iface)
