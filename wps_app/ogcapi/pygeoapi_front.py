"""What is taken from pygeoapi 0.21, and how: configuration and OpenAPI generated from the
Settings into var/, a processor and a process manager of ours loaded by pygeoapi by dotted
path, its OpenAPI 3.0 generator.

Checked on pygeoapi 0.21.0 (Python 3.11; 0.22 needs 3.12). Measured there, and why the
request handling is ours (wps_app.ogcapi.service) rather than pygeoapi's Flask views:

- exceptions are `{"code": "NoSuchProcess", ...}`, not RFC 7807 (issue #1316, closed
  unfixed); an unknown job is 404 InvalidParameterValue: replaced by problems.py;
- `/conformance` omits job-list and dismiss although they are served, and appends to a
  module-level list on every call: ours declares exactly what is served;
- execution: `response: document` comes back as `{"outputs": [...]}`, raw + reference has
  no 204 + Link, the async 201 body is `null`, every failure becomes a blanket 400
  InvalidParameterValue, sync runs are stored as jobs: execution is ours;
- its managers id jobs with uuid1 and run async jobs in a thread of the serving worker
  (they die with it, cannot be stopped, have no limit); statuses miss `type` when
  dismissed and carry `finished: null`: JobStoreManager (below) lists and reads the
  shared JobStore, and jobs run on wps_app.ogcapi.runner;
- `server.url` fixes every link at start-up, X-Forwarded-* are ignored: links are made per
  request; the OpenAPI document's `servers` is rewritten per request;
- its HTML views load CDN assets: no HTML is served;
- `pygeoapi.flask_app` builds one API per process at import from $PYGEOAPI_CONFIG, and
  its manager is made from the YAML alone: importing it with our generated file fails
  (KeyError 'task': a manager over the JobStore needs the running instance's services,
  which no YAML can carry), and the app builds several instances per process in tests.
  So pygeoapi's Flask app is not mounted; pygeoapi's API object and functions work on
  the configuration loaded here (tests/unit/test_ogcapi_conformance.py uses them).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from pygeoapi.openapi import get_oas
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from pygeoapi.process.manager.base import BaseManager, get_manager
from pygeoapi.util import JobStatus

from wps_app.core.errors import EdgeServiceError
from wps_app.core.writers import write_text_atomically
from wps_app.ogcapi import description
from wps_app.settings import Settings
from wps_app.task import PROCESS_ID, EdgeTask

MANAGER = f"{__name__}.JobStoreManager"
PROCESSOR = f"{__name__}.EdgeProcessor"
CONFIG_NAME = "pygeoapi-config.yml"
OPENAPI_NAME = "pygeoapi-openapi.json"
_STATUS = {"accepted": JobStatus.accepted, "running": JobStatus.running,
           "succeeded": JobStatus.successful, "failed": JobStatus.failed,
           "dismissed": JobStatus.dismissed}


def _layers(task: EdgeTask) -> dict[str, dict[str, str]]:
    return {name: catalog.cached() for name, catalog in task.runtime.catalogs.items()}


class EdgeProcessor(BaseProcessor):
    """get_raster_process as a pygeoapi processor: its metadata is the process
    description, its execute runs the core through EdgeTask (one output by value)."""

    def __init__(self, processor_def: dict, task: EdgeTask | None = None) -> None:
        self.task: EdgeTask | None = task or processor_def.get("task")
        metadata = processor_def.get("metadata") or (
            description.process(self.task.runtime.settings, _layers(self.task))
            if self.task is not None else {})
        super().__init__(processor_def, metadata)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """pygeoapi's contract: (media type, bytes) of the PNG for plain input values."""
        import tempfile

        if self.task is None:
            raise ProcessorExecuteError("the processor has no task", user_msg="not configured")
        try:
            tile = self.task.validate(data)
            settings = self.task.runtime.settings
            with tempfile.TemporaryDirectory(dir=settings.work_path) as workdir:
                result = self.task.run(tile, Path(workdir), lambda _m, _p: None,
                                       outputs=frozenset({"png"}))
                return description.PNG, result.png.read_bytes()
        except EdgeServiceError as exc:
            raise ProcessorExecuteError(str(exc), user_msg=str(exc)) from exc


