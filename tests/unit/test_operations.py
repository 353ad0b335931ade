"""Request ids, log lines and the draining state, in-process: ids kept or replaced, log
lines naming them, the answer's X-Request-ID, /health and refusals while draining, and
the master's drain decision (wps_app.ops.gunicorn_drain) on a stand-in arbiter."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import pytest
from stub_catalog import StubCatalog
from werkzeug.test import Client

from wps_app import instance, request_ids
from wps_app.ops import front, gunicorn_drain
from wps_app.web import logs
from wps_app.web.app import create_app


@pytest.mark.parametrize("text, kept", [
    ("0af7651916cd43dd8448eb211c80319c", True),
    ("7F000001:8296_7F000001:1F90_4F7B0A69_0003:790A", True),  # HAProxy's example format
    ("3e8a1c7e-1d4a-4a8e-9a51-6b7f1c2d3e4f", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("", False),
    ("two words", False),
    ("line\nbreak", False),
    ("caf\u00e9", False),
    ("x;y", False),
])
def test_ids_are_kept_only_when_plain_tokens(text, kept):
    made = request_ids.from_environ({request_ids.ENVIRON_HEADER: text})
    assert (made == text) == kept
    assert re.fullmatch(request_ids.PATTERN, made)


def test_nginx_checks_the_pattern_the_app_checks(tmp_path):
    rendered = front.render(front.FrontOptions("127.0.0.1:1", "127.0.0.1:2", tmp_path))
    assert f'"~^{request_ids.PATTERN}$" $http_x_request_id;' in rendered
    assert "proxy_set_header X-Request-ID $edge_request_id;" in rendered


def test_the_front_believes_x_forwarded_for_only_from_trusted_balancers(tmp_path):
    """Without trusted balancers no real_ip directive (the peer is the client, a client's
    own X-Forwarded-For is replaced); with them, only their addresses are trusted."""
    plain = front.render(front.FrontOptions("127.0.0.1:1", "127.0.0.1:2", tmp_path))
    assert "set_real_ip_from" not in plain and "real_ip_header" not in plain
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in plain
    behind = front.render(front.FrontOptions("127.0.0.1:1", "127.0.0.1:2", tmp_path,
                                             trusted_balancers=("127.0.0.1", "10.1.0.0/16")))
    lines = [line.strip() for line in behind.splitlines()]
    assert [line for line in lines if "real_ip" in line and not line.startswith("#")] == [
        "set_real_ip_from 127.0.0.1/32;", "set_real_ip_from 10.1.0.0/16;",
        "real_ip_header X-Forwarded-For;", "real_ip_recursive off;"]
    with pytest.raises(ValueError):
        front.real_ip_block(("127.0.0.1; deny all",))


def _formatted(message: str) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    return logs.EscapingFormatter(logs.FORMAT).format(record)


def test_log_lines_name_the_current_request_or_a_dash():
    assert " request_id=-: hello" in _formatted("hello")
    with request_ids.bound("abc-1"):
        assert " request_id=abc-1: hello" in _formatted("hello")
        seen = []
        # another thread has its own context: a job's process pins its id for all of them
        thread = threading.Thread(target=lambda: seen.append(_formatted("t")))
        thread.start()
        thread.join()
        assert " request_id=-: t" in seen[0]
    assert " request_id=-: hello" in _formatted("hello")


def test_a_pinned_id_reaches_every_thread():
    try:
        request_ids.pin("job-7")
        seen = []
        thread = threading.Thread(target=lambda: seen.append(_formatted("beat")))
        thread.start()
        thread.join()
        assert " request_id=job-7: beat" in seen[0]
        with request_ids.bound(None):  # a queued job whose id is not known
            assert " request_id=-: x" in _formatted("x")
    finally:
        request_ids._pinned = None


def test_a_forked_process_keeps_the_request_id():
    read, write = os.pipe()
    with request_ids.bound("forked-1"):
        pid = os.fork()
        if pid == 0:  # the child: as a detached job process starts
            os.write(write, (request_ids.current() or "").encode())
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    with open(read, "rb") as pipe:
        assert pipe.read() == b"forked-1"


@pytest.fixture
def app(tmp_path, monkeypatch):
    config = tmp_path / "test.cfg"
    config.write_text(
        "[server]\n"
        f"outputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        "[logging]\n"
        f"database = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\ntimeout = 1\nretries = 0\n")
    monkeypatch.setenv(instance.RUNDIR_ENV, str(tmp_path / "run"))
    monkeypatch.setenv(instance.METRICS_ENV, str(tmp_path / "run" / "metrics"))
    instance.prepare(tmp_path / "run")
    return create_app([config], catalogs={"sample": StubCatalog({"sample_city": "City"})})


def test_answers_carry_the_request_id(app):
    client = Client(app)
    given = client.get("/health", headers={"X-Request-ID": "lb-42"})
    assert given.headers.getlist("X-Request-ID") == ["lb-42"]
    made = client.get("/nowhere", headers={"X-Request-ID": "bad id"})
    assert made.status_code == 404
    assert re.fullmatch("[0-9a-f]{32}", made.headers["X-Request-ID"])


def test_draining_health_is_503_then_new_requests_are_refused(app, tmp_path):
    """Phase 1 (draining): /health 503, everything else served; phase 2 (refusing): new
    requests get 503 with Retry-After, /metrics still answers."""
    client = Client(app)
    assert client.get("/health").json["status"] == "ok"
    instance.mark_draining(tmp_path / "run")
    for path in ("/health", "/health/upstream"):
        answer = client.get(path)
        assert (answer.status_code, answer.json["status"]) == (503, "draining")
    served = client.get("/wps?service=WPS&request=GetCapabilities")
    assert served.status_code == 200 and b"Capabilities" in served.get_data()
    assert client.get("/ogcapi/jobs").status_code == 200
    instance.mark_refusing(tmp_path / "run")
    assert client.get("/health").status_code == 503
    caps = client.get("/wps?service=WPS&request=GetCapabilities")
    assert caps.status_code == 503 and caps.headers["Retry-After"] == "1"
    assert b'exceptionCode="ServerBusy"' in caps.get_data()
    jobs = client.get("/ogcapi/jobs")
    assert jobs.status_code == 503 and jobs.headers["Retry-After"] == "1"
    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and b"wps_draining 1.0" in scrape.get_data()


class _Log:
    def info(self, *args):
        pass

    warning = info


class _Config:
    graceful_timeout = 100


class _Arbiter:
    """What Drain uses of gunicorn's Arbiter."""

    def __init__(self, workers):
        self.WORKERS = dict.fromkeys(workers)
        self.log = _Log()
        self.cfg = _Config()
        self.managed = 0

    def manage_workers(self):
        self.managed += 1


