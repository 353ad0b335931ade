"""The edge-filter task as every binding runs it (WPS 1.0.0, OGC API - Processes).

A binding parses its protocol's inputs into plain values; this module checks them against
the configuration and the WMS capabilities (core errors with domain fields), checks the
output storage, runs the core pipeline in a work folder and publishes the files under
`[server] outputpath/<job id>/`, recording them in the job store. The binding then shapes
its answer and translates core errors in its one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wps_app import metrics
from wps_app.core import styles, writers
from wps_app.core.errors import StorageFull, WmsError
from wps_app.core.pipeline import (
    OUTPUTS,
    Progress,
    TileRequest,
    TileResult,
    WindowRunner,
    build_request,
    output_bytes_upper_bound,
    render,
    resolve_source,
)
from wps_app.core.types import BBox
from wps_app.core.wms import WmsSource
from wps_app.runtime import Runtime

PROCESS_ID = "get_raster_process"
# The task's inputs, named as the tutorial's WPS process named them (both bindings use them).
INPUTS = ("wms", "lat", "lon", "bbox", "width", "height", "method", "stretch", "cog", "source")


@dataclass(frozen=True)
class EdgeTask:
    """Validate, run and publish edge-filter requests with one instance's services."""

    runtime: Runtime

    def validate(self, values: Mapping[str, Any]) -> TileRequest:
        """The core request for plain input values (`wms` the layer name, `bbox` a BBox in
        EPSG:4326 or None, sizes as int, `cog` as bool; absent keys take defaults).

        Raises InvalidInput / MissingInput naming the domain field, or LayersNotKnownYet
        (a Busy) when no layer list of the WMS was ever read.
        """
        settings = self.runtime.settings
        source = resolve_source(settings.source_names, values.get("source"))
        catalog = self.runtime.catalog(source)
        # the last list read; raises LayersNotKnownYet before one (given a few seconds just
        # after start-up, while the first probe may be on its way)
        layers = catalog.layers(wait_s=min(5.0, catalog.source.timeout_s))
        bbox = values.get("bbox")
        return build_request(
            settings.limits(), layers, extents=catalog.extents(), layer=values.get("wms"),
            lat=values.get("lat"),
            lon=values.get("lon"), bbox=bbox if isinstance(bbox, BBox) or bbox is None
            else BBox(*bbox), width=values.get("width"), height=values.get("height"),
            method=values.get("method"), stretch=values.get("stretch"), cog=values.get("cog"),
            source=source)

    @staticmethod
    def upper_bound_bytes(request: TileRequest) -> int:
        """Bytes the published outputs of `request` can take at most (uncompressed)."""
        return sum(output_bytes_upper_bound(request).values())

    def check_storage(self, request: TileRequest) -> None:
        """StorageFull unless published and reserved outputs leave room for this request's
        upper bound under [limits] max_output_mb."""
        cap = self.cap_bytes()
        if self.runtime.jobs.storage_used() + self.upper_bound_bytes(request) > cap:
            raise StorageFull("the output storage is full; ask for the output by value, a "
                              "smaller area, or try again later")

    def cap_bytes(self) -> int:
        """[limits] max_output_mb in bytes."""
        return int(self.runtime.settings.max_output_mb * 1024 * 1024)

    def run(self, request: TileRequest, workdir: Path, progress: Progress,
            time_budget_s: float | None = None,
            outputs: frozenset[str] = OUTPUTS) -> TileResult:
        """Read, filter and write the outputs into `workdir` (raises core errors); only
        those of `outputs` ("geotiff", "png"): publish needs both.

        With `time_budget_s` (seconds), each WMS read's timeout is cut so that all its
        tries fit in the budget: a request with a time limit is not held past it by a
        WMS that does not answer.
        """
        settings = self.runtime.settings
        source = self.source(request.source)
        if time_budget_s:
            per_try = max(1.0, time_budget_s / (source.retries + 1))
            source = replace(source, timeout_s=min(source.timeout_s, per_try))
        try:
            return render(request, source, settings.render_options(), workdir, progress,
                          outputs=outputs, windows_on=self.windows_on(request))
        except WmsError as exc:
            exc.source = exc.source or request.source  # bindings name the source at fault
            metrics.count_wms_error(request.source, metrics.wms_error_kind(exc))
            raise

    def windows_on(self, request: TileRequest) -> WindowRunner | None:
        """Where the request's windows are read and filtered: on the Dask workers of
        [processing] dask_scheduler when mode = dask and the request has more than
        [processing] dask_above_px pixels; None (this host) otherwise."""
        settings = self.runtime.settings
        if (settings.processing_mode != "dask" or not settings.dask_scheduler
                or request.width * request.height <= settings.dask_above_px):
            return None
        from wps_app.cluster.blocks import dask_windows  # imports distributed: only here

        return dask_windows(settings.dask_scheduler)

    def source(self, name: str | None) -> WmsSource:
        """The WMS source called `name` as the core reads it, in the GetMap format its
        configuration names ([wms] image_format), or with "auto" the cheapest lossless
        one its capabilities offer (see wms.choose_image_format)."""
        source = self.runtime.settings.wms_source(name)
        if self.runtime.settings.wms_server(name).image_format == "auto":
            source = replace(source, image_format=self.runtime.catalog(name).image_format())
        return source

    def publish(self, request: TileRequest, result: TileResult, job_id: str,
                owner: str | None = None) -> Path:
        """Move the outputs (GeoTIFF with its QGIS style, PNG with its sidecars) into the
        output folder under `job_id`, in one rename, and record their size."""
        style = result.geotiff.with_suffix(".qml")
        style.write_text(styles.qml_for(request.method))
        files = [result.geotiff, style, result.png, *result.png_sidecars]
        size = sum(path.stat().st_size for path in files)
        folder = writers.publish(files, self.runtime.settings.output_path, job_id)
        self.runtime.jobs.record_output(job_id, size, owner)
        return folder
