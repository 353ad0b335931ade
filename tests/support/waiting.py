"""Waiting for a condition with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str | Callable[[], str],
               interval_s: float = 0.05) -> T:
    """Call `predicate` until it returns a truthy value, and return that value.

    Parameters
    ----------
    predicate
        Called at once, then every `interval_s` seconds; its exceptions propagate.
    timeout_s
        Seconds, from the first call, after which waiting fails.
    what
        What is awaited, for the failure message (or a callable that describes it then,
        e.g. with the last state seen).
    interval_s
        Seconds between two calls.

    Raises
    ------
    AssertionError
        When `predicate` is still falsy after `timeout_s` seconds (it is called one last
        time at the deadline).
    """
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()  # never set: wait() is an interruptible sleep
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            described = what() if callable(what) else what
            raise AssertionError(f"waited {timeout_s:g} s for {described}")
        pause.wait(min(interval_s, left))
