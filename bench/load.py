"""Load run: 500 Executes, 8 in flight, against gunicorn with the real MapServer behind.

Prints latency, throughput, errors, and per-worker memory and open files before and after.
Usage: python -m bench.load [--count 500] [--in-flight 8] [--workers 4] [--size 256]
"""

from __future__ import annotations

import argparse
import sys

from devtools import loadgen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    with loadgen.services("wps-load-", args.workers) as (_, wps, tmp):
        warm = loadgen.run(wps.url, 32, args.in_flight, args.size, first_index=0)
        before = loadgen.snapshot(wps.process.pid)
        result = loadgen.run(wps.url, args.count, args.in_flight, args.size,
                             first_index=32)
        after = loadgen.snapshot(wps.process.pid)
        print(f"warm-up: {loadgen.summary(warm)}")
        print(f"load:    {loadgen.summary(result)}")
        print(f"distinct output URLs {len(result.urls)}, distinct contents "
              f"{len(result.digests)} (expected {2 * args.count} each)")
        print("worker  rss_before_MiB  rss_after_MiB  peak_after_MiB  fds_before  fds_after")
        for pid in sorted(after.rss_kib):
            print(f"{pid:6d}  {before.rss_kib.get(pid, 0) / 1024:14.1f}  "
                  f"{after.rss_kib[pid] / 1024:13.1f}  {after.peak_kib[pid] / 1024:14.1f}  "
                  f"{before.open_fds.get(pid, 0):10d}  {after.open_fds[pid]:9d}")
        leftovers = loadgen.leftover_temp_entries(tmp / "wps" / "work")
        print(f"leftover work folders: {len(leftovers)}")
        for error in result.errors[:10]:
            print("error:", error)
        ok = not result.errors and len(result.digests) == 2 * args.count and not leftovers
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
