"""Every PyWPS replacement lives in pywps_compat, is checked at start-up, and shows the
behaviour it exists for (one canary each)."""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import re
import uuid
from pathlib import Path

import pytest
import pywps
import pywps.configuration as pywps_config
import pywps.response.basic as pywps_basic
from pywps import ComplexOutput, Format, LiteralInput
from pywps.inout.storage.file import FileStorage
from pywps.response.execute import ExecuteResponse
from pywps.response.status import WPS_STATUS
from werkzeug.test import Client

from wps_app.jobs import JobStore, Limits
from wps_app.settings import REPO_ROOT, Settings, read_config
from wps_app.wps import public_urls, pywps_compat, responses
from wps_app.wps.config import pywps_configuration

COMPAT = REPO_ROOT / "wps_app" / "wps" / "pywps_compat.py"


def _restore_after_test(monkeypatch) -> None:
    """Every module or class attribute install() replaces is put back after the test."""
    for replacement in pywps_compat.REPLACEMENTS:
        module_name, _, path = replacement.target.partition(":")
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        if isinstance(owner, type) and owner in (pywps.Process, pywps.Service):
            continue  # overridden in CompatProcess/CompatService subclasses, not replaced
        monkeypatch.setattr(owner, name, getattr(owner, name))
    monkeypatch.setattr(pywps_compat, "_jobs", None)


@pytest.fixture
def store(tmp_path) -> JobStore:
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite")
    store.migrate()
    return store


@pytest.fixture
def installed(tmp_path, store, monkeypatch):
    """PyWPS configured as the app configures it, on temporary folders and a fresh store;
    everything install() replaced is put back afterwards."""
    _restore_after_test(monkeypatch)
    parser = read_config([REPO_ROOT / "pywps.cfg"], {
        "WPS_SERVER_OUTPUTPATH": str(tmp_path / "out"), "WPS_SERVER_WORKDIR": str(tmp_path),
        "WPS_LOGGING_DATABASE": f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        "WPS_WMS_URL": "http://127.0.0.1:9/wms?key=a%20b"})
    config = pywps_configuration(parser, Settings.from_parser(parser))
    pywps_compat.install(config, store, Limits(), tmp_path / "out")
    return config


# --- the table and the start-up check ---------------------------------------------------

def test_every_replacement_is_explained_and_resolves():
    targets = [r.target for r in pywps_compat.REPLACEMENTS]
    assert len(targets) == len(set(targets))
    for replacement in pywps_compat.REPLACEMENTS:
        assert replacement.why and replacement.by
    pywps_compat.check()


def test_another_pywps_version_refuses_to_start(monkeypatch):
    monkeypatch.setattr(pywps, "__version__", "4.9.0")
    with pytest.raises(RuntimeError, match="4.9.0"):
        pywps_compat.check()


def test_a_changed_signature_refuses_to_start(monkeypatch):
    changed = pywps_compat.Replacement("pywps.app.Process:Process._run_async", "x", "y",
                                       "(self, wps_request)")
    monkeypatch.setattr(pywps_compat, "REPLACEMENTS", (*pywps_compat.REPLACEMENTS, changed))
    with pytest.raises(RuntimeError, match="_run_async"):
        pywps_compat.check()


def test_a_missing_target_refuses_to_start(monkeypatch):
    gone = pywps_compat.Replacement("pywps.dblog:no_such_function", "x", "y")
    monkeypatch.setattr(pywps_compat, "REPLACEMENTS", (gone,))
    with pytest.raises(RuntimeError, match="no_such_function"):
        pywps_compat.check()


def _pywps_bound_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pywps":
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] == "pywps"}
    return names


def _pywps_private_names() -> set[str]:
    names = set()
    for cls in (pywps.Process, pywps.Service, ExecuteResponse, FileStorage):
        for klass in cls.__mro__:
            names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
    return names


