"""A second, minimal WPS 1.0.0 service (stock PyWPS) for the QGIS plugin's tests: one
process, `echo`, with one input of each kind the plugin maps (a float with a range, an
integer without one, a boolean, a free string, an optional CRS84-only bbox) and a
text/plain output that reports, as JSON, the values the server received.

WSGI app `mini_wps_app:application`, run by gunicorn (see mini_wps.start); its
configuration file is named by $MINI_WPS_CFG. /outputs/ serves the status documents and
outputs PyWPS writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pywps import (
    BoundingBoxInput,
    ComplexOutput,
    Format,
    LiteralInput,
    Process,
    Service,
    configuration,
)
from pywps.inout.literaltypes import AllowedValue
from pywps.validator.allowed_value import ALLOWEDVALUETYPE

CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
FACTOR_RANGE = (0.5, 4.0)
FACTOR_DEFAULT = 1.5


class Echo(Process):
    """Reports its inputs as JSON in a text/plain output."""

    def __init__(self) -> None:
        super().__init__(
            self._handler,
            identifier="echo",
            title="Echo the inputs",
            abstract="Writes the values it received as JSON (a test process).",
            version="1.0",
            inputs=[
                LiteralInput("factor", "Scale factor", data_type="float",
                             default=FACTOR_DEFAULT, min_occurs=0,
                             allowed_values=[AllowedValue(allowed_type=ALLOWEDVALUETYPE.RANGE,
                                                          minval=FACTOR_RANGE[0],
                                                          maxval=FACTOR_RANGE[1])]),
                LiteralInput("count", "Repetitions", data_type="integer"),
                LiteralInput("flag", "Upper case", data_type="boolean", default=False,
                             min_occurs=0),
                LiteralInput("label", "Label", data_type="string"),
                BoundingBoxInput("area", "Area", crss=[CRS84], min_occurs=0),
            ],
            outputs=[ComplexOutput("report", "Report", as_reference=True,
                                   supported_formats=[Format("text/plain", extension=".txt")])],
            store_supported=True,
            status_supported=True,
        )

    def _handler(self, request, response):
        inputs = request.inputs
        area = inputs["area"][0] if "area" in inputs else None
        report = {
            "factor": inputs["factor"][0].data,
            "count": inputs["count"][0].data,
            "flag": inputs["flag"][0].data,
            "label": inputs["label"][0].data,
            "area": [float(v) for v in area.data] if area is not None else None,
            "area_crs": area.crs if area is not None else None,
        }
        response.update_status("report written", 90)
        response.outputs["report"].data = json.dumps(report)
        return response


def _outputs(environ, start_response):
    """The files PyWPS publishes (status documents, outputs) under /outputs/."""
    root = Path(configuration.get_config_value("server", "outputpath")).resolve()
    path = (root / environ["PATH_INFO"][len("/outputs/"):]).resolve()
    if root not in path.parents or not path.is_file():
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    kind = "text/xml" if path.suffix == ".xml" else "text/plain"
    start_response("200 OK", [("Content-Type", kind)])
    return [path.read_bytes()]


_SERVICE = Service(processes=[Echo()], cfgfiles=[os.environ["MINI_WPS_CFG"]]) \
    if "MINI_WPS_CFG" in os.environ else None


def application(environ, start_response):
    """/outputs/... from disk, everything else to PyWPS."""
    if environ.get("PATH_INFO", "").startswith("/outputs/"):
        return _outputs(environ, start_response)
    return _SERVICE(environ, start_response)
