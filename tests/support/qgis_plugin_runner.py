"""Run by Debian's /usr/bin/python3 (python3-qgis), headless, for test_qgis_plugin.py:
install the plugin zip into the fresh profile of this QGIS, start it as QGIS does, and
exercise it as the plan says; write what was observed as JSON.

Usage: /usr/bin/python3 qgis_plugin_runner.py PLAN.json RESULTS.json

Each step's result is recorded under its name, or {"error": traceback} when it raised, so
one failing step does not hide the others. The plan (written by the test) holds:
- zip: the plugin zip; urls: the servers, as WPS_PROCESSING_URLS gives them; gate: the
  base URL of the WMS gate (gate_proxy.py);
- runs: {name: {alg, params, load?, gate?, qml_check?}}: processing.run, or
  processing.runAndLoadResults with load; gate "progress" opens the (closed) gate when
  the first progress above 0 reaches the feedback, gate "cancel" cancels instead and
  opens it afterwards;
- style_checks: {name: {run, qml}}: a style text applied to the GeoTIFF of a run;
- background_urls: the servers of the background-loading step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import threading
import time
import traceback
import urllib.request
import xml.etree.ElementTree as ET

from qgis.core import (
    QgsApplication,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QSize
from qgis.PyQt.QtGui import QColor

sys.path.append("/usr/share/qgis/python/plugins")
DEADLINE_S = 120


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


class Recorder(QgsProcessingFeedback):
    """Records progress, info and debug lines in order; optionally works the gate or
    cancels when the first progress above 0 arrives."""

    def __init__(self, gate: str | None = None, on_progress: str | None = None) -> None:
        super().__init__()
        self.events: list[list] = []
        self.gate, self.on_progress = gate, on_progress
        self.progressChanged.connect(self._progress)

    def _progress(self, value: float) -> None:
        self.events.append(["progress", value])
        if 0 < value < 100 and self.on_progress:
            action, self.on_progress = self.on_progress, None
            if action == "progress":
                http_get(self.gate + "/gate/open")
                self.events.append(["gate opened"])
            elif action == "cancel":
                self.events.append(["cancel"])
                self.cancel()

    def pushInfo(self, info: str) -> None:
        self.events.append(["info", info])

    def pushDebugInfo(self, info: str) -> None:
        self.events.append(["debug", info])

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.events.append(["error", error])


def describe_parameter(definition) -> dict:
    described = {
        "type": definition.type(),
        "optional": bool(definition.flags() & definition.FlagOptional),
        "default": definition.defaultValue(),
    }
    if isinstance(definition, QgsProcessingParameterEnum):
        described.update(options=definition.options(),
                         static_strings=definition.usesStaticStrings())
    if isinstance(definition, QgsProcessingParameterNumber):
        described.update(
            data_type="integer" if definition.dataType() == QgsProcessingParameterNumber.Integer
            else "double", minimum=definition.minimum(), maximum=definition.maximum())
    if isinstance(definition, QgsProcessingParameterFileDestination):
        described.update(file_filter=definition.fileFilter())
    return described


def describe_algorithms(provider) -> dict:
    return {
        alg.id(): {
            "group": alg.group(),
            "group_id": alg.groupId(),
            "display_name": alg.displayName(),
            "parameters": {d.name(): describe_parameter(d) for d in alg.parameterDefinitions()},
            "outputs": {o.name(): o.type() for o in alg.outputDefinitions()},
        }
        for alg in provider.algorithms()
    }


def wait_until(condition, what: str) -> None:
    """Process Qt events until `condition()` holds; raise after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        QCoreApplication.processEvents()
        threading.Event().wait(0.01)  # between polls, bounded by the deadline above


class Log:
    """QGIS message log entries of a tag."""

    def __init__(self) -> None:
        self.entries: list[list] = []
        QgsApplication.messageLog().messageReceived.connect(self._received)

    def _received(self, message: str, tag: str, level) -> None:
        self.entries.append([tag, int(level), message])

    def of(self, tag: str) -> list[str]:
        QCoreApplication.processEvents()
        return [m for t, _, m in self.entries if t == tag]


# --- steps ------------------------------------------------------------------------------

