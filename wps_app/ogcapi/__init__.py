"""The OGC API - Processes - Part 1: Core 1.0 binding, mounted at /ogcapi.

problems      the one mapping of core and job-store errors to RFC 7807 problems
description   the process description (inputs as WPS names them, JSON schemas, limits)
execute       execute requests parsed into the task's plain values and output choices
service       the WSGI app: documents, execution, jobs, results, dismiss
runner        async jobs in detached processes on the shared JobStore
pygeoapi_front  pygeoapi 0.21: generated config and OpenAPI, our processor and manager
"""

from __future__ import annotations

import json
from pathlib import Path

from wps_app.task import EdgeTask


def build(task: EdgeTask, trusted_proxies: tuple, var_folder: Path, on_ended=None):
    """The /ogcapi app for this instance: pygeoapi's files generated into `var_folder`,
    its manager loaded from them, the OpenAPI document served with per-request URLs."""
    from wps_app.ogcapi import pygeoapi_front
    from wps_app.ogcapi.service import OgcApiProcesses

    config_path, openapi_path = pygeoapi_front.generate(task, var_folder)
    manager = pygeoapi_front.manager(pygeoapi_front.load_config(config_path, task))
    oas = pygeoapi_front.fixed_openapi(json.loads(openapi_path.read_text()))
    return OgcApiProcesses(task, trusted_proxies,
                           lambda base: pygeoapi_front.with_server(oas, base),
                           manager=manager, on_ended=on_ended)
