"""The services one running instance shares: built once by the app, handed to every
binding and process (nothing reaches up for them through a global)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from wps_app.core.wms import LayerCatalog
from wps_app.jobs import JobStore
from wps_app.settings import Settings

# Where the app leaves the client a request came from (an API key's name, or an address),
# for bindings (job owners) and the request log.
CLIENT_ENVIRON_KEY = "wps_edge.client"


class RemoteJobs(Protocol):
    """Where accepted async jobs run when not in a detached local process
    ([processing] mode = dask: wps_app.cluster.submit.DaskJobs)."""

    def submit(self, binding: str, job_id: str, context: dict) -> None:
        """Hand admitted job `job_id` of `binding` over; `context` holds plain values the
        run needs besides the stored job (public URLs, the inputs the client gave).
        Raises when it could not be handed over (the caller fails the job)."""


@dataclass(frozen=True, eq=False)
class Runtime:
    """Settings, the per-source WMS layer catalogs and the job store of this instance, and
    where its async jobs run (`remote`: None for detached local processes)."""

    settings: Settings
    catalogs: Mapping[str, LayerCatalog]
    jobs: JobStore
    remote: RemoteJobs | None = None

    @classmethod
    def build(cls, settings: Settings, jobs: JobStore,
              remote: RemoteJobs | None = None) -> Runtime:
        """A fresh layer catalog per configured WMS source (nothing is fetched yet)."""
        catalogs = {
            server.name: LayerCatalog(settings.wms_source(server.name),
                                      probe_s=settings.wms_probe_s)
            for server in settings.wms_servers
        }
        return cls(settings, catalogs, jobs, remote)

    def catalog(self, source: str | None = None) -> LayerCatalog:
        """The layer catalog of WMS source `source` (the default one for None)."""
        return self.catalogs[self.settings.wms_server(source).name]

    def __deepcopy__(self, memo: dict) -> Runtime:
        # PyWPS deep-copies a process for every request; the services stay shared.
        return self