def test_no_other_module_patches_pywps():
    """Outside pywps_compat: no assignment to a PyWPS module or class attribute, and no
    override of a PyWPS name starting with '_'."""
    private = _pywps_private_names()
    for path in [*(REPO_ROOT / "wps_app").rglob("*.py"), *(REPO_ROOT / "processes").rglob("*.py")]:
        if path == COMPAT:
            continue
        tree = ast.parse(path.read_text())
        bound = _pywps_bound_names(tree)
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            for target in targets:
                root = target
                while isinstance(root, ast.Attribute):
                    root = root.value
                assert not (isinstance(target, ast.Attribute) and isinstance(root, ast.Name)
                            and root.id in bound), f"{path.name}:{node.lineno} assigns PyWPS"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                raise AssertionError(f"{path.name}:{node.lineno} uses setattr")
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        assert item.name not in private, f"{path.name}: {item.name}"


# --- one canary per replacement ---------------------------------------------------------

def test_config_values_are_read_as_given(installed):
    assert pywps_config.get_config_value("wms", "url") == "http://127.0.0.1:9/wms?key=a%20b"
    assert pywps_config.CONFIG is installed


def test_public_urls_follow_a_trusted_proxy(installed):
    trusted = public_urls.parse_networks("127.0.0.1")
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": "127.0.0.2:8443",
               "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_PREFIX": "/geo"}
    before = pywps_config.get_config_value("server", "url")
    with public_urls.serving(environ, trusted):
        assert pywps_config.get_config_value("server", "url") == "https://127.0.0.2:8443/geo/wps"
        assert pywps_config.get_config_value("server", "outputurl") == (
            "https://127.0.0.2:8443/geo/outputs/")
    assert pywps_config.get_config_value("server", "url") == before


def test_one_template_environment_with_our_templates_first(installed):
    first, second = pywps_basic.RelEnvironment(), pywps_basic.RelEnvironment()
    assert first is second is responses.shared_environment()
    template = first.get_template("1.0.0/execute/main.xml")
    assert Path(template.filename).is_relative_to(responses.TEMPLATES)
    assert pywps_basic.PackageLoader("pywps", "templates") is None


def test_status_documents_are_replaced_never_rewritten_in_place(installed, tmp_path):
    folder = tmp_path / "status"
    storage = FileStorage(str(folder), "http://127.0.0.1:9/outputs/")
    storage.write("<old/>", "job.xml")
    inode = os.stat(folder / "job.xml").st_ino
    with open(folder / "job.xml") as reader:  # a client in the middle of a read
        storage.write("<new/>", "job.xml")
        assert reader.read() == "<old/>"
    assert (folder / "job.xml").read_text() == "<new/>"
    assert os.stat(folder / "job.xml").st_ino != inode
    assert [p.name for p in folder.iterdir()] == ["job.xml"]


class _Response:
    """Just what _update_status_doc reads, counting the renders."""

    def __init__(self, stored: bool, status, raw: bool) -> None:
        self.store_status_file, self.status, self.renders = stored, status, 0
        self.wps_request = type("Request", (), {"raw": raw})()

    def _construct_doc(self):
        self.renders += 1
        return "<doc/>", "text/xml"


@pytest.mark.parametrize(("stored", "status", "raw", "renders"), [
    (True, WPS_STATUS.STARTED, False, 1),    # async: every change is stored
    (False, WPS_STATUS.STARTED, False, 0),   # sync progress: nobody reads it
    (False, WPS_STATUS.SUCCEEDED, False, 1),  # sync end: the response itself
    (False, WPS_STATUS.SUCCEEDED, True, 0),  # a raw output is sent as it is
])
def test_status_documents_render_only_when_read(installed, stored, status, raw, renders):
    response = _Response(stored, status, raw)
    ExecuteResponse._update_status_doc(response)
    assert response.renders == renders


