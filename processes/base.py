"""The PyWPS Process base of our processes: validation before the job, fair admission.

- `check_request(wps_request)` runs before a job is accepted, so bad input is refused with
  an ExceptionReport (not a ProcessFailed status).
- Sync requests are bounded by the gunicorn worker pool only; PyWPS would refuse them when
  [server] parallelprocesses unfinished requests of any kind exist.
- Async jobs are registered in the shared job store from the moment they are accepted
  (wps_app.jobs), which is what admission counts and what the reaper watches.
"""

from __future__ import annotations

from pywps import Process
from pywps.response.status import WPS_STATUS

from wps_app import context
from wps_app.jobs import owners as jobs


class EdgeProcess(Process):
    """A PyWPS Process with early validation and job registration."""

    def check_request(self, wps_request) -> None:
        """Raise a pywps.exceptions exception for bad input; default: accept all."""

    def execute(self, wps_request, uuid):
        self.check_request(wps_request)
        context.set_current_job(str(uuid))
        return super().execute(wps_request, uuid)

    def _execute_process(self, async_, wps_request, wps_response):
        if async_:
            return super()._execute_process(async_, wps_request, wps_response)
        wps_response._update_status(WPS_STATUS.ACCEPTED, "Request accepted", 0)
        return self._run_process(wps_request, wps_response)

    def _run_async(self, wps_request, wps_response):
        jobs.register_accepted(str(self.uuid))
        return super()._run_async(wps_request, wps_response)

    def launch_next_process(self):
        # Only the end of an async job frees a slot in the async queue; PyWPS also looked
        # (one database query) after every sync request.
        if getattr(self, "async_", False):
            super().launch_next_process()

    def _run_process(self, wps_request, wps_response):
        if getattr(self, "async_", False):  # sync requests do not pay for a job record
            jobs.register_running(str(self.uuid), self.workdir)
        return super()._run_process(wps_request, wps_response)