def installer_unzip():
    """The unzip function of QGIS's plugin installer (loaded alone: its package pulls in
    the installer's dialogs)."""
    spec = importlib.util.spec_from_file_location(
        "qgis_installer_unzip", "/usr/share/qgis/python/pyplugin_installer/unzip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.unzip


def install(plan: dict, results: dict) -> None:
    """Install from ZIP as QGIS's installer does, into this fresh profile, then start."""
    import qgis.utils

    plugins_dir = os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "plugins")
    installer_unzip()(plan["zip"], plugins_dir)
    sys.path.insert(0, plugins_dir)
    qgis.utils.plugin_paths[:] = [plugins_dir]
    qgis.utils.updateAvailablePlugins()
    metadata = dict(qgis.utils.plugins_metadata_parser["wps_processing"].items("general"))
    loaded = qgis.utils.loadPlugin("wps_processing")
    started = qgis.utils.startPlugin("wps_processing")
    provider = QgsApplication.processingRegistry().providerById("wps")
    results["install"] = {
        "plugins_dir": plugins_dir,
        "files": sorted(os.listdir(os.path.join(plugins_dir, "wps_processing"))),
        "metadata": metadata,
        "loaded": loaded,
        "started": started,
        "plugin_file": sys.modules["wps_processing"].__file__,
        "provider_class": f"{type(provider).__module__}.{type(provider).__qualname__}"
        if provider else None,
        "provider_icon_null": provider.icon().isNull() if provider else None,
        "provider_loading": provider.loading if provider else None,
    }


def listing(plan: dict, results: dict, log: Log) -> None:
    provider = QgsApplication.processingRegistry().providerById("wps")
    first = describe_algorithms(provider)
    provider.refreshAlgorithms()
    results["listing"] = {
        "algorithms": first,
        "after_refresh": sorted(describe_algorithms(provider)),
        "wps_log": log.of("WPS"),
    }


def settings_list(plan: dict, results: dict) -> None:
    """The server list in the Processing options: its default, and a list set there used
    once WPS_PROCESSING_URLS is unset (the second server alone, so now the first)."""
    from processing.core.ProcessingConfig import ProcessingConfig

    provider = QgsApplication.processingRegistry().providerById("wps")
    shown = {s.name: s.default for s in ProcessingConfig.getSettings().get("WPS", [])}
    urls = os.environ.pop("WPS_PROCESSING_URLS")
    try:
        ProcessingConfig.setSettingValue("WPS_SERVERS", plan["urls"][1])
        provider.refreshAlgorithms()
        from_settings = sorted(a.id() for a in provider.algorithms())
    finally:
        ProcessingConfig.setSettingValue("WPS_SERVERS", shown.get("WPS_SERVERS", ""))
        os.environ["WPS_PROCESSING_URLS"] = urls
        provider.refreshAlgorithms()
    results["settings"] = {"shown": shown, "from_settings": from_settings}


def unload(results: dict) -> None:
    """Unloading the plugin removes its provider."""
    import qgis.utils

    unloaded = qgis.utils.unloadPlugin("wps_processing")
    registry = QgsApplication.processingRegistry()
    results["unload"] = {"unloaded": unloaded, "provider": registry.providerById("wps")
                         is not None}


def headless_provider(results: dict) -> None:
    """WpsProvider() registered by a script: constructible without arguments."""
    from wps_processing.provider import WpsProvider

    registry = QgsApplication.processingRegistry()
    provider = WpsProvider()
    added = registry.addProvider(provider)
    results["headless"] = {"added": added,
                           "algorithms": sorted(a.id() for a in provider.algorithms())}
    registry.removeProvider(provider)


def layer_summary(layer) -> dict:
    extent = layer.extent()
    summary = {"name": layer.name(), "source": layer.source(), "crs": layer.crs().authid(),
               "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                          extent.yMaximum()],
               "size": [layer.width(), layer.height()],
               "renderer": layer.renderer().type()}
    renderer = layer.renderer()
    if summary["renderer"] == "singlebandpseudocolor":
        ramp = renderer.shader().rasterShaderFunction()
        summary.update(
            classification=[renderer.classificationMin(), renderer.classificationMax()],
            items=[[i.value, i.color.name()] for i in ramp.colorRampItemList()],
            nodata_color_valid=renderer.nodataColor().isValid()
            and renderer.nodataColor().alpha() > 0,
        )
    return summary


