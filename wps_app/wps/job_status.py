"""Status documents of jobs ended outside PyWPS's own flow (reaped, or never started).

The JobStore reports which jobs it failed; here their WPS status documents are rewritten
with the same template as every other status (PyWPS's execute template, our corrected copy,
through the shared jinja2 environment in responses.py), so they validate against the WPS
1.0.0 schema like the rest. The client keeps the statusLocation, serviceInstance and
language its earlier documents gave it; a job without a readable earlier document gets the
configured ones.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urljoin

import pywps.configuration as pywps_config
from lxml import etree

from wps_app.core.writers import write_text_atomically
from wps_app.jobs import Job
from wps_app.wps.responses import shared_environment

LOGGER = logging.getLogger(__name__)

BINDING = "wps"  # the JobStore binding name of jobs accepted through WPS
TEMPLATE = "1.0.0/execute/main.xml"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _previous_attributes(previous: bytes | None) -> dict[str, str]:
    """statusLocation, serviceInstance and xml:lang of the job's last document, if any."""
    if not previous:
        return {}
    try:
        root = etree.fromstring(previous, _PARSER)
    except etree.XMLSyntaxError:
        return {}
    found = {"status_location": root.get("statusLocation"),
             "service_instance": root.get("serviceInstance"),
             "language": root.get(_XML_LANG)}
    return {key: value for key, value in found.items() if value}


def _configured_attributes(job_id: str) -> dict[str, str]:
    """The same attributes as PyWPS would compute them from its configuration."""
    url = pywps_config.get_config_value("server", "url")
    output_url = pywps_config.get_config_value("server", "outputurl").rstrip("/") + "/"
    language = (pywps_config.get_config_value("server", "language") or "en-US").split(",")[0]
    query = urlencode({"request": "GetCapabilities", "service": "WPS"})
    return {"status_location": urljoin(output_url, f"{job_id}.xml"),
            "service_instance": f"{url}{'&' if '?' in url else '?'}{query}",
            "language": language.strip()}


def failed_status_document(job: Job, process, previous: bytes | None = None) -> str:
    """The ProcessFailed status document of `job`.

    Parameters
    ----------
    job : Job
        An ended job; its message is the failure text.
    process : pywps.Process or None
        The process the job ran (identifier, title, abstract, version); None when the
        service no longer offers it.
    previous : bytes, optional
        The job's last status document, whose public URLs and language are kept.

    Returns
    -------
    str
        The XML document.
    """
    if process is None:
        process = SimpleNamespace(identifier=job.process_id, title=job.process_id,
                                  abstract="", version="None", translations=None)
    values = {**_configured_attributes(job.job_id), **_previous_attributes(previous)}
    status = {
        "status": "failed",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "percent_done": str(int(job.progress)),
        "message": job.message,
        "code": "NoApplicableCode",
    }
    return shared_environment().get_template(TEMPLATE).render(
        process=process, status=status, **values)


def publish_failures(jobs: Iterable[Job], processes: Mapping[str, object],
                     status_dir: Path) -> None:
    """Rewrite the status document of each failed WPS job and remove its work folder.

    Parameters
    ----------
    jobs : iterable of Job
        Jobs the store just failed; those of other bindings are skipped.
    processes : mapping
        The service's processes by identifier.
    status_dir : Path
        Where status documents live ([server] outputpath): ``<job_id>.xml``.
    """
    for job in jobs:
        if job.binding != BINDING:
            continue
        path = status_dir / f"{job.job_id}.xml"
        try:
            previous = path.read_bytes()
        except OSError:
            previous = None
        status_dir.mkdir(parents=True, exist_ok=True)
        document = failed_status_document(job, processes.get(job.process_id), previous)
        write_text_atomically(path, document)
        if job.workdir:  # on another host this is a no-op; the cleanup command gets it there
            shutil.rmtree(job.workdir, ignore_errors=True)
        LOGGER.info("job %s: status document rewritten as failed", job.job_id)
