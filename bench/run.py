"""`make bench`: run every benchmark in one go and write bench/RESULTS.md.

Sections: (a) end-to-end latency, throughput and CPU against the tutorial's implementation
on three kinds of data, what each change of the performance work is worth (and that it
changed no pixel), (b) one 512x512 Execute stage by stage on each kind of data, (c) the
raster core on in-memory tiles and (d) the filter alone beside the memory bandwidth, (e)
peak memory of the largest request, plus the service's own handling cost against stock
PyWPS and the load run; the scale-out sections: throughput through HAProxy with 1 and 2
instances, and (f) a 16384x16384 request on 1 and 2 Dask workers against the local path.

Usage: python -m bench.run [--only SECTION ...]  (--only runs the named sections and
prints them, leaving bench/RESULTS.md as it is; (f) alone takes about 3 minutes)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pywps
import rasterio
import scipy

from bench import (
    cluster,
    core,
    dask_blocks,
    e2e,
    large,
    load,
    overhead,
    shared_costs,
    stages,
    variants,
    workers,
)

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Written by hand about one run (it says which): where the time goes, the floor, what was
# kept; the tables after it are rewritten by every run.
NOTES = Path(__file__).resolve().parent / "NOTES.md"
CLUSTER_NOTE = (
    "`make cluster`'s topology, a fresh cluster per configuration, each instance one "
    "gunicorn sync worker. On one host with 2 cores, MapServer, both instances, nginx, "
    "HAProxy and the load generator share the cores: the ratio shows that HAProxy spreads "
    "the load and costs little, not how far hosts scale.\n\n")


def captured(function, *args) -> str:
    """What `function(*args)` prints (also echoed to stderr as it ends, so a later
    failure loses nothing); a failure is reported in its section, and the run goes on."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            function(*args)
    except Exception as exc:  # one benchmark's failure must not lose the others' figures
        buffer.write(f"\n**this benchmark failed**: {type(exc).__name__}: {exc}\n")
    text = buffer.getvalue().strip()
    print(text, file=sys.stderr, flush=True)
    return text


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    mapserver = subprocess.run(["mapserv", "-v"], capture_output=True, text=True).stdout
    return "\n".join([
        f"- {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM, {platform.platform()}",
        f"- Python {platform.python_version()}, PyWPS {pywps.__version__}, rasterio "
        f"{rasterio.__version__} (GDAL {rasterio.__gdal_version__}), numpy {np.__version__}, "
        f"scipy {scipy.__version__}",
        f"- {mapserver.split(' OUTPUT')[0].strip()} under lighttpd FastCGI, gunicorn sync "
        "workers, everything on loopback",
    ])


# name -> (title, function producing the section's text), in the order they run
SECTIONS = {
    "machine": ("Machine", machine),
    "e2e": ("(a) End to end, 512x512, against the tutorial's implementation",
            lambda: "Each request at a new point; services alternated round by round (3 "
            "rounds of 30 requests per level and service); 4 gunicorn sync workers each; "
            "MapServer under lighttpd with 4 FastCGI processes. CPU ms per request: user + "
            "system time of the service's processes (or the tutorial's) and of MapServer's, "
            "over the requests' batches.\n\n" + captured(e2e.main, [])),
    "variants": ("What each change is worth, and that it changed no pixel",
                 lambda: "4 in flight, 4 sync workers each, alternated round by round; "
                 "`before` is the commit before the work (a git worktree), `now, PNG "
                 "GetMaps` is the service now with `[wms] image_format = image/png`.\n\n"
                 + captured(variants.main, [])),
    "workers": ("The gunicorn worker count (sync workers)",
                lambda: captured(workers.main, [])),
    "overhead": ("The service's own handling cost per Execute, against stock PyWPS",
                 lambda: captured(overhead.main, [])),
    "stages": ("(b) One 512x512 Execute, stage by stage, on each kind of data",
               lambda: captured(stages.main, [])),
    "core": ("(c, d) Raster core on in-memory tiles; the filter alone",
             lambda: captured(core.main)),
    "large": ("(e) The filter's share of end-to-end time at every size; the largest "
              "request's memory", lambda: captured(large.main, [])),
    "load": ("Load: 500 Executes, 8 in flight", lambda: captured(load.main, [])),
    "cluster": ("Scale-out: throughput through HAProxy with 1 and 2 instances",
                lambda: CLUSTER_NOTE + captured(cluster.main, [])),
    "dask": ("(f) A 16384x16384 request on 1 and 2 Dask workers against the local path; "
             "memory per worker", lambda: captured(dask_blocks.main, [])),
    "costs": ("Each job's cost to the shared parts; their capacity here; the first bottleneck",
              lambda: captured(shared_costs.main, [])),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks, write RESULTS.md")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS),
                        help="run these sections only and print them (RESULTS.md untouched)")
    args = parser.parse_args(argv)
    started = time.time()
    load_before = f"{os.getloadavg()[0]:.2f}"
    names = args.only or list(SECTIONS)
    sections = [(SECTIONS[name][0], SECTIONS[name][1]()) for name in names]
    if args.only:
        print("\n\n".join(f"## {title}\n\n{body}" for title, body in sections))
        return 0
    text = ["# Benchmark results", "",
            f"Written by `make bench` (`python -m bench.run`) in {time.time() - started:.0f} s, "
            f"ending {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
            f"before and after: {load_before} / {os.getloadavg()[0]:.2f} (other work shares "
            "the 2 cores: every figure is a ratio within one run, services alternated).", ""]
    if NOTES.exists():
        text += ["## Reading the figures", "", NOTES.read_text().strip(), ""]
    for title, body in sections:
        text += [f"## {title}", "", body, ""]
    RESULTS.write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
