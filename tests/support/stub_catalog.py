"""A layer catalog for in-process tests of the app: answers from memory, probes nothing."""

from __future__ import annotations

from wps_app.core.errors import LayersNotKnownYet
from wps_app.core.wms import SourceState


class StubCatalog:
    """A layer catalog that answers from memory (None: the WMS never answered)."""

    def __init__(self, layers: dict[str, str] | None) -> None:
        self._layers = layers

    def start(self) -> None:
        """Nothing to probe."""

    source = type("Source", (), {"timeout_s": 1.0})()

    def layers(self, wait_s: float = 0.0) -> dict[str, str]:
        if self._layers is None:
            raise LayersNotKnownYet("the layer list of this WMS is not known yet")
        return dict(self._layers)

    def cached(self) -> dict[str, str]:
        return dict(self._layers or {})

    def extents(self) -> dict:
        return {}

    def image_format(self) -> str:
        return "image/png"  # capabilities that offer PNG only

    def state(self) -> SourceState:
        return SourceState("down", 1.7e9, 1.7e9 + 5, "refused") if self._layers is None \
            else SourceState("ok", 1.7e9, 1.7e9 + 5)
