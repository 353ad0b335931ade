"""The PyWPS Process base of our processes: validation before the job, jobs in the store.

- `check_request(wps_request)` runs before a job is accepted, so bad input is refused with
  an ExceptionReport (not a ProcessFailed status).
- Jobs go through the shared JobStore (wps_app.wps.pywps_compat.CompatProcess): sync
  requests are bounded by the gunicorn worker pool only; async jobs are admitted, leased
  and ended in the store.
"""

from __future__ import annotations

from wps_app.wps.pywps_compat import CompatProcess
from wps_app.wps.service import JOB_ID_ENVIRON_KEY


class EdgeProcess(CompatProcess):
    """A PyWPS Process with early validation, its jobs in the JobStore."""

    def check_request(self, wps_request) -> None:
        """Raise a pywps.exceptions exception for bad input; default: accept all."""

    def execute(self, wps_request, uuid):
        self.check_request(wps_request)
        if wps_request.http_request is not None:  # for the app's request log line
            wps_request.http_request.environ[JOB_ID_ENVIRON_KEY] = str(uuid)
        return super().execute(wps_request, uuid)
