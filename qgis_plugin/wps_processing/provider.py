"""The Processing provider `wps`: one algorithm per process of each configured server.

The first server's processes are `wps:<identifier>`, the n-th server's (n from 2)
`wps:<identifier>_<n>`; the toolbox groups them by server title. A server that cannot be
described is logged once (until it answers again) and skipped.

Constructed with no arguments (scripts, tests, qgis_process) it describes the servers
while it loads. The plugin in a QGIS window passes `background=True`: the servers are
described in a QgsTask and the algorithms appear when it ends, so a slow or unreachable
server never holds up QGIS's start.
"""

from __future__ import annotations

import os

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsFeedback,
    QgsMessageLog,
    QgsProcessingProvider,
    QgsTask,
)
from qgis.PyQt.QtGui import QIcon

from . import config
from .algorithm import WpsAlgorithm, supported
from .client import Server, describe_server
from .errors import WpsError

LOG_TAG = "WPS"
ICON = os.path.join(os.path.dirname(__file__), "icon.svg")

# (url, position, Server or the reason it could not be described)
Described = tuple[str, int, "Server | str"]


def describe_all(settings: config.Settings, feedback: QgsFeedback | None) -> list[Described]:
    """Describe every configured server in order; failures are reported, not raised."""
    results: list[Described] = []
    for position, url in enumerate(settings.urls, start=1):
        if feedback is not None and feedback.isCanceled():
            break
        try:
            results.append((url, position, describe_server(url, position, settings, feedback)))
        except WpsError as exc:
            results.append((url, position, str(exc)))
    return results


class _DescribeTask(QgsTask):
    """Describes the servers in a worker thread, then hands the results to `done` in the
    main thread."""

    def __init__(self, settings: config.Settings, done) -> None:
        super().__init__("Describing WPS servers", QgsTask.CanCancel)
        self.settings, self.done = settings, done
        self.feedback = QgsFeedback()
        self.results: list[Described] = []

    def run(self) -> bool:
        self.results = describe_all(self.settings, self.feedback)
        return True

    def cancel(self) -> None:
        self.feedback.cancel()
        super().cancel()

    def finished(self, result: bool) -> None:
        self.done(self, self.results)


class WpsProvider(QgsProcessingProvider):
    """Processing provider `wps` for the WPS 1.0.0 servers in the settings."""

    def __init__(self, background: bool = False) -> None:
        super().__init__()
        self._background = background
        self._servers: list[Server] = []
        self._fresh = False
        self._task: _DescribeTask | None = None
        self._unreachable: set[str] = set()
        self._skipped: set[tuple[str, str]] = set()
        self._unloaded = False

    # --- identity -----------------------------------------------------------------------

    def id(self) -> str:
        return "wps"

    def name(self) -> str:
        return "WPS"

    def longName(self) -> str:
        return "OGC WPS 1.0.0 processes"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def svgIconPath(self) -> str:
        return ICON

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]  # the GeoTIFF is written as the server made it

    # --- life cycle ---------------------------------------------------------------------

    def load(self) -> bool:
        config.register(self.name(), self.icon())
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        self._unloaded = True
        if self._task is not None:
            self._task.cancel()
        config.unregister()

    @property
    def loading(self) -> bool:
        """Whether a background description of the servers is under way."""
        return self._task is not None

    @property
    def servers(self) -> list[Server]:
        """The servers whose processes are listed, in list order."""
        return list(self._servers)

    def loadAlgorithms(self) -> None:
        if not self._background:
            self._take(describe_all(config.current(), None))
        elif not self._fresh:
            self._start_task()
        self._fresh = False
        for server in self._servers:
            for process in server.processes:
                if supported(process):
                    self.addAlgorithm(WpsAlgorithm(server, process))

    def _start_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = _DescribeTask(config.current(), self._described)
        QgsApplication.taskManager().addTask(self._task)

    def _described(self, task: _DescribeTask, results: list[Described]) -> None:
        if task is not self._task or self._unloaded:
            return
        self._task = None
        self._take(results)
        self._fresh = True
        self.refreshAlgorithms()

    def _take(self, results: list[Described]) -> None:
        """Keep the servers described; log each newly unreachable one once."""
        self._servers = []
        for url, position, outcome in results:
            if isinstance(outcome, Server):
                self._servers.append(outcome)
                self._unreachable.discard(url)
                for process in outcome.processes:
                    if not supported(process) and (url, process.identifier) not in self._skipped:
                        self._skipped.add((url, process.identifier))
                        QgsMessageLog.logMessage(
                            f"{url}: process {process.identifier} has a required complex "
                            "input, which this plugin cannot send; it is not listed",
                            LOG_TAG, Qgis.Info)
            elif url not in self._unreachable:
                self._unreachable.add(url)
                QgsMessageLog.logMessage(
                    f"WPS server {url} (position {position}) could not be described, its "
                    f"processes are not listed: {outcome}", LOG_TAG, Qgis.Warning)
