"""The job store every protocol binding shares (async jobs, admission, liveness)."""