class JobStoreManager(BaseManager):
    """A pygeoapi process manager over the project's JobStore (read side: jobs are
    admitted and run by wps_app.ogcapi.service and runner, so they share WPS's admission,
    leases, uuid4 ids and retention)."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.task: EdgeTask = manager_def["task"]  # handed in by load(), never from YAML
        self.is_async = True

    def get_processor(self, process_id: str) -> EdgeProcessor:
        if process_id not in self.processes:
            from pygeoapi.process.manager.base import UnknownProcessError

            raise UnknownProcessError("Invalid process identifier")
        return EdgeProcessor({"name": process_id}, self.task)

    def _as_dict(self, job) -> dict:
        return {"identifier": job.job_id, "process_id": job.process_id,
                "status": _STATUS[job.status].value, "message": job.message,
                "progress": int(job.progress), "job_start_datetime": job.started,
                "job_end_datetime": job.finished}

    def get_jobs(self, status: JobStatus | None = None, limit: int | None = None,
                 offset: int | None = None) -> dict:
        store_status = None
        if status is not None:
            store_status = next(k for k, v in _STATUS.items() if v == status)
        jobs = self.task.runtime.jobs.list(status=store_status, limit=limit or 100,
                                           offset=offset or 0)
        return {"jobs": [self._as_dict(job) for job in jobs], "numberMatched": len(jobs)}

    def get_job(self, job_id: str) -> dict:
        from pygeoapi.process.manager.base import JobNotFoundError

        job = self.task.runtime.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError()
        return self._as_dict(job)

    def add_job(self, job_metadata: dict) -> str:
        raise NotImplementedError("jobs are admitted by wps_app.ogcapi.service")

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        raise NotImplementedError("jobs are updated by wps_app.ogcapi.runner")

    def delete_job(self, job_id: str) -> bool:
        return self.task.runtime.jobs.dismiss(job_id)


CHECKED_VERSIONS = ("0.21.",)


def check() -> None:
    """Start-up check: the pygeoapi this was checked on, with the hooks used here
    (RuntimeError otherwise; a new version must be measured again)."""
    import inspect

    import pygeoapi

    if not pygeoapi.__version__.startswith(CHECKED_VERSIONS):
        raise RuntimeError(f"pygeoapi {pygeoapi.__version__}: wps_app.ogcapi was checked on "
                           f"{', '.join(v + '*' for v in CHECKED_VERSIONS)} only")
    expected = {
        BaseManager.__init__: ["self", "manager_def"],
        BaseManager.get_processor: ["self", "process_id"],
        BaseProcessor.__init__: ["self", "processor_def", "process_metadata"],
        get_manager: ["config"],
    }
    for target, parameters in expected.items():
        found = list(inspect.signature(target).parameters)
        if found != parameters:
            raise RuntimeError(f"pygeoapi {target.__qualname__} takes {found}, "
                               f"not {parameters}")
    if "fail_on_invalid_collection" not in inspect.signature(get_oas).parameters:
        raise RuntimeError("pygeoapi.openapi.get_oas changed")


def pygeoapi_config(settings: Settings) -> dict:
    """pygeoapi's configuration for this instance, from the Settings."""
    root = settings.server_url.rstrip("/")
    if root.endswith("/wps"):
        root = root[: -len("/wps")]
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0},
            "url": f"{root}/ogcapi",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 1000},
            "map": {"url": "", "attribution": ""},
            "manager": {"name": MANAGER, "connection": None, "output_dir": None},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "Edge-filter processing service",
                "description": "OGC API - Processes 1.0 beside WPS 1.0.0",
                "keywords": ["edge detection", "WMS", "OGC API - Processes"],
                "keywords_type": "theme", "terms_of_service": "", "url": f"{root}/ogcapi/"},
            "license": {"name": "see the project", "url": f"{root}/ogcapi/"},
            "provider": {"name": "Edge-filter WPS developers", "url": f"{root}/ogcapi/"},
            "contact": {"name": "operators", "email": "", "url": f"{root}/ogcapi/"},
        },
        "resources": {
            PROCESS_ID: {"type": "process", "processor": {"name": PROCESSOR}},
        },
    }


def generate(task: EdgeTask, folder: Path) -> tuple[Path, Path]:
    """Write pygeoapi's configuration and OpenAPI document into `folder` (var/ogcapi),
    from the Settings; never edited by hand. Returns both paths."""
    check()
    folder.mkdir(parents=True, exist_ok=True)
    config = pygeoapi_config(task.runtime.settings)
    config_path = folder / CONFIG_NAME
    # every gunicorn worker generates the files at start-up: none may read another's
    # half-written copy
    write_text_atomically(config_path, yaml.safe_dump(config, sort_keys=False))
    oas = openapi_document(load_config(config_path, task), task)
    openapi_path = folder / OPENAPI_NAME
    write_text_atomically(openapi_path, json.dumps(oas))
    return config_path, openapi_path


def load_config(path: Path, task: EdgeTask) -> dict:
    """The generated configuration, with the task handed to the manager and processor."""
    config = yaml.safe_load(path.read_text())
    config["server"]["manager"]["task"] = task
    config["resources"][PROCESS_ID]["processor"]["task"] = task
    return config


def manager(config: dict) -> JobStoreManager:
    """The process manager pygeoapi loads from the configuration (by dotted path)."""
    return get_manager(copy.copy(config))


def openapi_document(config: dict, task: EdgeTask) -> dict:
    """pygeoapi's OpenAPI 3.0 document for the configuration (its processor loaded by
    dotted path: the description comes from EdgeProcessor)."""
    plain = {k: v for k, v in config.items() if k != "resources"}
    plain["server"] = {k: v for k, v in config["server"].items() if k != "manager"}
    plain["server"]["manager"] = dict(config["server"]["manager"])
    plain["resources"] = {PROCESS_ID: {"type": "process", "processor": dict(
        config["resources"][PROCESS_ID]["processor"])}}
    return get_oas(plain)


def fixed_openapi(oas: dict) -> dict:
    """pygeoapi's document without what is not served here: /collections (pygeoapi adds
    it with no collection configured)."""
    document = dict(oas)
    document["paths"] = {path: item for path, item in oas.get("paths", {}).items()
                         if not path.startswith("/collections")}
    used = {tag for item in document["paths"].values() for operation in item.values()
            if isinstance(operation, dict) for tag in operation.get("tags", [])}
    document["tags"] = [tag for tag in oas.get("tags", []) if tag.get("name") in used]
    return document


def with_server(oas: dict, base: str) -> dict:
    """The OpenAPI document with `servers` set to this request's public base URL."""
    document = dict(oas)
    document["servers"] = [{"url": base, "description": "this service"}]
    return document
