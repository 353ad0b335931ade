"""The PyWPS Process base of our processes: validation before the job, job registration.

- `check_request(wps_request)` runs before a job is accepted, so bad input is refused with
  an ExceptionReport (not a ProcessFailed status).
- Sync requests are bounded by the gunicorn worker pool only (see pywps_compat).
- Async jobs are registered in the shared job store from the moment they are accepted,
  which is what admission counts and what the reaper watches.
"""

from __future__ import annotations

from wps_app.jobs import store as jobs
from wps_app.wps.pywps_compat import CompatProcess
from wps_app.wps.service import JOB_ID_ENVIRON_KEY


class EdgeProcess(CompatProcess):
    """A PyWPS Process with early validation and job registration."""

    def check_request(self, wps_request) -> None:
        """Raise a pywps.exceptions exception for bad input; default: accept all."""

    def execute(self, wps_request, uuid):
        self.check_request(wps_request)
        if wps_request.http_request is not None:  # for the app's request log line
            wps_request.http_request.environ[JOB_ID_ENVIRON_KEY] = str(uuid)
        return super().execute(wps_request, uuid)

    def job_accepted(self, job_id: str) -> None:
        jobs.register_accepted(job_id)

    def job_running(self, job_id: str, workdir: str) -> None:
        jobs.register_running(job_id, workdir)

    def launch_next_process(self):
        # Only the end of an async job frees a slot in the async queue; PyWPS also looked
        # (one database query) after every sync request.
        if getattr(self, "async_", False):
            super().launch_next_process()