def render(layer, path: str) -> None:
    """The layer alone, one image pixel per raster pixel, transparent background."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(layer.width(), layer.height()))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(path, "PNG")


def run(name: str, spec: dict, plan: dict, out: str) -> dict:
    import processing

    gate = spec.get("gate")
    feedback = Recorder(plan["gate"], gate)
    if gate:
        http_get(plan["gate"] + "/gate/close")
    before = set(QgsProject.instance().mapLayers())
    runner = processing.runAndLoadResults if spec.get("load") else processing.run
    outcome: dict = {}
    try:
        outcome["result"] = {k: str(v) for k, v in runner(spec["alg"], dict(spec["params"]),
                                                           feedback=feedback).items()}
    except QgsProcessingException as exc:
        outcome["exception"] = str(exc)
    finally:
        if gate:
            http_get(plan["gate"] + "/gate/open")
    outcome["events"] = feedback.events
    if spec.get("load"):
        layers = [layer for key, layer in QgsProject.instance().mapLayers().items()
                  if key not in before]
        outcome["layers"] = [layer_summary(layer) for layer in layers]
        for index, layer in enumerate(layers):
            picture = os.path.join(out, f"{name}-{index}.png")
            render(layer, picture)
            outcome["layers"][index]["rendered"] = picture
    if gate == "cancel":
        outcome["server_side"] = follow_job(feedback.events)
    return outcome


def follow_job(events: list) -> str | None:
    """The final state of a job left running on the server: its status document is polled
    (by urllib, not the plugin) until it ends."""
    prefix = "Job accepted; status document: "
    location = next((e[1][len(prefix):] for e in events
                     if e[0] == "info" and e[1].startswith(prefix)), None)
    if location is None:
        return None
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        root = ET.fromstring(http_get(location))
        for node in root.iter():
            tag = node.tag.rsplit("}", 1)[-1]
            if tag in ("ProcessSucceeded", "ProcessFailed"):
                return tag
        threading.Event().wait(0.1)  # between polls, bounded by the deadline above
    return "still running"


def style_check(spec: dict, results: dict) -> dict:
    """A style text (the service's .qml) applied to a run's GeoTIFF by QGIS itself."""
    from wps_processing.layer_style import apply_qml

    path = results[spec["run"]]["result"]["geotiff"]
    layer = QgsRasterLayer(path, "style check", "gdal")
    ok, message = apply_qml(layer, spec["qml"])
    return {"ok": ok, "message": message, **layer_summary(layer)}


def background(plan: dict, results: dict, log: Log) -> None:
    """WpsProvider(background=True), first server silent: registering returns while the
    server has not answered; its failure is logged once, the second server's processes
    then appear."""
    from wps_processing.provider import WpsProvider

    registry = QgsApplication.processingRegistry()
    silent = socket.create_server(("127.0.0.1", 0), backlog=8)  # never accepts
    silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/wps"
    os.environ["WPS_PROCESSING_URLS"] = ",".join([silent_url, *plan["background_urls"]])
    provider = WpsProvider(background=True)
    added = registry.addProvider(provider)
    at_return = {"loading": provider.loading, "algorithms": len(provider.algorithms()),
                 "logged": [m for m in log.of("WPS") if silent_url in m]}
    silent.close()  # the pending request now fails
    wait_until(lambda: not provider.loading, "the background description never ended")
    results["background"] = {
        "added": added,
        "at_return": at_return,
        "algorithms": sorted(a.id() for a in provider.algorithms()),
        "logged": [m for m in log.of("WPS") if silent_url in m],
    }
    registry.removeProvider(provider)


def main(plan_path: str, results_path: str) -> None:
    with open(plan_path) as handle:
        plan = json.load(handle)
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    log = Log()
    results: dict = {"profile": QgsApplication.qgisSettingsDirPath()}

    def step(name: str, function, *args) -> None:
        try:
            function(*args)
        except Exception:  # recorded for the test, which fails with it
            results[name] = {"error": traceback.format_exc()}

    step("install", install, plan, results)
    step("listing", listing, plan, results, log)
    for name, spec in plan["runs"].items():
        try:
            results[name] = run(name, spec, plan, plan["out"])
        except Exception:
            results[name] = {"error": traceback.format_exc()}
    for name, spec in plan.get("style_checks", {}).items():
        try:
            results[name] = style_check(spec, results)
        except Exception:
            results[name] = {"error": traceback.format_exc()}
    step("settings", settings_list, plan, results)
    step("unload", unload, results)
    step("headless", headless_provider, results)
    step("background", background, plan, results, log)
    with open(results_path, "w") as handle:
        json.dump(results, handle, indent=1, default=str)
    app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
