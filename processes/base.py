"""The PyWPS Process base of our processes: validation before the job, fair admission.

- `check_request(wps_request)` runs before a job is accepted, so bad input is refused with
  an ExceptionReport (not a ProcessFailed status).
- Jobs go through the shared JobStore (wps_app.wps.pywps_compat.JobProcess): sync requests
  are bounded by the gunicorn worker pool only, async jobs are admitted, leased and ended
  in the store.
"""

from __future__ import annotations

from pywps import Process

from wps_app import context
from wps_app.wps.pywps_compat import JobProcess


class EdgeProcess(JobProcess, Process):
    """A PyWPS Process with early validation, its jobs in the JobStore."""

    def check_request(self, wps_request) -> None:
        """Raise a pywps.exceptions exception for bad input; default: accept all."""

    def execute(self, wps_request, uuid):
        self.check_request(wps_request)
        context.set_current_job(str(uuid))
        return super().execute(wps_request, uuid)
