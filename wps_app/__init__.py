"""Edge-filter Web Processing Service: WMS (via GDAL) -> scipy.ndimage -> GeoTIFF + PNG."""

__version__ = "0.1.0"
