"""The PyWPS replacements for jobs: checked against PyWPS at start-up, and what they are for
(sync requests touch no job log; admission comes from the JobStore)."""

from __future__ import annotations

import pytest
from pywps import LiteralOutput, Process, Service, dblog
from pywps.app.basic import get_xpath_ns
from pywps.tests import client_for

from wps_app.jobs import JobStore, Limits
from wps_app.wps import pywps_compat

xpath_ns = get_xpath_ns("1.0.0")


class Echo(pywps_compat.JobProcess, Process):
    """A process as ours are built: the JobProcess mixin first."""

    def __init__(self) -> None:
        super().__init__(self._handler, identifier="echo", title="Echo",
                         outputs=[LiteralOutput("out", "Out", data_type="string")],
                         store_supported=True, status_supported=True)

    def _handler(self, request, response):
        response.outputs["out"].data = "hello"
        return response


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """install() on a fresh store; every replaced name put back afterwards."""
    for owner, name in pywps_compat.EXPECTED:
        if not isinstance(owner, type):
            monkeypatch.setattr(owner, name, getattr(owner, name))
    monkeypatch.setattr(pywps_compat, "_store", None)
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite")
    store.migrate()
    pywps_compat.install(store)
    return store


def test_the_pywps_targets_are_as_checked():
    pywps_compat.check()


def test_a_changed_signature_is_refused_at_start_up(monkeypatch):
    def update_pid(uuid, pid, host):
        """As if a new PyWPS passed the host too."""

    monkeypatch.setitem(pywps_compat._ORIGINALS, (dblog, "update_pid"), update_pid)
    with pytest.raises(RuntimeError, match="update_pid"):
        pywps_compat.check()


def test_a_missing_target_is_refused_at_start_up(monkeypatch):
    monkeypatch.setitem(pywps_compat._ORIGINALS, (dblog, "get_process_counts"), None)
    with pytest.raises(RuntimeError, match="get_process_counts is gone"):
        pywps_compat.check()


def test_a_sync_execute_touches_no_job_log(installed, monkeypatch):
    """PyWPS would write the request to its log three times; now neither its log nor the
    JobStore is touched."""

    def no_database():
        raise AssertionError("PyWPS's job log was used")

    monkeypatch.setattr(dblog, "get_session", no_database)
    client = client_for(Service(processes=[Echo()]))
    answer = client.get("?service=WPS&request=Execute&version=1.0.0&identifier=echo")
    assert answer.status_code == 200
    assert answer.xpath_text("//wps:LiteralData") == "hello"
    assert installed.list() == []


def test_pywps_counts_come_from_the_store(installed):
    installed.register("a", "echo", "wps", limits=Limits(1, 5))
    installed.register("b", "echo", "wps", limits=Limits(1, 5))
    assert dblog.get_process_counts() == (1, 1)


class Exited(Exception):
    """os._exit, as the tests see it."""


def test_a_runner_given_up_for_dead_never_leaves_a_stale_document(tmp_path, monkeypatch):
    """Frozen between its store update and its document write, a job's process was given up
    and its job failed (document rewritten) elsewhere; on resuming it writes a stale
    Started document, but its next store call tells it the job is lost, and it writes the
    failure back before it ends."""
    from types import SimpleNamespace

    from pywps.response.status import WPS_STATUS

    from wps_app.jobs import LEASE_EXPIRED
    from wps_app.wps.job_status import publish_failures

    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite", lease_s=30)
    store.migrate()
    store.register("job-1", "echo", "wps", limits=Limits())
    document = tmp_path / "job-1.xml"
    echo = Echo()
    service = SimpleNamespace(processes={"echo": echo})
    process = SimpleNamespace(uuid="job-1", workdir=None, service=service, clean=lambda: None)

    def pywps_update_status(status, message, percent, clean=True):
        # the other instance acts while this process is frozen before its write
        store.fail("job-1", LEASE_EXPIRED)
        publish_failures([store.get("job-1")], service.processes, tmp_path)
        document.write_text("<stale started document/>")

    def exit_(code):
        raise Exited(code)

    response = SimpleNamespace(_update_status=pywps_update_status, status_percentage=0)
    monkeypatch.setattr(pywps_compat, "status_dir", lambda: tmp_path)
    monkeypatch.setattr(pywps_compat.os, "_exit", exit_)
    run = pywps_compat._JobRun(store, process, response)
    assert run.store.start("job-1")
    response._update_status = run._record  # as run.start() does, without its thread
    response._update_status(WPS_STATUS.STARTED, "filtering", 40)
    assert document.read_text() == "<stale started document/>"
    with pytest.raises(Exited):
        run.heartbeat.beat()  # the store says the job ended: the runner gives up
    assert "ProcessFailed" in document.read_text()
    assert LEASE_EXPIRED in document.read_text()
