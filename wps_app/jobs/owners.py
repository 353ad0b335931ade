"""Async jobs that always finish: ownership records and a reaper over the shared job store.

The WPS binding's job code before the JobStore (wps_app.jobs.store), which replaces it.

PyWPS keeps its job log in the database of [logging] database (a file SQLite by default,
PostgreSQL by configuration), so every gunicorn worker, on any host, sees every job. Its own
clean-up only looks at process ids of the local machine, and never at Accepted jobs, so a
job whose worker died stays "running" forever. Here each job records the host, process id
and work folder that run it; the reaper, run by any worker at most every few seconds, ends
as Failed (in the database and in the status document clients poll):
- a job whose process is gone from its host;
- a job running, or accepted and not queued, for longer than [jobs] max_runtime seconds
  (its process is killed first when it is on this host).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pywps.response.basic as pywps_basic
from lxml import etree
from pywps import dblog
from pywps.response.status import WPS_STATUS
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select

LOGGER = logging.getLogger(__name__)

WPS_NS = "http://www.opengis.net/wps/1.0.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
UNFINISHED = (WPS_STATUS.ACCEPTED, WPS_STATUS.STARTED, WPS_STATUS.PAUSED)
HOST = socket.gethostname()

_metadata = MetaData()
job_owners = Table(
    "edge_job_owners",
    _metadata,
    Column("uuid", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workdir", String(1024), nullable=True),
    Column("started", DateTime, nullable=False),
)
_tables_ready: set[str] = set()
_last_reap = 0.0
_reap_lock = threading.Lock()


def _engine():
    session = dblog.get_session()
    try:
        engine = session.get_bind()
    finally:
        session.close()
    key = str(engine.url)
    if key not in _tables_ready:
        _metadata.create_all(engine)
        _tables_ready.add(key)
    return engine


def register_accepted(uuid: str) -> None:
    """Record async job `uuid` as soon as it is accepted, so it counts as running."""
    _logged.add(str(uuid))
    register_running(uuid, None)


def register_running(uuid: str, workdir: str | None) -> None:
    """Record that this process, on this host, now runs job `uuid` in `workdir`."""
    values = {"host": HOST, "pid": os.getpid(), "workdir": workdir,
              "started": datetime.datetime.now()}
    with _engine().begin() as conn:
        updated = conn.execute(
            job_owners.update().where(job_owners.c.uuid == str(uuid)).values(**values)
        ).rowcount
        if not updated:
            conn.execute(job_owners.insert().values(uuid=str(uuid), **values))


def counts() -> tuple[int, int]:
    """(async jobs running, async jobs queued) across all workers and hosts.

    Replaces pywps.dblog.get_process_counts, which counts every unfinished request, sync
    ones included, so that a busy sync pool would refuse async jobs and the reverse.
    """
    requests = dblog.ProcessInstance.__table__
    queued = dblog.RequestInstance.__table__
    running_query = (
        select(func.count())
        .select_from(requests.join(job_owners, job_owners.c.uuid == requests.c.uuid))
        .where(requests.c.status.in_(UNFINISHED))
        .where(requests.c.uuid.not_in(select(queued.c.uuid)))
    )
    with _engine().connect() as conn:
        running = conn.execute(running_query).scalar_one()
        stored = conn.execute(select(func.count()).select_from(queued)).scalar_one()
    return int(running), int(stored)


# PyWPS writes every request into its job log (an INSERT, then a SELECT and an UPDATE per
# status change: 5-20 ms per Execute on a file SQLite). Only async jobs need the shared
# store, so only requests that become async jobs are logged; the ids logged by this
# process (and inherited by the job it forks) are the ones whose status is stored.
_logged: set[str] = set()
_original = {name: getattr(dblog, name)
             for name in ("log_request", "store_status", "update_pid", "pop_first_stored")}


def _is_async(request) -> bool:
    return (getattr(request, "operation", None) == "execute"
            and getattr(request, "store_execute", "false") == "true"
            and getattr(request, "status", "false") == "true")


def _log_request(uuid, request):
    if _is_async(request):
        _logged.add(str(uuid))
        _original["log_request"](uuid, request)


def _store_status(uuid, wps_status, message=None, status_percentage=None):
    if str(uuid) in _logged:
        _original["store_status"](uuid, wps_status, message, status_percentage)


def _update_pid(uuid, pid):
    if str(uuid) in _logged:
        _original["update_pid"](uuid, pid)


def install() -> None:
    """Make PyWPS admit async jobs by our counts and keep sync requests out of the job
    store (idempotent)."""
    dblog.get_process_counts = counts
    dblog.log_request = _log_request
    dblog.store_status = _store_status
    dblog.update_pid = _update_pid
    # these two modules imported the functions by name ("pywps.app.Service" the module;
    # pywps.app re-exports the class under the same name)
    pywps_service = importlib.import_module("pywps.app.Service")
    pywps_service.log_request = _log_request
    pywps_service.store_status = _store_status
    pywps_basic.store_status = _store_status


def _process_alive(pid: int) -> bool:
    """Whether `pid` runs on this host (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def failed_status_document(previous: bytes | None, message: str) -> bytes:
    """The job's last status document with its Status replaced by ProcessFailed."""
    doc = None
    if previous:
        try:
            doc = etree.fromstring(previous, etree.XMLParser(resolve_entities=False,
                                                             no_network=True))
        except etree.XMLSyntaxError:
            doc = None
    if doc is None:
        doc = etree.Element(f"{{{WPS_NS}}}ExecuteResponse", nsmap={"wps": WPS_NS, "ows": OWS_NS},
                            service="WPS", version="1.0.0")
        doc.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
        doc.set("serviceInstance", "")
    old = doc.find(f"{{{WPS_NS}}}Status")
    status = etree.Element(f"{{{WPS_NS}}}Status")
    status.set("creationTime", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    failed = etree.SubElement(status, f"{{{WPS_NS}}}ProcessFailed")
    report = etree.SubElement(failed, f"{{{OWS_NS}}}ExceptionReport", version="1.0.0")
    exception = etree.SubElement(report, f"{{{OWS_NS}}}Exception",
                                 exceptionCode="NoApplicableCode")
    etree.SubElement(exception, f"{{{OWS_NS}}}ExceptionText").text = message
    if old is not None:
        old.getparent().replace(old, status)
        for outputs in doc.findall(f"{{{WPS_NS}}}ProcessOutputs"):
            doc.remove(outputs)
    else:
        process = doc.find(f"{{{WPS_NS}}}Process")
        index = list(doc).index(process) + 1 if process is not None else 0
        doc.insert(index, status)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def fail_job(uuid: str, message: str, status_dir: Path, workdir: str | None) -> None:
    """Mark job `uuid` Failed in the store and in its status document; drop its workdir."""
    _original["store_status"](uuid, WPS_STATUS.FAILED, message, 100)
    status_file = status_dir / f"{uuid}.xml"
    previous = status_file.read_bytes() if status_file.exists() else None
    tmp = status_file.with_name(f".{status_file.name}.{os.getpid()}.tmp")
    tmp.write_bytes(failed_status_document(previous, message))
    os.replace(tmp, status_file)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    LOGGER.warning("job %s failed: %s", uuid, message)


def reap(status_dir: Path, max_runtime_s: float,
         min_interval_s: float = 2.0) -> list[str] | None:
    """End dead and overdue jobs as Failed; returns their ids, or None when this process
    reaped less than `min_interval_s` ago (or is reaping in another thread)."""
    global _last_reap
    now = time.monotonic()
    if not _reap_lock.acquire(blocking=False):
        return None
    try:
        if now - _last_reap < min_interval_s:
            return None
        _last_reap = now
        return _reap(status_dir, max_runtime_s)
    finally:
        _reap_lock.release()


def _reap(status_dir: Path, max_runtime_s: float) -> list[str]:
    requests = dblog.ProcessInstance.__table__
    queued = dblog.RequestInstance.__table__
    engine = _engine()
    query = (
        select(requests.c.uuid, requests.c.status, requests.c.time_start, requests.c.pid,
               job_owners.c.host, job_owners.c.pid.label("owner_pid"), job_owners.c.workdir)
        .select_from(requests.outerjoin(job_owners, job_owners.c.uuid == requests.c.uuid))
        .where(requests.c.operation == "execute")
        .where(requests.c.status.in_(UNFINISHED))
        .where(requests.c.uuid.not_in(select(queued.c.uuid)))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    ended = []
    now = datetime.datetime.now()
    for row in rows:
        pid = row.owner_pid or row.pid
        local = row.host in (None, HOST)
        age_s = (now - row.time_start).total_seconds()
        if age_s > max_runtime_s:
            if local and pid and _process_alive(pid) and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            message = (f"the job exceeded the maximum run time of {max_runtime_s:g} s "
                       "and was stopped")
        elif local and row.host is not None and pid and not _process_alive(pid):
            message = "the worker running this job died; please submit it again"
        else:
            continue
        fail_job(row.uuid, message, status_dir, row.workdir)
        ended.append(row.uuid)
    return ended