class _TwoOutputs(pywps_compat.CompatProcess):
    """A tiny process: two text outputs."""

    def __init__(self):
        text = [Format("text/plain")]
        super().__init__(self._handler, identifier="two", title="Two", version="1",
                         inputs=[LiteralInput("x", "x", data_type="string")],
                         outputs=[ComplexOutput("a", "A", supported_formats=text),
                                  ComplexOutput("b", "B", supported_formats=text)],
                         store_supported=True, status_supported=True)

    def _handler(self, request, response):
        for identifier, text in (("a", "first"), ("b", "second")):
            if identifier in response.outputs:  # only the outputs the request asked for
                response.outputs[identifier].data = text
        return response


def _execute(client, outputs: list[str], asynchronous: bool = False):
    """POST an Execute of `two` asking for `outputs` in a ResponseDocument."""
    listed = "".join(
        f'<wps:Output asReference="{str(asynchronous).lower()}">'
        f"<ows:Identifier>{o}</ows:Identifier></wps:Output>" for o in outputs)
    flags = ' storeExecuteResponse="true" status="true"' if asynchronous else ""
    body = (
        '<wps:Execute service="WPS" version="1.0.0" xmlns:wps="http://www.opengis.net/wps/1.0.0"'
        ' xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Identifier>two</ows:Identifier>'
        "<wps:DataInputs><wps:Input><ows:Identifier>x</ows:Identifier><wps:Data>"
        "<wps:LiteralData>1</wps:LiteralData></wps:Data></wps:Input></wps:DataInputs>"
        f"<wps:ResponseForm><wps:ResponseDocument{flags}>{listed}</wps:ResponseDocument>"
        "</wps:ResponseForm></wps:Execute>")
    return client.post("/", data=body, content_type="text/xml")


def test_a_response_document_returns_only_the_outputs_it_lists(installed, monkeypatch):
    monkeypatch.setattr(pywps.dblog, "get_process_counts",
                        lambda: pytest.fail("a sync request consulted the job store"))
    client = Client(pywps_compat.CompatService([_TwoOutputs()]))
    doc = _execute(client, ["b"]).get_data(as_text=True)
    assert "second" in doc and "first" not in doc


def test_a_requests_copy_owns_its_outputs_and_shares_the_declarations(installed):
    """The copy PyWPS makes per request: its outputs and handler are its own (a request
    fills them), its literal input declarations are the registered process's (only read)."""
    import copy

    registered = _TwoOutputs()
    first, second = copy.deepcopy(registered), copy.deepcopy(registered)
    assert first.inputs[0] is registered.inputs[0] and first.inputs is not registered.inputs
    assert first.outputs[0] is not registered.outputs[0] is not second.outputs[0]
    assert first.handler.__self__ is first and registered.handler.__self__ is registered
    first.outputs[0].data = "filled"
    first.outputs = first.outputs[1:]  # as CompatService trims a ResponseDocument's
    assert not registered.outputs[0].data and len(registered.outputs) == 2
    assert not second.outputs[0].data
    client = Client(pywps_compat.CompatService([registered]))
    assert "second" in _execute(client, ["b"]).get_data(as_text=True)
    doc = _execute(client, ["a", "b"]).get_data(as_text=True)  # nothing left over
    assert "first" in doc and "second" in doc
    assert not registered.outputs[0].data and not registered.outputs[1].data


def test_a_sync_execute_touches_no_job_log(installed, store, monkeypatch):
    """PyWPS would write the request to its log three times and count it against async
    admission; now neither its log nor the JobStore is touched."""
    def no_database():
        raise AssertionError("PyWPS's job log was used")

    monkeypatch.setattr(pywps.dblog, "get_session", no_database)
    monkeypatch.setattr(store, "admit", lambda *_a: pytest.fail("admission consulted"))
    client = Client(pywps_compat.CompatService([_TwoOutputs()]))
    assert "first" in _execute(client, ["a", "b"]).get_data(as_text=True)
    assert store.list() == []


def test_pywps_counts_come_from_the_store(installed, store):
    store.register("a", "two", "wps", limits=Limits(1, 5))
    store.register("b", "two", "wps", limits=Limits(1, 5))
    assert pywps.dblog.get_process_counts() == (1, 1)


