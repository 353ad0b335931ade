"""The raster core: WMS reading (GDAL), edge filters (scipy.ndimage), writers, the pipeline.

Nothing here imports PyWPS, pygeoapi, Flask or werkzeug (tests/unit/test_core_isolation.py).
"""
