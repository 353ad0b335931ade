"""The registry of processes this service offers."""

from __future__ import annotations

from processes.wps_get_raster import GetRasterProcess
from wps_app.runtime import Runtime


def get_processes(runtime: Runtime) -> list:
    """New instances of every process, sharing this instance's `runtime`."""
    return [GetRasterProcess(runtime)]