def test_async_jobs_are_registered_before_they_run(installed, store, monkeypatch):
    """The accepting worker registers the job in the store (admission) before the job's
    process starts; that process marks it running and ends it there."""
    seen_at_start = []

    class Launcher:
        def __init__(self, process, wps_request, wps_response):
            self.args = (process, wps_request, wps_response)

        def start(self):
            process, wps_request, wps_response = self.args
            seen_at_start.append(store.get(str(process.uuid)).status)
            process._run_process(wps_request, wps_response)  # what the fork would run

    import pywps.processing
    monkeypatch.setattr(pywps.processing, "Process", Launcher)
    client = Client(pywps_compat.CompatService([_TwoOutputs()]))
    _execute(client, ["a", "b"], asynchronous=True)
    (job,) = store.list()
    assert seen_at_start == ["accepted"]
    assert (job.status, job.process_id, job.binding) == ("succeeded", "two", "wps")


def test_job_ids_are_random(installed, monkeypatch):
    """Each request's id (so its job, status document and output folder) is a uuid4."""
    import pywps.processing

    monkeypatch.setattr(pywps.processing, "Process", lambda **_kwargs: type(
        "NotStarted", (), {"start": lambda self: None})())
    client = Client(pywps_compat.CompatService([_TwoOutputs()]))
    ids = []
    for _ in range(3):
        answer = _execute(client, ["a"], asynchronous=True).get_data(as_text=True)
        location = re.search(r'statusLocation="[^"]*/([0-9a-f-]{36})\.xml"', answer)
        ids.append(uuid.UUID(location.group(1)))
    assert [i.version for i in ids] == [4, 4, 4] and len(set(ids)) == 3


def test_the_installed_configuration_is_a_plain_parser(installed):
    assert isinstance(installed, configparser.ConfigParser)
    assert installed.get("wms", "url", raw=False).endswith("%20b")


class _Exited(Exception):
    """os._exit, as the tests see it."""


def test_a_runner_given_up_for_dead_never_leaves_a_stale_document(tmp_path, monkeypatch):
    """Frozen between its store update and its document write, a job's process was given up
    and its job failed (document rewritten) elsewhere; on resuming it writes a stale
    Started document, but its next store call tells it the job is lost, and it writes the
    failure back before it ends."""
    from types import SimpleNamespace

    from wps_app.jobs import LEASE_EXPIRED
    from wps_app.wps.job_status import publish_failures

    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite", lease_s=30)
    store.migrate()
    store.register("job-1", "two", "wps", limits=Limits())
    document = tmp_path / "job-1.xml"
    service = SimpleNamespace(processes={"two": _TwoOutputs()})
    process = SimpleNamespace(uuid="job-1", workdir=None, service=service, clean=lambda: None)

    def pywps_update_status(status, message, percent, clean=True):
        # the other instance acts while this process is frozen before its write
        store.fail("job-1", LEASE_EXPIRED)
        publish_failures([store.get("job-1")], service.processes, tmp_path)
        document.write_text("<stale started document/>")

    def exit_(code):
        raise _Exited(code)

    response = SimpleNamespace(_update_status=pywps_update_status, status_percentage=0)
    monkeypatch.setattr(pywps_compat.os, "_exit", exit_)
    run = pywps_compat._JobRun(pywps_compat._Jobs(store, Limits(), tmp_path), process,
                               response)
    assert run.store.start("job-1")
    response._update_status = run._record  # as run.start() does, without its thread
    response._update_status(WPS_STATUS.STARTED, "filtering", 40)
    assert document.read_text() == "<stale started document/>"
    with pytest.raises(_Exited):
        run.heartbeat.beat()  # the store says the job ended: the runner gives up
    assert "ProcessFailed" in document.read_text()
    assert LEASE_EXPIRED in document.read_text()