def _drain(tmp_path, monkeypatch, workers, drain_s=0.0):
    # prepare() exports the folder to the environment: restored after the test
    monkeypatch.setenv(instance.RUNDIR_ENV, str(tmp_path))
    monkeypatch.setenv(instance.METRICS_ENV, str(tmp_path / "metrics"))
    instance.prepare(tmp_path)
    now = [0.0]
    server = _Arbiter(workers)
    drain = gunicorn_drain.Drain(server, tmp_path, drain_s, clock=lambda: now[0])
    return server, drain, now


def test_the_master_waits_for_busy_workers(tmp_path, monkeypatch):
    server, drain, now = _drain(tmp_path, monkeypatch, [11, 12])
    instance.mark_busy(tmp_path, 11, "/wps")
    instance.mark_busy(tmp_path, 12, "/health")  # untracked: never holds a drain
    drain.on_term()  # still busy: drains
    assert instance.draining() and instance.refusing()  # drain_s = 0: refusing at once
    now[0] = 50.0
    drain.manage_workers()
    assert server.managed == 1
    instance.mark_idle(tmp_path, 11)
    with pytest.raises(StopIteration):
        drain.manage_workers()


def test_a_dead_workers_marker_holds_nothing(tmp_path, monkeypatch):
    server, drain, _ = _drain(tmp_path, monkeypatch, [11])
    instance.mark_busy(tmp_path, 99, "/wps")
    with pytest.raises(StopIteration):
        drain.on_term()
    assert not (tmp_path / "busy" / "99").exists()


def test_drain_s_keeps_an_idle_instance_draining_and_a_second_term_ends_it(tmp_path, monkeypatch):
    server, drain, now = _drain(tmp_path, monkeypatch, [11], drain_s=5.0)
    drain.on_term()
    now[0] = 4.9
    drain.manage_workers()
    assert instance.draining() and not instance.refusing()  # phase 1: still serving
    with pytest.raises(StopIteration):
        drain.on_term()


def test_after_drain_s_new_requests_are_refused_and_in_flight_ones_awaited(tmp_path,
                                                                           monkeypatch):
    server, drain, now = _drain(tmp_path, monkeypatch, [11, 12], drain_s=5.0)
    drain.on_term()
    instance.mark_busy(tmp_path, 11, "/wps")  # a request served in phase 1
    now[0] = 5.0
    drain.manage_workers()  # phase 2: refusing, but worker 11 is still busy
    assert instance.refusing() and server.managed == 1
    instance.mark_idle(tmp_path, 11)
    with pytest.raises(StopIteration):
        drain.manage_workers()


def test_the_drain_ends_after_graceful_timeout_however_busy(tmp_path, monkeypatch):
    server, drain, now = _drain(tmp_path, monkeypatch, [11])
    instance.mark_busy(tmp_path, 11, "/wps")
    drain.on_term()
    now[0] = 99.0
    drain.manage_workers()
    now[0] = 100.0
    with pytest.raises(StopIteration):
        drain.manage_workers()


def test_graceful_timeout_covers_sync_max_runtime():
    assert gunicorn_drain.graceful_timeout(240) > 240
    gunicorn_drain.check()  # the installed gunicorn is one this was checked on


def test_gunicorn_conf_derives_graceful_timeout(monkeypatch):
    import runpy

    monkeypatch.setenv("WPS_JOBS_SYNC_MAX_RUNTIME", "77")
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert conf["graceful_timeout"] == gunicorn_drain.graceful_timeout(77) > 77


def test_metrics_labels_never_hold_client_text(tmp_path):
    """Whatever a client asks for, /metrics names it by one of the fixed operations."""
    import uuid

    config = tmp_path / "plain.cfg"
    config.write_text(
        f"[server]\noutputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        f"[logging]\ndatabase = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\ntimeout = 1\nretries = 0\n")
    client = Client(create_app([config], catalogs={"sample": StubCatalog({"a": "A"})}))
    marker = "zz" + uuid.uuid4().hex[:10]
    client.get(f"/wps?service=WPS&request={marker}")
    client.get(f"/ogcapi/{marker}")
    client.get(f"/{marker}")
    client.post("/wps", data=f"<{marker}/>", content_type="text/xml")
    client.get(f"/outputs/{marker}.xml")
    text = client.get("/metrics").get_data(as_text=True)
    assert marker not in text
    for operation in ("wps:other", "ogcapi:other", "other", "status"):
        assert f'operation="{operation}"' in text
