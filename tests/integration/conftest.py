"""Session fixtures of the integration layer: MapServer under lighttpd, gunicorn,
PostgreSQL and fault proxies, all on loopback, started on first use."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyed import start_keyed_wps as start_wps

from devtools import embedded_wms

SUPPORT = Path(__file__).resolve().parent.parent / "support"


@pytest.fixture(scope="session", autouse=True)
def key_recorder(tmp_path_factory):
    """Every server of the session reads its WMS with keyed.KEY in the URL and a header, and
    records its responses (tests/support/keyed.py). After the last test: the key is in no
    response (status, headers, body) and in no file any server wrote (outputs, status
    documents, work folders, logs, SQLite job stores), its own configuration file aside."""
    import keyed

    keyed.RECORD_DIR = tmp_path_factory.mktemp("responses")
    yield
    if not keyed.STARTED and not keyed.ALSO_SCANNED:
        return
    recorded = list(keyed.RECORD_DIR.glob("responses-*.bin"))
    assert recorded or not keyed.STARTED, "the servers recorded no response"
    leaks = keyed.files_holding_key(
        [keyed.RECORD_DIR, *(s.directory for s in keyed.STARTED),
         *(directory for directory, _ in keyed.ALSO_SCANNED)],
        skip={s.config for s in keyed.STARTED}.union(*(k for _, k in keyed.ALSO_SCANNED)))
    assert not leaks, f"the WMS key reached: {[str(p) for p in leaks]}"


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
    import requests
    from waiting import wait_until

    wms = embedded_wms.start(rundir=tmp_path_factory.mktemp("wms-doomed"), max_procs=1)
    server = start_wps(tmp_path_factory.mktemp("wps-orphan"), wms.url, workers=1)
    # its one worker has read the layer list before the WMS goes
    wait_until(lambda: requests.get(f"{server.base}/health/upstream", timeout=30).ok, 30,
               "the first layer list")
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
    import keyed

    from devtools.postgres import start_postgres

    server = start_postgres()
    yield server
    try:  # the shared job store is one more place the WMS key must never reach
        assert keyed.KEY.encode() not in server.dump(), "the WMS key is in the job store"
    finally:
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
def gated_proxy(wms_server):
    """A proxy in front of the sample MapServer that holds GetMaps while a test has its gate
    closed (see `gate`), and passes them otherwise."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def gated_wps(gated_proxy, tmp_path_factory):
    """A WPS reading the sample MapServer through the gated proxy (60 s WMS timeout, longer
    than any hold)."""
    server = start_wps(tmp_path_factory.mktemp("wps-gated"), gated_proxy.url, workers=2,
                       overrides={"wms": {"timeout": 60}})
    yield server
    server.stop()


@pytest.fixture
def gate(gated_proxy):
    """The gated proxy, holding every GetMap of gated_wps until the test calls release()
    (released after the test in any case)."""
    gated_proxy.hold()
    yield gated_proxy
    gated_proxy.release()


@pytest.fixture(scope="session")
def busy_proxy(wms_server):
    """The proxy in front of busy_wps's WMS; a test holds its GetMaps with busy_gate."""
    from fault_proxy import FaultProxy

    proxy = FaultProxy(wms_server.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def busy_wps(busy_proxy, tmp_path_factory):
    """One async job at a time and one in the queue, behind a WMS a test can hold."""
    server = start_wps(tmp_path_factory.mktemp("wps-busy"), busy_proxy.url, workers=2,
                       overrides={"wms": {"timeout": 60}, "jobs": {"lease_s": 3},
                                  "server": {"parallelprocesses": 1, "maxprocesses": 1}})
    yield server
    server.stop()


@pytest.fixture
def busy_gate(busy_proxy):
    """busy_wps's proxy, holding every GetMap until the test calls release() (released after
    the test in any case)."""
    busy_proxy.hold()
    yield busy_proxy
    busy_proxy.release()


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


@pytest.fixture(scope="session")
def front_wps(wms_server, tmp_path_factory):
    """One sync gunicorn worker behind the nginx front (deploy/nginx.conf.in), trusting it."""
    from devtools.servers import start_front

    server = start_wps(tmp_path_factory.mktemp("wps-front"), wms_server.url, workers=1,
                       overrides={"server": {"trusted_proxies": "127.0.0.1"}})
    # client timeouts far above the tests' request deadlines: a slow client is never cut
    # off before the test has shown that others are served meanwhile
    front = start_front(server, tmp_path_factory.mktemp("front"), client_timeout_s=180)
    yield front
    front.stop()
    server.stop()


# --- QGIS plugin (tests/integration/test_qgis_plugin.py) --------------------------------

PLUGIN_MAX_PIXELS = 1_000_000  # far below width x height caps: a refusal with sides in range


@pytest.fixture(scope="session")
def wms_gate(wms_server):
    """A proxy in front of the sample WMS whose GetMaps wait while its gate is closed."""
    from gate_proxy import GateProxy

    gate = GateProxy(f"http://127.0.0.1:{wms_server.port}")
    yield gate
    gate.close()


@pytest.fixture(scope="session")
def plugin_wps(wms_gate, tmp_path_factory):
    """The WPS reading the WMS through the gate, allowed PLUGIN_MAX_PIXELS per request."""
    server = start_wps(tmp_path_factory.mktemp("wps-plugin"), wms_gate.url, workers=2,
                       overrides={"limits": {"max_pixels": PLUGIN_MAX_PIXELS},
                                  "wms": {"timeout": 60}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mini_wps(tmp_path_factory):
    """A second, minimal PyWPS service (tests/support/mini_wps_app.py) under gunicorn."""
    import mini_wps as mini

    server = mini.start(tmp_path_factory.mktemp("wps-mini"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_wps(gated_proxy, tmp_path_factory):
    """API keys for two clients (alice, bob), one unfinished async job each at most,
    reading through the gated proxy."""
    from apikeys import KEY_A, KEY_B

    directory = tmp_path_factory.mktemp("wps-keyed")
    keys = directory / "keys"
    keys.write_text(f"{KEY_A} alice\n{KEY_B} bob\n")
    server = start_wps(directory, gated_proxy.url, workers=2,
                       overrides={"wms": {"timeout": 60}, "auth": {"keys_file": keys},
                                  "jobs": {"max_per_client": 1}})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def deadline_wps(gated_proxy, tmp_path_factory):
    """Sync Executes may take 3 s; the WMS behind the gated proxy has a 30 s timeout."""
    server = start_wps(tmp_path_factory.mktemp("wps-deadline"), gated_proxy.url, workers=1,
                       overrides={"wms": {"timeout": 30},
                                  "jobs": {"sync_max_runtime": 3}})
    yield server
    server.stop()
