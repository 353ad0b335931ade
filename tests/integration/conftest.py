"""Session fixtures of the integration layer: MapServer under lighttpd, gunicorn,
PostgreSQL and fault proxies, all on loopback, started on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import embedded_wms
from devtools.servers import start_wps

SUPPORT = Path(__file__).resolve().parent.parent / "support"


@pytest.fixture(scope="session")
def wms_server(sample_path, tmp_path_factory):
    """The embedded MapServer WMS (lighttpd + FastCGI) on a free loopback port."""
    server = embedded_wms.start(rundir=tmp_path_factory.mktemp("wms"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def faults_wms(sample_path, tmp_path_factory):
    """A second MapServer with a layer whose GetMap fails with a ServiceException."""
    server = embedded_wms.start(
        rundir=tmp_path_factory.mktemp("wms-faults"),
        mapfile=SUPPORT / "data" / "faults.map",
        max_procs=1,
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wps(wms_server, tmp_path_factory):
    """gunicorn serving the WPS against the embedded WMS."""
    server = start_wps(tmp_path_factory.mktemp("wps"), wms_server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_proxy(faults_wms):
    """A fault-injecting proxy in front of the fault-test MapServer (mode set per test)."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(faults_wms.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def faulty_wps(fault_proxy, tmp_path_factory):
    """A WPS (one worker, 2 s WMS timeout, no retries) reading through the fault proxy."""
    server = start_wps(tmp_path_factory.mktemp("wps-faults"), fault_proxy.url, workers=1,
                       overrides={"wms": {"timeout": 2}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def orphan_wps(sample_path, tmp_path_factory):
    """A WPS whose WMS answered at start-up (layers cached) and then went down."""
    wms = embedded_wms.start(rundir=tmp_path_factory.mktemp("wms-doomed"), max_procs=1)
    server = start_wps(tmp_path_factory.mktemp("wps-orphan"), wms.url, workers=1)
    wms.stop()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow_proxy(wms_server):
    """A proxy that holds every GetMap for 8 s before passing it to the real MapServer."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port, mode="delay", delay_s=8.0)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def slow_wps(slow_proxy, tmp_path_factory):
    """A WPS behind the slow proxy whose async jobs may run at most 4 s, on 3 s leases."""
    server = start_wps(tmp_path_factory.mktemp("wps-slow"), slow_proxy.url, workers=2,
                       overrides={"wms": {"timeout": 30},
                                  "jobs": {"max_runtime": 4, "lease_s": 3}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server (Debian's), run as its own user, on a free loopback port."""
    from postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_wps(wms_server, postgres, tmp_path_factory):
    """A WPS with three workers whose job store is the PostgreSQL server."""
    server = start_wps(tmp_path_factory.mktemp("wps-pg"), wms_server.url, workers=3,
                       overrides={"logging": {"database": postgres.url}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxied_wps(wms_server, tmp_path_factory):
    """A WPS that trusts the loopback reverse proxy in front of it (X-Forwarded-*)."""
    from reverse_proxy import ReverseProxy

    server = start_wps(tmp_path_factory.mktemp("wps-proxied"), wms_server.url,
                       overrides={"server": {"trusted_proxies": "127.0.0.1, ::1"}})
    proxy = ReverseProxy(server.port, prefix="/geo")
    yield server, proxy
    proxy.close()
    server.stop()


@pytest.fixture(scope="session")
def busy_wps(wms_server, tmp_path_factory):
    """One async job at a time and one in the queue, behind a WMS that takes 3 s a GetMap;
    3 s leases."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port, mode="delay", delay_s=3.0)
    server = start_wps(tmp_path_factory.mktemp("wps-busy"), proxy.url, workers=2,
                       overrides={"wms": {"timeout": 30}, "jobs": {"lease_s": 3},
                                  "server": {"parallelprocesses": 1, "maxprocesses": 1}})
    yield server
    server.stop()
    proxy.close()


@pytest.fixture(scope="session")
def retrying_wps(fault_proxy, tmp_path_factory):
    """Like faulty_wps, but retrying a failed GetMap twice."""
    server = start_wps(tmp_path_factory.mktemp("wps-retrying"), fault_proxy.url, workers=1,
                       overrides={"wms": {"timeout": 2, "retries": 2}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_disk_wps(wms_server, tmp_path_factory):
    """A WPS allowed 0.1 MB of published outputs."""
    server = start_wps(tmp_path_factory.mktemp("wps-small-disk"), wms_server.url, workers=1,
                       overrides={"limits": {"max_output_mb": 0.1}})
    yield server
    server.stop()


@pytest.fixture
def unwritable_wps(wms_server, tmp_path_factory):
    """A WPS whose output folder became a plain file after start-up (as root, permission
    bits do not stop writes, so the folder is replaced instead)."""
    import shutil

    server = start_wps(tmp_path_factory.mktemp("wps-unwritable"), wms_server.url, workers=1)
    shutil.rmtree(server.output_path)
    server.output_path.write_text("not a folder")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def load_wps(wms_server, tmp_path_factory):
    """A WPS with four sync workers for the load test."""
    server = start_wps(tmp_path_factory.mktemp("wps-load"), wms_server.url, workers=4)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def strip_wps(wms_server, tmp_path_factory):
    """A WPS that processes anything over 10 000 pixels in strips of 64 rows (64-pixel WMS
    blocks), and returns at most 0.05 MB raw."""
    server = start_wps(tmp_path_factory.mktemp("wps-strips"), wms_server.url, workers=2,
                       overrides={"limits": {"stream_above_px": 10000, "max_raw_mb": 0.05},
                                  "wms": {"block_px": 64}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def multi_wps(wms_server, faults_wms, tmp_path_factory):
    """A WPS with two named WMS sources: `sample` (default) and `faults`."""
    server = start_wps(tmp_path_factory.mktemp("wps-multi"), wms_server.url, workers=1,
                       overrides={"wms": {"name": "sample"},
                                  "wms:faults": {"url": faults_wms.url, "timeout": 3}})
    yield server
    server.stop()
