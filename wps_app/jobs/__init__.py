"""The job store every protocol binding shares: async jobs, admission, leases, the queue.

No protocol library is imported here; a binding maps these values to its own documents.
"""

from wps_app.jobs.lease import Heartbeat, JobAbandoned, stop_runner
from wps_app.jobs.model import (
    ENDED,
    LEASE_EXPIRED,
    UNFINISHED,
    Admission,
    ClientBusy,
    Job,
    JobStoreError,
    Limits,
    QueueFull,
    SchemaTooNew,
    Status,
    StorageExhausted,
    overrun_message,
)
from wps_app.jobs.store import JobStore, utc_now

__all__ = [
    "ENDED", "LEASE_EXPIRED", "UNFINISHED", "Admission", "ClientBusy", "Heartbeat", "Job",
    "JobAbandoned", "stop_runner",
    "JobStore", "JobStoreError", "Limits", "QueueFull", "SchemaTooNew", "Status",
    "StorageExhausted", "overrun_message", "utc_now",
]
