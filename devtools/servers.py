"""Start the real servers the tests talk to: gunicorn serving the WPS, on loopback."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.embedded_wms import free_port
from wps_app.ops.processes import stop_group, wait_until_answering
from wps_app.settings import REPO_ROOT

Overrides = dict[str, dict[str, object]]


def write_config(directory: Path, port: int, wms_url: str,
                 overrides: Overrides | None = None) -> Path:
    """A pywps.cfg overlay for a test server: its own port, output and work folders."""
    directory.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict({
        "server": {"url": f"http://127.0.0.1:{port}/wps",
                   "outputurl": f"http://127.0.0.1:{port}/outputs/",
                   "outputpath": f"{directory}/outputs", "workdir": f"{directory}/work"},
        "logging": {"level": "INFO",
                    "database": f"sqlite:///{directory}/pywps-logs.sqlite"},
        "wms": {"url": wms_url, "timeout": 5, "retries": 0},
    })
    config.read_dict({s: {k: str(v) for k, v in kv.items()} for s, kv in (overrides or {}).items()})
    path = directory / "pywps-test.cfg"
    with path.open("w") as handle:
        config.write(handle)
    return path


@dataclass
class WpsServer:
    """A gunicorn process serving wps_app.app:application."""

    process: subprocess.Popen
    port: int
    directory: Path
    config: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wps"

    @property
    def output_path(self) -> Path:
        return self.directory / "outputs"

    def stop(self) -> None:
        stop_group(self.process)


APP = "wps_app.app:application"


def start_wps(directory: Path, wms_url: str, workers: int = 2,
              overrides: Overrides | None = None, env: dict[str, str] | None = None,
              app: str = APP, root: Path = REPO_ROOT) -> WpsServer:
    """Start gunicorn serving `app` (a WSGI callable's module:name, the service's own by
    default; a test may wrap it) from checkout `root` (the benchmarks run an earlier
    commit's too) on a free loopback port and wait until GetCapabilities answers."""
    port = free_port()
    config = write_config(directory, port, wms_url, overrides)
    environment = dict(os.environ, PYWPS_CFG=str(config), HOME=str(directory),
                       EDGE_WPS_RUNDIR=str(directory / "run"), **(env or {}))
    log = open(directory / "gunicorn.log", "ab")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", app,
            "-c", str(root / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers),
            "--timeout", "120",
            "--no-control-socket",
            "--chdir", str(root),
        ],
        cwd=root,  # gunicorn reads the checkout's own gunicorn.conf.py
        env=environment,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    server = WpsServer(process, port, directory, config)
    try:
        wait_until_answering(f"{server.url}?service=WPS&request=GetCapabilities", [process])
    except RuntimeError as exc:
        server.stop()
        raise RuntimeError(f"{exc}; see {directory / 'gunicorn.log'}") from None
    return server


@dataclass
class FrontServer:
    """nginx (deploy/nginx.conf.in) in front of a WpsServer, on its own loopback port."""

    process: subprocess.Popen
    port: int
    wps: WpsServer
    directory: Path  # nginx's run folder (its configuration and logs)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wps"

    def stop(self) -> None:
        stop_group(self.process)


def start_front(wps: WpsServer, directory: Path, client_timeout_s: int = 20) -> FrontServer:
    """Start the nginx front before `wps` and wait until GetCapabilities answers through it."""
    from wps_app.ops import front

    port = free_port()
    process = front.start(front.FrontOptions(
        listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{wps.port}",
        rundir=directory.resolve(), client_timeout_s=client_timeout_s))
    server = FrontServer(process, port, wps, directory.resolve())
    try:
        wait_until_answering(f"{server.url}?service=WPS&request=GetCapabilities",
                                   [process])
    except RuntimeError:
        server.stop()
        raise
    return server
