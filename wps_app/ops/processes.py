"""Child processes of the operator commands: wait until one answers, stop a whole group.

Servers are started in their own session (start_new_session=True), so one signal to the
process group reaches the server and every child it spawned (nginx workers, gunicorn
workers, MapServer FastCGI processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Sequence


def signal_group(group: int, signum: int) -> None:
    """Send `signum` to process group `group`, if it still exists."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(process: subprocess.Popen, timeout_s: float = 15.0,
               first: int = signal.SIGTERM, leader_only: bool = False) -> None:
    """Stop `process` and its group: `first` (SIGTERM: graceful) to the whole group, or
    to `process` alone with `leader_only` (a gunicorn master, which stops its workers
    itself), SIGKILL after `timeout_s` seconds, then SIGKILL for any child left in the
    group."""
    if process.poll() is None:
        if leader_only:
            try:
                process.send_signal(first)
            except ProcessLookupError:
                pass
        else:
            signal_group(process.pid, first)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
    signal_group(process.pid, signal.SIGKILL)


def wait_until_answering(url: str, processes: Sequence[subprocess.Popen],
                         timeout_s: float = 60.0, accept=lambda body: True) -> None:
    """Return once `url` answers 200 (and `accept(body)`); RuntimeError when one of
    `processes` exits first or `timeout_s` seconds pass."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200 and accept(answer.read()):
                    return
        except OSError:
            pass
        pause.wait(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g} s")
