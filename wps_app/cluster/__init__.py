"""Async jobs on a Dask cluster ([processing] mode = dask).

`submit` is the instances' side: an accepted job is handed to the Dask scheduler with
`distributed.fire_and_forget`, so it runs whether or not the instance that accepted it
lives on. `worker_run` is the workers' side: it runs the job with the same bindings'
runners as a detached local process would (lease, progress, status documents, outputs on
the shared folder), as a new attempt in the job store.

The scheduler must be configured with `distributed.scheduler.allowed-failures = 1`
(`make cluster` sets it): a job whose worker died is run once more, then left to its lease
(the reaper fails it with a message). `blocks` runs the windows of one large request
on the workers ([processing] dask_above_px).
"""
