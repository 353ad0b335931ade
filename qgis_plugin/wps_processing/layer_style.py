"""Styling result layers: the edge-filter GeoTIFFs get their fixed colour ramp when
Processing loads them into the project (run from the toolbox, or runAndLoadResults)."""

from __future__ import annotations

from qgis.core import QgsMapLayer, QgsProcessingContext, QgsProcessingLayerPostProcessorInterface
from qgis.PyQt.QtXml import QDomDocument

from . import style, tiff


def qml_for_file(path: str) -> str | None:
    """The style of a GeoTIFF whose METHOD tag names a known method, else None."""
    try:
        method = tiff.gdal_metadata(path).get("METHOD")
    except (OSError, ValueError):
        return None
    return style.qml_for(method) if style.is_method(method) else None


def apply_qml(layer: QgsMapLayer, qml: str) -> tuple[bool, str]:
    """Apply style text to `layer`; (success, error message)."""
    document = QDomDocument()
    parsed, message, _, _ = document.setContent(qml)
    if not parsed:
        return False, message
    ok, message = layer.importNamedStyle(document)
    if ok:
        layer.triggerRepaint()
    return ok, message


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a style to a result layer once Processing has loaded it.

    Processing holds only a C++ pointer to a post-processor and never deletes it, so the
    Python instances are kept alive here: the latest KEEP, by destination.
    """

    KEEP = 64
    _alive: dict[str, StylePostProcessor] = {}

    def __init__(self, key: str, qml: str) -> None:
        super().__init__()
        self.key, self.qml = key, qml

    @classmethod
    def attach(cls, context: QgsProcessingContext, destination: str, qml: str) -> bool:
        """Style the layer `destination` when it is loaded on completion; False if it is
        not to be loaded (a headless processing.run)."""
        if not context.willLoadLayerOnCompletion(destination):
            return False
        processor = cls(destination, qml)
        cls._alive.pop(destination, None)
        cls._alive[destination] = processor
        while len(cls._alive) > cls.KEEP:
            cls._alive.pop(next(iter(cls._alive)))
        context.layerToLoadOnCompletionDetails(destination).setPostProcessor(processor)
        return True

    def postProcessLayer(self, layer, context, feedback):
        ok, message = apply_qml(layer, self.qml)
        if not ok and feedback is not None:
            feedback.reportError(f"The style could not be applied: {message}")
