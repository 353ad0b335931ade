"""The scale-out pieces that need no server: [processing] and [server] expose_pid settings,
/health's pid, the public URLs a Dask worker carries, HAProxy's rendered configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from stub_catalog import StubCatalog
from werkzeug.test import Client

from wps_app.ops import balancer
from wps_app.settings import Settings, read_config
from wps_app.web.app import create_app
from wps_app.wps import public_urls


def settings_of(values: dict) -> Settings:
    cfg = read_config([], {})
    cfg.read_dict(values)
    return Settings.from_parser(cfg)


@pytest.mark.parametrize("written, mode", [("local", "local"), ("detachprocessing", "local"),
                                           ("DASK", "dask")])
def test_processing_mode(written, mode):
    scheduler = "tcp://127.0.0.1:8786"
    assert settings_of({"processing": {"mode": written, "dask_scheduler": scheduler}}
                       ).processing_mode == mode


@pytest.mark.parametrize("values", [
    {"mode": "multiprocessing"},
    {"mode": "dask"},  # no scheduler
    {"mode": "dask", "dask_scheduler": "127.0.0.1:8786"},
    {"mode": "dask", "dask_scheduler": "http://127.0.0.1:8786"},
    {"mode": "dask", "dask_scheduler": "tcp://127.0.0.1:8786/x"},
])
def test_bad_processing_settings_are_refused(values):
    with pytest.raises(ValueError):
        settings_of({"processing": values})


def test_tls_scheduler_is_accepted():
    settings = settings_of({"processing": {"mode": "dask",
                                           "dask_scheduler": "tls://127.0.0.1:8786"}})
    assert settings.dask_scheduler == "tls://127.0.0.1:8786"


def _client(tmp_path: Path, expose: str) -> Client:
    config = tmp_path / "test.cfg"
    config.write_text(
        f"[server]\noutputpath = {tmp_path / 'outputs'}\nworkdir = {tmp_path / 'work'}\n"
        f"expose_pid = {expose}\ninstance = api-7\n"
        f"[logging]\ndatabase = sqlite:///{tmp_path / 'jobs.sqlite'}\n"
        "[wms]\nurl = http://127.0.0.1:9/wms\ntimeout = 1\nretries = 0\n")
    return Client(create_app([config], catalogs={"sample": StubCatalog({"a": "A"})}))


def test_health_names_the_instance_and_with_expose_pid_its_master(tmp_path):
    """Under gunicorn a worker's parent is its master: /health gives the parent's pid."""
    body = _client(tmp_path, "true").get("/health").get_json()
    assert (body["instance"], body["pid"]) == ("api-7", os.getppid())


def test_health_has_no_pid_by_default(tmp_path):
    body = _client(tmp_path, "false").get("/health").get_json()
    assert body["instance"] == "api-7" and "pid" not in body


def test_a_worker_writes_the_accepting_requests_public_urls():
    """current_public() (at submission) -> using() (on the worker): the same URLs."""
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_HOST": "127.0.0.1:5080",
               "HTTP_X_FORWARDED_PROTO": "http"}
    trusted = public_urls.parse_networks("127.0.0.1")
    assert public_urls.current_public() is None
    with public_urls.serving(environ, trusted):
        carried = public_urls.current_public()
    assert carried == {"url": "http://127.0.0.1:5080/wps",
                       "outputurl": "http://127.0.0.1:5080/outputs/"}
    with public_urls.using(carried):
        assert public_urls.current_output_url() == "http://127.0.0.1:5080/outputs/"
    assert public_urls.current_overrides() is None
    with public_urls.using(None):
        assert public_urls.current_overrides() is None


def test_haproxy_configuration_lists_each_instance_with_health_checks(tmp_path):
    text = balancer.render(balancer.BalancerOptions(
        "127.0.0.1:5000", (("instance-1", "127.0.0.1:5101"), ("instance-2", "127.0.0.1:5102")),
        tmp_path))
    assert "bind 127.0.0.1:5000" in text
    assert "    server instance-1 127.0.0.1:5101 check" in text
    assert "    server instance-2 127.0.0.1:5102 check" in text
    assert "http-check send meth GET uri /health" in text
    assert "unless { req.hdr(X-Request-ID) -m found }" in text
    assert "@" not in text.split("\nglobal", 1)[1]  # every value filled in
    assert "stats socket" in text and "level user" in text


def test_make_cluster_drains_longer_than_haproxy_takes_to_notice(tmp_path):
    """[server] drain_s of make cluster's configuration is above the worst time HAProxy's
    checks, as rendered, take to take an instance out: fall checks, each up to its
    timeout, inter apart, plus the wait for the first."""
    import re

    from devtools.cluster import write_config

    text = balancer.render(balancer.BalancerOptions(
        "127.0.0.1:5000", (("instance-1", "127.0.0.1:5101"),), tmp_path))
    inter, fall = map(int, re.search(r"default-server inter (\d+)s fall (\d+)", text).groups())
    check_timeout = int(re.search(r"timeout check (\d+)s", text).group(1))
    config = write_config(tmp_path / "c.cfg", 5000, tmp_path, "sqlite:///x", "tcp://127.0.0.1:1",
                          "http://127.0.0.1:2/wms", 2)
    cfg = read_config([config], {})
    assert cfg.getfloat("server", "drain_s") > inter + fall * (inter + check_timeout)


@pytest.mark.parametrize("servers", [(("a b", "127.0.0.1:1"),), (("a", "127.0.0.1:1\n"),),
                                     (("a", "host"),)])
def test_haproxy_configuration_refuses_odd_values(tmp_path, servers):
    with pytest.raises(ValueError):
        balancer.render(balancer.BalancerOptions("127.0.0.1:5000", servers, tmp_path))
