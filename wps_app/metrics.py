"""Prometheus metrics of one instance (`/metrics`, text format, via prometheus_client).

Counters are counted where things happen, in whichever process that is: requests by the
app (wps_app.web.app, one count per answered request), WMS read failures by the task (in
a sync worker or an async job's own process) and by the map page's base-map proxy. Under
gunicorn, every worker and job process is a process of its own: prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, a per-instance folder that gunicorn.conf.py
prepares) keeps each process's counts in a file there, and a scrape sums them all, those of
processes that ended included. Without that variable (in-process tests) counts stay in
this process.

Gauges are read from the job store at scrape time (wps_app.jobs.store.JobStore): async jobs
running and queued, output storage used (published plus reserved) and its cap. The store
is shared by every instance, so these are the same on every instance (aggregate them with
max, not sum).

Labels are bounded: operations come from a fixed list (wps_app.web.operations), codes are
HTTP statuses and the WPS exceptionCodes / OGC API problem types the service answers with,
WMS sources are configured names (never a URL).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from wps_app.core.errors import (
    WmsBadResponse,
    WmsError,
    WmsServiceException,
    WmsTimeout,
    WmsUnavailable,
)
from wps_app.jobs import JobStore, Limits

LOGGER = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # no *_created samples: they mean nothing summed over processes

REQUESTS = Counter(
    "wps_requests", "Requests answered, by operation, HTTP status and exception code "
    "(WPS exceptionCode or OGC API problem type; empty when none)",
    ["operation", "code", "exception_code"])
WMS_ERRORS = Counter(
    "wps_wms_errors", "WMS requests that failed, by configured source name and kind",
    ["source", "kind"])

_KINDS: tuple[tuple[type[WmsError], str], ...] = (
    (WmsTimeout, "timeout"), (WmsUnavailable, "unavailable"),
    (WmsServiceException, "service_exception"), (WmsBadResponse, "bad_response"))


def wms_error_kind(error: WmsError) -> str:
    """A WMS error's kind label: timeout, unavailable, service_exception, bad_response or
    error."""
    for cls, kind in _KINDS:
        if isinstance(error, cls):
            return kind
    return "error"


def count_request(operation: str, code: int | str, exception_code: str = "") -> None:
    """One answered request (never raises: metrics must not break a request)."""
    try:
        REQUESTS.labels(operation, str(code), exception_code).inc()
    except Exception:  # e.g. the metrics folder removed under a detached job
        LOGGER.debug("request not counted", exc_info=True)


def count_wms_error(source: str, kind: str) -> None:
    """One failed WMS request of configured source `source` (never raises)."""
    try:
        WMS_ERRORS.labels(source, kind).inc()
    except Exception:
        LOGGER.debug("WMS error not counted", exc_info=True)


class _Counters:
    """This process's own counters (no multiprocess folder)."""

    def collect(self):
        yield from REQUESTS.collect()
        yield from WMS_ERRORS.collect()


class StoreGauges:
    """Gauges read from the job store at scrape time (and whether it answered)."""

    def __init__(self, store: JobStore, limits: Limits, storage_cap_bytes: int,
                 draining: Callable[[], bool]) -> None:
        self.store = store
        self.limits = limits
        self.storage_cap_bytes = storage_cap_bytes
        self.draining = draining

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily("wps_draining", "1 while this instance drains (SIGTERM)",
                                value=1 if self.draining() else 0)
        yield GaugeMetricFamily("wps_storage_limit_bytes",
                                "[limits] max_output_mb in bytes", value=self.storage_cap_bytes)
        try:
            admission = self.store.admit(self.limits)
            used = self.store.storage_used()
        except Exception:  # the scrape still answers, with the counters
            LOGGER.exception("job store unreadable for /metrics")
            yield GaugeMetricFamily("wps_job_store_up", "1 when the job store answered",
                                    value=0)
            return
        yield GaugeMetricFamily("wps_job_store_up", "1 when the job store answered", value=1)
        yield GaugeMetricFamily("wps_jobs_running", "Async jobs admitted and not ended "
                                "(job store, every instance)", value=admission.running)
        yield GaugeMetricFamily("wps_jobs_queued", "Async jobs waiting in the queue "
                                "(job store, every instance)", value=admission.queued)
        yield GaugeMetricFamily("wps_storage_used_bytes", "Published outputs plus what "
                                "unfinished jobs reserved (JobStore.storage_used)", value=used)


def render(gauges: StoreGauges) -> bytes:
    """The exposition text: every process's counters summed, and the store's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_Counters())
    registry.register(gauges)
    return generate_latest(registry)
