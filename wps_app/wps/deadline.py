"""A time limit for sync Executes, below gunicorn's worker timeout.

gunicorn kills a sync worker that takes longer than its timeout: the client gets an empty
reply and the job's work folder stays behind half-written. Here a sync Execute gets
[jobs] sync_max_runtime seconds: its WMS reads get a timeout that fits in what is left,
and a SIGALRM (sync workers run requests in their main thread) ends it with a core error
the binding answers as an ExceptionReport, after which PyWPS removes the work folder.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from wps_app.core.errors import TimeLimitExceeded


@contextmanager
def sync_deadline(seconds: float) -> Iterator[None]:
    """Raise TimeLimitExceeded in this block once `seconds` have passed (main thread only;
    elsewhere, and for seconds <= 0, the block runs unbounded)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum, _frame) -> None:
        raise TimeLimitExceeded(
            f"the request took longer than the {seconds:g} s a synchronous request may; "
            "ask for it asynchronously (storeExecuteResponse=true, status=true)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
