"""Large requests on Dask workers: each row window read and filtered on a worker, and the
outputs written by the node that asked (a pipeline.WindowRunner).

For window k (output rows [first, end) of the request), a worker reads halo rows
[first, end) of the request's halo grid (its bbox grown by one pixel, EPSG:4326) through
its own GDAL WMS dataset; the last window also reads its two extra rows. A small task
takes the first two rows of the next window's read, and the filter task runs our own
filter (filters.filter_window) over both together: exactly the rows [first, end + 2) the
local loop reads for that window, filtered by the same code, so the gradient is the same
bit for bit. Windows are the WMS block rows of the halo grid (pipeline.window_rows), so
every block is fetched once in all, with the same GetMaps as the local path: the
one-pixel halo costs two rows sent between workers, not a second block row of GetMaps.
(dask.array.map_overlap would re-read or re-slice the same way; these are its tasks
written out, with the reads aligned to GDAL's blocks and the windows handed back in order.)

Memory: the node that writes keeps at most `in_flight` windows submitted ahead of the
one it is writing, and takes each gradient as soon as it is ready, so a worker holds a
few windows' reads (rows x (width + 2) x 4 bytes, plus GDAL's cached blocks of them) and
gradients (rows x width x 4 bytes) at a time, whatever the request's height: memory per
worker follows the block size (bench/dask_blocks.py measures it).

The tasks are module-level functions of plain values (WmsSource, layer, bbox, sizes, row
numbers, arrays): Dask pickles them by name, so the workers import this module, and each
opens its own GDAL dataset.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import numpy as np

from wps_app.core import filters, wms
from wps_app.core.errors import Busy, WmsError
from wps_app.core.pipeline import Stage, WindowPlan
from wps_app.core.types import BBox, Method

HALO_ROWS = 2  # the rows below a window that its 3x3 filter needs (one above is its own)


@dataclass(frozen=True)
class HaloGrid:
    """Where a worker reads: `layer` of `source` over `halo` (EPSG:4326 degrees, the
    request's bbox grown by one pixel) at `width` x `height` pixels (the request's plus
    two); `cache_mb` bounds GDAL's block cache while it reads (None: GDAL's default)."""

    source: wms.WmsSource
    layer: str
    halo: BBox
    width: int
    height: int
    cache_mb: int | None


def read_halo_rows(grid: HaloGrid, first: int, end: int) -> tuple[np.ndarray, float]:
    """On a worker: halo rows [first, end) as (bands, end - first, width) uint8, and the
    seconds the read took. Raises WmsError subclasses (retried as wms.open_grid does)."""
    started = time.perf_counter()
    try:
        with wms.open_grid(grid.source, grid.layer, grid.halo, grid.width, grid.height,
                           cache_mb=grid.cache_mb) as read_rows:
            bands = read_rows(first, end)
    except WmsError as error:
        # Its causes are rasterio's and GDAL's exceptions, which do not survive pickling:
        # Dask would then send the caller a plain Exception instead of the WmsError.
        error.__cause__ = error.__context__ = None
        raise error from None
    return bands, time.perf_counter() - started


def head_rows(read: tuple[np.ndarray, float], count: int) -> np.ndarray:
    """On a worker: the first `count` rows of a read_halo_rows result, as a copy (the
    read itself stays where it is)."""
    return read[0][:, :count].copy()


def filter_rows(read: tuple[np.ndarray, float], *tails: np.ndarray,
                method: Method) -> tuple[np.ndarray, dict[str, float]]:
    """On a worker: the (rows, width - 2) float32 gradient of a read_halo_rows result
    followed by `tails` (the next rows of the halo grid), and the seconds spent on
    "read", "luminance" and "filter"."""
    bands = np.concatenate((read[0], *tails), axis=1) if tails else read[0]
    timings: dict[str, float] = {}
    gradient = filters.filter_window(bands, method, timings=timings)
    timings["read"] = read[1]
    return gradient, timings


def read_rows_of(plan: WindowPlan) -> list[tuple[int, int]]:
    """The halo rows [first, end) each window's read task reads: its own output rows,
    plus the two halo rows below for the last window (the others get theirs from the
    next window's read)."""
    windows = list(plan.windows)
    *rest, (first, end) = windows
    return [*rest, (first, end + HALO_ROWS)]


def tails_of(reads: list[tuple[int, int]], index: int) -> list[tuple[int, int]]:
    """(read index, row count) of the rows window `index` takes from the reads after its
    own: the first HALO_ROWS halo rows after its read, from as many reads as it takes."""
    if index == len(reads) - 1:
        return []
    tails, needed = [], HALO_ROWS
    for later in range(index + 1, len(reads)):
        first, end = reads[later]
        take = min(needed, end - first)
        tails.append((later, take))
        needed -= take
        if needed == 0:
            break
    return tails


Connect = Callable[[], AbstractContextManager]


class DaskWindows:
    """A pipeline.WindowRunner computing every window on the workers of a Dask cluster.

    Parameters
    ----------
    connect
        Returns a context manager that yields a distributed.Client (see connect()).
    in_flight
        Windows submitted ahead of the one being written; None: one per worker thread,
        plus one, so every thread has a window while the writer takes the next.
    """

    def __init__(self, connect: Connect, in_flight: int | None = None) -> None:
        self._connect = connect
        self.in_flight = in_flight

    @contextmanager
    def __call__(self, plan: WindowPlan, timings: dict[str, float], stage: Stage
                 ) -> Iterator[Iterator[np.ndarray]]:
        with self._connect() as client:
            in_flight = self.in_flight or sum(client.nthreads().values()) + 1
            submitted = _Submitted(client, plan)
            try:
                yield submitted.gradients(max(1, in_flight), timings, stage)
            finally:
                submitted.cancel()


class _Submitted:
    """The tasks of one request on one client; futures are dropped as soon as nothing
    here needs them, so the scheduler frees their results."""

    def __init__(self, client, plan: WindowPlan) -> None:
        request = plan.request
        self.client = client
        self.plan = plan
        self.grid = HaloGrid(plan.source, request.layer, plan.halo, request.width + 2,
                             request.height + 2, plan.cache_mb)
        self.rows = read_rows_of(plan)
        self.token = uuid.uuid4().hex
        self.reads: dict[int, object] = {}
        self.filtered: deque = deque()

    def _read(self, index: int):
        if index not in self.reads:
            first, end = self.rows[index]
            self.reads[index] = self.client.submit(
                read_halo_rows, self.grid, first, end, key=f"edge-read-{self.token}-{index}")
        return self.reads[index]

    def _submit(self, index: int) -> None:
        tails = [self.client.submit(head_rows, self._read(later), count,
                                    key=f"edge-halo-{self.token}-{index}-{later}")
                 for later, count in tails_of(self.rows, index)]
        self.filtered.append(self.client.submit(
            filter_rows, self._read(index), *tails, method=self.plan.request.method,
            key=f"edge-filter-{self.token}-{index}"))
        del self.reads[index]  # later windows' tasks depend on no earlier read

    def gradients(self, in_flight: int, timings: dict[str, float], stage: Stage
                  ) -> Iterator[np.ndarray]:
        submitted = 0
        for index, (first, end) in enumerate(self.plan.windows):
            while submitted < len(self.rows) and submitted < index + in_flight:
                self._submit(submitted)
                submitted += 1
            stage(index, "filtering on the Dask workers", 0, first, end)
            future = self.filtered.popleft()
            try:
                gradient, spent = future.result()
            except BaseException:
                # The client keeps a failed task's exception, whose traceback now holds
                # this future: released explicitly, or the scheduler keeps the task.
                future.release()
                raise
            del future
            for name, seconds in spent.items():  # seconds on the workers, added up
                timings[name] = timings.get(name, 0.0) + seconds
            yield gradient

    def cancel(self) -> None:
        """Cancel whatever is still submitted (the request failed or was abandoned)."""
        futures = [*self.filtered, *self.reads.values()]
        self.filtered.clear()
        self.reads.clear()
        if futures:
            self.client.cancel(futures)


# --- connecting --------------------------------------------------------------------------

_clients: dict[tuple[int, str], object] = {}
_clients_lock = threading.Lock()
CONNECT_TIMEOUT_S = 10


def shared_client(address: str):
    """This process's distributed.Client of the scheduler at `address`, connected on first
    use and kept (a forked process connects its own). Raises Busy when the scheduler does
    not answer within CONNECT_TIMEOUT_S."""
    import os

    from distributed import Client

    key = (os.getpid(), address)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None and client.status == "running":
            return client
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise Busy("the processing cluster is not reachable; try again later") from exc
        _clients[key] = client
        return client


def _in_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


@contextmanager
def connect(address: str) -> Iterator:
    """A client of the cluster: inside a Dask task (an async job run on a worker), the
    worker's own, which secedes from the worker's thread pool while the windows run, so
    the job does not hold a thread its windows need; elsewhere shared_client(address)."""
    if _in_worker():
        from distributed import worker_client

        with worker_client() as client:
            yield client
    else:
        yield shared_client(address)


def dask_windows(address: str, in_flight: int | None = None) -> DaskWindows:
    """The WindowRunner on the Dask scheduler at `address` (tcp://host:port)."""
    return DaskWindows(lambda: connect(address), in_flight)
