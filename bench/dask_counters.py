"""Message counters read inside the Dask scheduler and workers (Client.run_on_scheduler,
Client.run): only the standard library, so the scheduler imports it cheaply.

What distributed 2026.8 exposes and what is used here:
- Scheduler.transition_counter: task state transitions so far;
- Server.counters["op"] (distributed.counter.Counter): request/response (RPC) messages
  handled, by op; its decaying components are shifted but their sum is the total;
- BatchedSend.message_count: messages sent on a batched stream: the scheduler's to each
  worker (Scheduler.stream_comms) and client (Scheduler.client_comms), a worker's to the
  scheduler (Worker.batched_stream);
- the stream messages the scheduler receives (from clients and workers) are not counted by
  distributed: `install` wraps each Scheduler.stream_handlers entry with a counter (looked
  up per message by Server.handle_stream, so streams already open are counted too).
"""

from __future__ import annotations

import collections
import functools
import inspect

OWN_OPS = ("run_function", "broadcast")  # this bench's own reads


def install(dask_scheduler) -> bool:
    """Count the stream messages the scheduler receives, by op (once per scheduler)."""
    if getattr(dask_scheduler, "_bench_stream_in", None) is not None:
        return False
    counts: collections.Counter = collections.Counter()
    dask_scheduler._bench_stream_in = counts
    for op, handler in list(dask_scheduler.stream_handlers.items()):
        if inspect.iscoroutinefunction(handler):
            async def wrapped(*args, _h=handler, _op=op, **kwargs):
                counts[_op] += 1
                return await _h(*args, **kwargs)
        else:
            def wrapped(*args, _h=handler, _op=op, **kwargs):
                counts[_op] += 1
                return _h(*args, **kwargs)
        dask_scheduler.stream_handlers[op] = functools.wraps(handler)(wrapped)
    return True


def scheduler_counts(dask_scheduler) -> dict:
    """The scheduler's counters now (see the module's docstring)."""
    rpc: collections.Counter = collections.Counter()
    for component in dask_scheduler.counters["op"].components:
        for op, value in component.items():
            rpc[op] += value
    return {
        "transitions": dask_scheduler.transition_counter,
        "rpc": {op: round(v) for op, v in rpc.items() if op not in OWN_OPS},
        "stream_in": dict(getattr(dask_scheduler, "_bench_stream_in", {}) or {}),
        "to_workers": sum(c.message_count for c in dask_scheduler.stream_comms.values()),
        "to_clients": sum(c.message_count for c in dask_scheduler.client_comms.values()),
    }


def worker_count(dask_worker) -> int:
    """Messages this worker sent to the scheduler on its batched stream."""
    return dask_worker.batched_stream.message_count


def noop(index: int) -> int:
    """The scheduler capacity's task: nothing to do on the worker."""
    return index
