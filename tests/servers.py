"""Start the real servers the tests talk to: gunicorn serving the WPS, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from wps_app.embedded_wms import free_port
from wps_app.settings import REPO_ROOT


def write_config(
    directory: Path, port: int, wms_url: str, wms_timeout_s: float = 5
) -> Path:
    """A pywps.cfg overlay for a test server: its own port, output and work folders."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pywps-test.cfg"
    path.write_text(
        f"""[server]
url = http://127.0.0.1:{port}/wps
outputurl = http://127.0.0.1:{port}/outputs/
outputpath = {directory}/outputs
workdir = {directory}/work
[logging]
level = INFO
database = sqlite:///{directory}/pywps-logs.sqlite
[wms]
url = {wms_url}
timeout = {wms_timeout_s}
retries = 0
"""
    )
    return path


@dataclass
class WpsServer:
    """A gunicorn process serving wps_app.app:application."""

    process: subprocess.Popen
    port: int
    directory: Path

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
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_wps(
    directory: Path, wms_url: str, workers: int = 2, wms_timeout_s: float = 5
) -> WpsServer:
    """Start gunicorn on a free loopback port and wait until GetCapabilities answers."""
    port = free_port()
    config = write_config(directory, port, wms_url, wms_timeout_s)
    env = dict(os.environ, PYWPS_CFG=str(config), HOME=str(directory))
    log = open(directory / "gunicorn.log", "ab")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "wps_app.app:application",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers),
            "--timeout", "120",
            "--no-control-socket",
            "--chdir", str(REPO_ROOT),
        ],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    server = WpsServer(process, port, directory)
    deadline = time.monotonic() + 60
    probe = f"{server.url}?service=WPS&request=GetCapabilities"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {directory / 'gunicorn.log'}")
        try:
            with urllib.request.urlopen(probe, timeout=5) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("gunicorn did not answer within 60 s")
