"""The tutorial's get_raster_process, written anew as the benchmark baseline.

Same behaviour as the tutorial (requests GetMap -> PIL grayscale -> PIL 3x3 kernel -> 8-bit
PNG, negatives clipped), with only what is needed to run here: the WMS URL from the
environment instead of a fixed host, an empty STYLES parameter (MapServer requires it),
and the fixed image folder under var/ instead of /app/images. Not for production.
"""

import os
from io import BytesIO

import numpy as np
import requests
from PIL import Image, ImageFilter
from pywps import ComplexOutput, Format, LiteralInput, Process

IMAGES = os.path.join(os.path.dirname(__file__), "..", "..", "var", "tutorial", "images")
KERNELS = {
    "sobel_x": [-1, 0, 1, -2, 0, 2, -1, 0, 1],
    "sobel_y": [-1, -2, -1, 0, 0, 0, 1, 2, 1],
    "prewitt_x": [-1, 0, 1, -1, 0, 1, -1, 0, 1],
    "prewitt_y": [-1, -1, -1, 0, 0, 0, 1, 1, 1],
}


class GetRasterProcess(Process):
    def __init__(self):
        inputs = [
            LiteralInput("wms", "WMS Layer", data_type="string"),
            LiteralInput("lat", "Latitude", data_type="float"),
            LiteralInput("lon", "Longitude", data_type="float"),
            LiteralInput("method", "Method", data_type="string", default="sobel_x",
                         allowed_values=list(KERNELS)),
        ]
        outputs = [ComplexOutput("image", "WMS Result Image", as_reference=True,
                                 supported_formats=[Format("image/png")])]
        super().__init__(self._handler, identifier="get_raster_process",
                         title="Get Raster Image", inputs=inputs, outputs=outputs)

    def _handler(self, request, response):
        lat = request.inputs["lat"][0].data
        lon = request.inputs["lon"][0].data
        layer = request.inputs["wms"][0].data
        method = request.inputs["method"][0].data
        half = 0.0005 / 2
        params = {
            "service": "WMS", "version": "1.1.1", "request": "GetMap", "layers": layer,
            "styles": "", "bbox": f"{lon - half},{lat - half},{lon + half},{lat + half}",
            "width": 512, "height": 512, "srs": "EPSG:4326", "format": "image/png",
        }
        answer = requests.get(os.environ["TUTORIAL_WMS_URL"], params=params, timeout=60)
        answer.raise_for_status()
        image = Image.open(BytesIO(answer.content)).convert("L")
        kernel = np.array(KERNELS[method]).reshape((3, 3))
        image = image.filter(ImageFilter.Kernel((3, 3), kernel.flatten(), scale=1, offset=0))
        os.makedirs(IMAGES, exist_ok=True)
        path = os.path.join(IMAGES, f"tile_{method}_{lat}_{lon}.png")
        image.save(path)
        response.outputs["image"].output_format = Format("image/png")
        response.outputs["image"].file = path
        return response