class _Sized(pywps_compat.CompatProcess):
    """A process with an input the client may leave out (PyWPS then fills in its default);
    its handler notes which inputs the run was told the client sent."""

    def __init__(self, seen: list):
        self.seen = seen
        self.outputurls: list[str] = []  # shared with the copies PyWPS runs
        super().__init__(self._handler, identifier="sized", title="Sized", version="1",
                         inputs=[LiteralInput("x", "x", data_type="string"),
                                 LiteralInput("width", "width", data_type="integer",
                                              min_occurs=0, default=512)],
                         outputs=[ComplexOutput("a", "A",
                                                supported_formats=[Format("text/plain")])],
                         store_supported=True, status_supported=True)

    def _handler(self, request, response):
        self.seen.append(getattr(request, "given_inputs", None))
        self.outputurls.append(pywps_config.get_config_value("server", "outputurl"))
        response.outputs["a"].data = "done"
        return response


QUEUED_EXECUTE = ("/?service=WPS&version=1.0.0&request=Execute&identifier=sized"
                  "&DataInputs=x=1&ResponseDocument=a@asReference=true"
                  "&storeExecuteResponse=true&status=true")


def _queue_behind_another(tmp_path, store, monkeypatch):
    """PyWPS installed with room for one running job, taken by job "ahead"; a Sized
    process whose jobs run inline (as the fork would); returns (service, process)."""
    from wps_app.wps.service import EdgeService

    _restore_after_test(monkeypatch)
    parser = read_config([REPO_ROOT / "pywps.cfg"], {
        "WPS_SERVER_OUTPUTPATH": str(tmp_path / "out"), "WPS_SERVER_WORKDIR": str(tmp_path),
        "WPS_LOGGING_DATABASE": f"sqlite:///{tmp_path / 'jobs.sqlite'}"})
    limits = Limits(1, 5)
    pywps_compat.install(pywps_configuration(parser, Settings.from_parser(parser)), store,
                         limits, tmp_path / "out")

    class Inline:  # what the fork would run, run here
        def __init__(self, process, wps_request, wps_response):
            self.args = (process, wps_request, wps_response)

        def start(self):
            process, wps_request, wps_response = self.args
            process._run_process(wps_request, wps_response)

    import pywps.processing
    monkeypatch.setattr(pywps.processing, "Process", Inline)
    store.register("ahead", "other", "wps", limits=limits)  # holds the only slot
    process = _Sized([])
    return EdgeService([process]), process


def _the_queued_job(store):
    (queued,) = [job for job in store.list() if job.job_id != "ahead"]
    assert queued.queued
    return queued


def test_a_queued_job_runs_with_the_inputs_its_client_sent(tmp_path, store, monkeypatch):
    """PyWPS stores a request with its defaults filled in; a job that waited in the queue
    still knows which inputs its client sent (a bbox without width or height keeps its
    aspect), as one that ran at once does."""
    service, process = _queue_behind_another(tmp_path, store, monkeypatch)
    answer = Client(service).get(QUEUED_EXECUTE)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    queued = _the_queued_job(store)
    assert process.seen == []
    store.finish("ahead")
    pywps_compat.start_queued(service)
    assert process.seen == [frozenset({"x"})]
    assert store.get(queued.job_id).status == "succeeded"


def test_a_queued_job_keeps_the_public_urls_of_the_request_that_sent_it(
        tmp_path, store, monkeypatch):
    """Behind a trusted proxy, a job that waited in the queue writes its documents with
    the public URLs its client was answered with, not those of whatever request or job
    happens to start it (nor the configured ones)."""
    service, process = _queue_behind_another(tmp_path, store, monkeypatch)
    trusted = public_urls.parse_networks("127.0.0.1")
    proxied = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": "127.0.0.2:8443",
               "HTTP_X_FORWARDED_PROTO": "https"}
    with public_urls.serving(proxied, trusted):
        answer = Client(service).get(QUEUED_EXECUTE)
    assert 'statusLocation="https://127.0.0.2:8443/outputs/' in answer.get_data(as_text=True)
    queued = _the_queued_job(store)
    store.finish("ahead")
    pywps_compat.start_queued(service)  # outside any request
    assert process.outputurls == ["https://127.0.0.2:8443/outputs/"]
    assert store.get(queued.job_id).status == "succeeded"
