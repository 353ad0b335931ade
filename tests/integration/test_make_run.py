"""`make run`'s command: the URL is printed once the service answers through its front, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from waiting import wait_until

from devtools.embedded_wms import free_port
from devtools.servers import write_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _line_with(process: subprocess.Popen, text: str, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if text in line:
                return line
            if not line and process.poll() is not None:
                break
    raise AssertionError(f"no line with {text!r}")


def test_make_run_prints_the_url_once_served_and_ctrl_c_stops_everything(tmp_path,
                                                                          sample_path):
    port, wms_port = free_port(), free_port()
    config = write_config(tmp_path / "cfg", port, f"http://127.0.0.1:{wms_port}/wms")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.run", "--port", str(port), "--wms-port",
         str(wms_port), "--workers", "1", "--rundir", str(tmp_path / "var")],
        cwd=REPO_ROOT, env=dict(os.environ, PYWPS_CFG=str(config)), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = _line_with(process, "WPS: ")
        url = line.split("WPS: ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/wps"
        # printed only once it answers through the front: no retry needed here
        answer = requests.get(url, params={"service": "WPS", "request": "GetCapabilities"},
                              timeout=30)
        assert answer.status_code == 200
        started = _descendants(process.pid)
        names = {Path(f"/proc/{pid}/exe").resolve().name for pid in started if _alive(pid)}
        assert {"nginx", "lighttpd", "mapserv"} <= names, names
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        wait_until(lambda: not [pid for pid in started if _alive(pid)], 30,
                   lambda: f"processes still alive: {[p for p in started if _alive(p)]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("taken", ["wps", "wms"])
def test_a_port_in_use_is_said_plainly_and_nothing_starts(tmp_path, taken):
    """make run on a taken port: one line naming the port and the variable to change, exit
    status 2, no traceback, nothing started."""
    import socket

    from devtools.embedded_wms import free_port

    ports = {"wps": free_port(), "wms": free_port()}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        done = subprocess.run(
            [sys.executable, "-m", "devtools.run", "--port", str(ports["wps"]),
             "--wms-port", str(ports["wms"]), "--rundir", str(tmp_path / "var")],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    variable = {"wps": "WPS_PORT", "wms": "WMS_PORT"}[taken]
    assert f"port {ports[taken]} on 127.0.0.1 is in use" in done.stderr
    assert f"{variable}=" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # nothing was started
