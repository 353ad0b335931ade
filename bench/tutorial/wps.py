"""The tutorial's entry point: stock PyWPS, as the tutorial runs it."""

import os

from pywps import Service

from bench.tutorial.wps_raster_analyser import GetRasterProcess

# stock PyWPS does not create its folders (the tutorial ran in a prepared container)
for folder in ("var/tutorial/outputs", "var/tutorial/tmp"):
    os.makedirs(folder, exist_ok=True)

application = Service([GetRasterProcess()],
                      cfgfiles=[os.path.join(os.path.dirname(__file__), "pywps.cfg")])
