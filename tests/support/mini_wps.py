"""Start the minimal WPS of mini_wps_app under gunicorn on a free loopback port."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.embedded_wms import free_port
from wps_app.ops.processes import stop_group, wait_until_answering

HERE = Path(__file__).resolve().parent
TITLE = "Mini WPS for plugin tests"


@dataclass
class MiniWps:
    """The gunicorn process serving mini_wps_app:application."""

    process: subprocess.Popen
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wps"

    def stop(self) -> None:
        stop_group(self.process)


def write_config(directory: Path, port: int) -> Path:
    """PyWPS configuration: own port, folders and job database; asynchronous jobs allowed."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict({
        "metadata:main": {"identification_title": TITLE},
        "server": {"url": f"http://127.0.0.1:{port}/wps",
                   "outputurl": f"http://127.0.0.1:{port}/outputs/",
                   "outputpath": str(directory / "outputs"), "workdir": str(directory / "work"),
                   "parallelprocesses": "2", "maxprocesses": "8"},
        "logging": {"level": "INFO", "file": str(directory / "pywps.log"),
                    "database": f"sqlite:///{directory}/pywps-logs.sqlite"},
    })
    for sub in ("outputs", "work"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    path = directory / "pywps.cfg"
    with path.open("w") as handle:
        config.write(handle)
    return path


def start(directory: Path) -> MiniWps:
    """Start gunicorn and wait (60 s at most) until GetCapabilities answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = dict(os.environ, MINI_WPS_CFG=str(write_config(directory, port)),
                       HOME=str(directory))
    log = open(directory / "gunicorn.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mini_wps_app:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60",
         "--no-control-socket", "--chdir", str(HERE)],
        env=environment, stdout=log, stderr=log, start_new_session=True,
    )
    server = MiniWps(process, port, directory)
    try:
        wait_until_answering(f"{server.url}?service=WPS&request=GetCapabilities", [process])
    except RuntimeError:
        server.stop()
        raise
    return server
