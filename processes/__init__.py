"""The registry of processes this service offers."""

from __future__ import annotations

from processes.wps_get_raster import GetRasterProcess


def get_processes() -> list:
    """New instances of every process (built after the settings are configured)."""
    return [GetRasterProcess()]
