"""One Processing algorithm per WPS process, built from its DescribeProcess document."""

from __future__ import annotations

import os
from html import escape

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputDefinition,
)

from . import client, config, network, parameters
from .client import Server
from .describe import Output, Process
from .errors import ServiceException, WpsError
from .execute import OutputRequest, OutputValue, execute_request
from .layer_style import StylePostProcessor, qml_for_file
from .urls import algorithm_name


def supported(process: Process) -> bool:
    """Whether the plugin can run `process`: every required input is a literal or a bbox
    (complex inputs are not supported; optional ones are left out)."""
    return all(i.kind != "complex" or i.optional for i in process.inputs)


class WpsAlgorithm(QgsProcessingAlgorithm):
    """Runs process `process` of `server`: parameters named after its inputs and outputs."""

    def __init__(self, server: Server, process: Process) -> None:
        super().__init__()
        self._server = server
        self._process = process
        self._styles: dict[str, str] = {}  # destination -> style, attached after the run

    # --- identity -----------------------------------------------------------------------

    def createInstance(self):
        return WpsAlgorithm(self._server, self._process)

    def name(self) -> str:
        return algorithm_name(self._process.identifier, self._server.position)

    def displayName(self) -> str:
        return self._process.title or self._process.identifier

    def group(self) -> str:
        return self._server.title

    def groupId(self) -> str:
        return f"server{self._server.position}"

    def tags(self) -> list[str]:
        return ["wps", self._process.identifier, self._server.title]

    def shortHelpString(self) -> str:
        lines = [escape(self._process.abstract)] if self._process.abstract else []
        lines.append(f"WPS process <b>{escape(self._process.identifier)}</b> on "
                     f"{escape(self._server.url)}")
        skipped = [i.identifier for i in self._process.inputs if i.kind == "complex"]
        if skipped:
            lines.append(f"Not offered (complex inputs): {escape(', '.join(skipped))}")
        return "<p>" + "</p><p>".join(lines) + "</p>"

    # --- parameters ---------------------------------------------------------------------

    def initAlgorithm(self, configuration=None):
        for spec in self._process.inputs:
            parameter = parameters.input_parameter(spec)
            if parameter is not None:
                self.addParameter(parameter)
        for spec in self._process.outputs:
            made = parameters.output_parameter(
                spec, parameters.output_name(spec, self._process.inputs))
            if isinstance(made, QgsProcessingOutputDefinition):
                self.addOutput(made)
            else:
                self.addParameter(made)

    # --- running ------------------------------------------------------------------------

    def processAlgorithm(self, params, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback):
        feedback = feedback or QgsProcessingFeedback()
        settings = config.current()
        try:
            inputs = self._inputs(params, context)
            wanted = self._destinations(params, context)
            if not wanted:
                raise WpsError("no output chosen: give at least one output a destination")
            body = execute_request(
                self._process.identifier, inputs,
                [OutputRequest(o.identifier, self._mime_type(o)) for o, _ in wanted.values()],
                store=self._process.store_supported,
                status=self._process.store_supported and self._process.status_supported,
            )
            final = client.run_job(self._server.url, body, settings, feedback)
            return self._results(final.outputs, wanted, settings, feedback)
        except ServiceException as exc:
            raise QgsProcessingException(f"The WPS server refused the request: {exc}") from None
        except WpsError as exc:
            text = str(exc)
            raise QgsProcessingException(text[:1].upper() + text[1:]) from None

    def _inputs(self, params: dict, context: QgsProcessingContext) -> list:
        values = []
        for spec in self._process.inputs:
            if spec.kind == "literal":
                value = parameters.literal_value(self, spec, params, context)
            elif spec.kind == "bbox":
                value = parameters.bbox_value(self, spec, params, context)
            else:
                continue
            if value is not None:
                values.append(value)
        return values

    def _destinations(self, params: dict, context: QgsProcessingContext
                      ) -> dict[str, tuple[Output, str | None]]:
        """Outputs to ask for, by parameter name: (spec, destination path or None for
        literal/bbox outputs). Complex outputs whose destination was skipped are left out."""
        wanted = {}
        for spec in self._process.outputs:
            name = parameters.output_name(spec, self._process.inputs)
            if spec.kind != "complex":
                wanted[name] = (spec, None)
                continue
            if parameters.is_raster_output(spec):
                path = self.parameterAsOutputLayer(params, name, context)
            else:
                path = self.parameterAsFileOutput(params, name, context)
            if path:
                wanted[name] = (spec, path)
        return wanted

    @staticmethod
    def _mime_type(output: Output) -> str | None:
        if output.kind != "complex":
            return None
        return output.formats[0].mime_type if output.formats else None

    def _results(self, values: dict[str, OutputValue], wanted: dict, settings: config.Settings,
                 feedback: QgsProcessingFeedback) -> dict:
        """Write each output to its destination; remember the styles of the GeoTIFFs."""
        results = {}
        for name, (spec, path) in wanted.items():
            value = values.get(spec.identifier)
            if value is None:
                raise WpsError(f"the server's answer lacks the output {spec.identifier}")
            if path is None:
                results[name] = value.literal
                continue
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if value.href:
                feedback.pushInfo(f"Downloading {spec.identifier} from {value.href}")
                network.download(value.href, path, settings, feedback)
            elif value.data is not None:
                network.write(path, value.data)
            else:
                raise WpsError(f"the output {spec.identifier} holds neither data nor a reference")
            results[name] = path
            if parameters.is_raster_output(spec):
                qml = qml_for_file(path)
                if qml is not None:
                    self._styles[path] = qml
        return results

    def postProcessAlgorithm(self, context: QgsProcessingContext,
                             feedback: QgsProcessingFeedback) -> dict:
        """In the main thread, once the job is done: style the GeoTIFFs Processing loads."""
        for path, qml in self._styles.items():
            if StylePostProcessor.attach(context, path, qml) and feedback is not None:
                feedback.pushInfo(f"{os.path.basename(path)}: styled on loading")
        self._styles.clear()
        return {}
