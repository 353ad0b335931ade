"""Running the service on a cluster: Dask glue outside the pure raster core."""
