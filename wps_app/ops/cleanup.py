"""Remove expired outputs: job folders and status documents older than the retention
period, staging folders and work folders left by killed jobs.

Command line: python -m wps_app.cleanup [--max-age-hours H] [--every SECONDS]
(default age: [output] retention_hours). `make run` runs it with --every 600.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from wps_app.jobs import JobStore
from wps_app.settings import Settings, load_settings


def _age_s(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0


def remove_expired(settings: Settings, max_age_s: float, now: float | None = None,
                   store: JobStore | None = None) -> list[Path]:
    """Delete outputs older than `max_age_s` and work folders older than the maximum job
    run time; returns what was removed. Never touches anything outside the two folders.
    The job store (`store`, else the configured one) forgets the removed jobs' outputs, so
    the storage cap counts what is really there."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    if settings.output_path.is_dir():
        for entry in settings.output_path.iterdir():
            limit = max_age_s if not entry.name.startswith(".") else 3600.0
            if _age_s(entry, now) > limit:
                removed.append(entry)
    if settings.work_path.is_dir():
        for entry in settings.work_path.iterdir():
            if _age_s(entry, now) > max(settings.max_runtime_s * 2, 3600.0):
                removed.append(entry)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    jobs = [p.name for p in removed if p.parent == settings.output_path
            and not p.name.startswith(".") and not p.suffix]  # job folders, not documents
    if jobs:
        if store is None:
            store = JobStore.from_url(settings.database)
            store.migrate()
        store.forget_outputs(jobs)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-age-hours", type=float, default=None)
    parser.add_argument("--every", type=float, default=0,
                        help="seconds: run again at this interval until stopped")
    args = parser.parse_args(argv)
    settings = load_settings()
    hours = settings.retention_hours if args.max_age_hours is None else args.max_age_hours
    while True:
        removed = remove_expired(settings, hours * 3600)
        print(f"removed {len(removed)} expired entries from {settings.output_path}", flush=True)
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
