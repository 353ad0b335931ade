"""get_raster_process: a WMS layer around a point or over a bbox, edge-filtered.

Compatible with the tutorial's process (identifier, inputs wms/lat/lon/method, output
`image` as PNG); adds bbox, width/height, stretch, magnitudes and a float32 GeoTIFF.
The handler only unpacks inputs, calls wps_app.core.pipeline and sets outputs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pywps.app.Common import Metadata
from pywps.app.exceptions import ProcessError

from processes import wpsio
from processes.base import EdgeProcess
from wps_app.core.errors import EdgeServiceError, InvalidInput
from wps_app.core.pipeline import OUTPUTS, TileRequest, TileResult, output_bytes_upper_bound
from wps_app.runtime import CLIENT_ENVIRON_KEY, Runtime
from wps_app.task import PROCESS_ID, EdgeTask
from wps_app.wps import public_urls
from wps_app.wps.deadline import sync_deadline
from wps_app.wps.exceptions import from_core

LOGGER = logging.getLogger(__name__)


def _value(inputs: dict, identifier: str):
    values = inputs.get(identifier)
    return values[0].data if values else None


def _layers_abstract(layers_by_source: dict[str, dict[str, str]]) -> str:
    listed = "; ".join(
        f"{name}: {title}" + (f" (source {source})" if len(layers_by_source) > 1 else "")
        for source, layers in layers_by_source.items()
        for name, title in sorted(layers.items())
    )
    return "Name of a layer of the chosen WMS source. " + (
        f"Layers offered: {listed}" if listed else "The WMS layer list is not available yet."
    )


def _layer_input(layers_by_source: dict[str, dict[str, str]]):
    names = sorted({name for layers in layers_by_source.values() for name in layers})
    return wpsio.layer_input(names, _layers_abstract(layers_by_source))


class GetRasterProcess(EdgeProcess):
    """Edge-filter a WMS layer; outputs a PNG (or GeoTIFF) `image` and a float32 `geotiff`."""

    IDENTIFIER = PROCESS_ID

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.task = EdgeTask(runtime)
        settings = runtime.settings
        layers = {name: catalog.cached() for name, catalog in runtime.catalogs.items()}
        inputs = [
            _layer_input(layers),
            wpsio.degrees_input("lat", "Latitude"),
            wpsio.degrees_input("lon", "Longitude"),
            wpsio.bbox_input(),
            wpsio.size_input("width", settings.default_size_px, settings.max_width_px),
            wpsio.size_input("height", settings.default_size_px, settings.max_height_px),
            wpsio.method_input(),
            wpsio.stretch_input(),
            wpsio.cog_input(),
            wpsio.source_input([server.name for server in settings.wms_servers]),
        ]
        super().__init__(
            self._handler,
            identifier=self.IDENTIFIER,
            title="Edge-filtered WMS raster",
            abstract=(
                "Reads a WMS layer through GDAL around lat/lon (a square of "
                f"{settings.default_side_deg:g} degree) or over a bbox, applies a Sobel or "
                "Prewitt filter to its luminance in float32, and returns a georeferenced "
                "PNG and a float32 GeoTIFF in EPSG:4326."
            ),
            version="1.0",
            metadata=[Metadata("Raster Image"), Metadata("Edge detection")],
            inputs=inputs,
            outputs=[wpsio.image_output(), wpsio.geotiff_output()],
            store_supported=True,
            status_supported=True,
        )

    def refresh_layers(self, layers_by_source: dict[str, dict[str, str]]) -> None:
        """Advertise the sources' layers as the allowed values of `wms` (DescribeProcess)."""
        fresh = _layer_input(layers_by_source)
        for index, inpt in enumerate(self.inputs):
            if inpt.identifier == "wms":
                self.inputs[index] = fresh

    def check_request(self, wps_request) -> None:
        tile_request = self.tile_request(wps_request.inputs,
                                         getattr(wps_request, "given_inputs", None))
        self._check_in_memory_outputs(wps_request, tile_request)
        self.checked_request = tile_request  # for admission() of an async job
        asynchronous = (wps_request.store_execute == "true" and wps_request.status == "true")
        if not asynchronous and self._publishes(wps_request):
            # async jobs reserve their upper bound at admission (see admission)
            try:
                self.task.check_storage(tile_request)
            except EdgeServiceError as exc:
                raise from_core(exc) from exc

    @staticmethod
    def _publishes(wps_request) -> bool:
        """Whether the request's outputs go to the output folder (by reference, or a
        stored response) rather than only into the answer."""
        return not wps_request.raw and (
            wps_request.store_execute == "true"
            or any(str(o.get("asReference", "false")).lower() == "true"
                   for o in wps_request.outputs.values())
            or not wps_request.outputs
        )

    @staticmethod
    def client_of(wps_request) -> str | None:
        """The client the request came from: an API key's name, or its address."""
        http = getattr(wps_request, "http_request", None)
        return None if http is None else http.environ.get(CLIENT_ENVIRON_KEY)

    def admission(self, wps_request) -> dict:
        """What an async job holds in the job store: its owner, at most [jobs]
        max_per_client jobs per owner, and its outputs' upper bound under the storage cap."""
        settings = self.runtime.settings
        return dict(owner=self.client_of(wps_request),
                    max_per_owner=settings.max_per_client or None,
                    reserve_bytes=self.task.upper_bound_bytes(self.checked_request),
                    storage_cap_bytes=self.task.cap_bytes())

    def _check_in_memory_outputs(self, wps_request, tile_request: TileRequest) -> None:
        """PyWPS holds a raw or inline output whole in memory (inline ones base64-encoded
        in the XML): large ones are only returned by reference."""
        max_raw_mb = self.runtime.settings.max_raw_mb
        cap = max_raw_mb * 1024 * 1024
        sizes = output_bytes_upper_bound(tile_request)
        for identifier, output in wps_request.outputs.items():
            by_reference = str(output.get("asReference", "false")).lower() == "true"
            if by_reference and not wps_request.raw:
                continue
            mime = output.get("mimetype") or ""
            size = sizes["geotiff"] if identifier == "geotiff" or "tiff" in mime else sizes["png"]
            if size > cap:
                raise from_core(InvalidInput(
                    f"{identifier} of {tile_request.width}x{tile_request.height} pixels is "
                    f"returned by reference only (over {max_raw_mb:g} MB): "
                    "use a ResponseDocument with asReference=true",
                    identifier,
                ))

    def tile_request(self, inputs: dict, given: frozenset | None = None) -> TileRequest:
        """Validate the request's inputs; raises WPS exceptions with locators."""
        try:
            return self._validated(inputs, given)
        except EdgeServiceError as exc:
            raise from_core(exc) from exc

    def _validated(self, inputs: dict, given: frozenset | None = None) -> TileRequest:
        """The core request for these inputs; raises core errors. `given` names the inputs
        the client sent (PyWPS added defaults for the others): sizes it did not send are
        left to the core, which keeps a bbox's aspect."""
        values = {name: _value(inputs, name) for name in inputs
                  if given is None or name in given or name not in ("width", "height")}
        return self.task.validate(values)

    def _handler(self, request, response):
        started = time.perf_counter()
        asynchronous = getattr(self, "async_", False)
        try:
            tile_request = self._validated(request.inputs, getattr(request, "given_inputs",
                                                                   None))
        except EdgeServiceError as exc:
            self.failure = exc
            raise ProcessError(str(exc)) from exc
        LOGGER.info(
            "job=%s start mode=%s layer=%s method=%s size=%dx%d bbox=%s", self.uuid,
            "async" if asynchronous else "sync", tile_request.layer,
            tile_request.method, tile_request.width, tile_request.height,
            ",".join(f"{v:.7f}" for v in tile_request.bbox.bounds),
        )

        def progress(message: str, percent: int) -> None:
            LOGGER.info("job=%s stage=%r percent=%d layer=%s method=%s size=%dx%d",
                        self.uuid, message, percent, tile_request.layer, tile_request.method,
                        tile_request.width, tile_request.height)
            response.update_status(message, percent)

        progress("inputs checked against the WMS capabilities", 10)
        chosen = self._chosen(request, response)
        publishes = self._publishes_chosen(request, chosen)
        # a sync request must end before gunicorn's timeout kills its worker
        limit_s = 0.0 if asynchronous else self.runtime.settings.sync_max_runtime_s
        try:
            with sync_deadline(limit_s):
                result = self.task.run(
                    tile_request, Path(self.workdir), progress, time_budget_s=limit_s or None,
                    outputs=OUTPUTS if publishes else frozenset(chosen.values()))
                progress("publishing outputs", 95)
                self._set_outputs(request, tile_request, result, chosen, publishes)
        except EdgeServiceError as exc:
            self.failure = exc  # the binding answers a sync request with its exception
            LOGGER.info("job=%s outcome=failed duration_s=%.3f reason=%r detail=%r", self.uuid,
                        time.perf_counter() - started, str(exc), getattr(exc, "detail", ""))
            # PyWPS prints the traceback of what the handler raises: without the chain,
            # whose GDAL errors name the WMS URL (key included); the line above has the
            # detail, redacted
            raise ProcessError(str(exc)) from None
        LOGGER.info(
            "job=%s outcome=succeeded duration_s=%.3f %s", self.uuid,
            time.perf_counter() - started,
            " ".join(f"{stage}_s={seconds:.3f}" for stage, seconds in result.timings_s.items()),
        )
        return response

    @staticmethod
    def _chosen(request, response) -> dict:
        """The response's outputs this request returns, each with the file it carries
        ("png" or "geotiff"). A raw answer carries its one output; a ResponseDocument
        those it lists (pywps_compat trims the others), or all of them."""
        asked = set(request.outputs) if request.raw else set(response.outputs)
        chosen = {}
        image = response.outputs.get("image")
        if image is not None and "image" in asked:
            asked_mime = (request.outputs.get("image", {}).get("mimetype")
                          or image.data_format.mime_type)
            if asked_mime in wpsio.TIFF_MIME_TYPES:
                image.data_format = (
                    wpsio.GEOTIFF if asked_mime == wpsio.GEOTIFF.mime_type else wpsio.TIFF
                )
                chosen[image] = "geotiff"
            else:
                chosen[image] = "png"
        if "geotiff" in response.outputs and "geotiff" in asked:
            chosen[response.outputs["geotiff"]] = "geotiff"
        return chosen

    @staticmethod
    def _publishes_chosen(request, chosen: dict) -> bool:
        """Whether the outputs go to the output folder (one by reference, not raw): then
        every file is written and published (GeoTIFF with its style, PNG with its
        sidecars); otherwise only the files the answer carries are written."""
        return not request.raw and any(output.as_reference for output in chosen)

    def _set_outputs(self, request, tile_request: TileRequest, result: TileResult,
                     chosen: dict, publishes: bool) -> None:
        files = {"png": result.png, "geotiff": result.geotiff}
        if not publishes:
            # PyWPS removes the work directory before it sends a raw or inline output,
            # so hand it the bytes (it would read the whole file into memory anyway).
            for output, kind in chosen.items():
                output.as_reference = False  # else PyWPS stores raw outputs it never serves
                output.data = files[kind].read_bytes()
            return
        published = self.task.publish(tile_request, result, str(self.uuid),
                                      self.client_of(request))
        base_url = f"{public_urls.current_output_url().rstrip('/')}/{self.uuid}/"
        for output, kind in chosen.items():
            if output.as_reference:
                output.url = base_url + files[kind].name
            else:
                output.data = (published / files[kind].name).read_bytes()
