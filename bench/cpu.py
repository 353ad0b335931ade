"""CPU seconds used by a process session (a server and all its children), from /proc.

The services under test each run in their own session (started with start_new_session),
so summing user + system time over the processes of a session splits the machine's CPU
between this service, the tutorial's and MapServer (lighttpd and its FastCGI children).
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_s(session_id: int) -> float:
    """User + system CPU seconds of every live process whose session is `session_id`."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        # after "pid (comm)": state ppid pgrp session ... utime(12) stime(13)
        if int(fields[3]) == session_id:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS
