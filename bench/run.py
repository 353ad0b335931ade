"""`make bench`: run every benchmark in one go and write bench/RESULTS.md.

Sections: (a) end-to-end latency, throughput and CPU against the tutorial's implementation
on three kinds of data, what each change of the performance work is worth (and that it
changed no pixel), (b) one 512x512 Execute stage by stage on each kind of data, (c) the
raster core on in-memory tiles and (d) the filter alone beside the memory bandwidth, (e)
peak memory of the largest request, plus the service's own handling cost against stock
PyWPS and the load run.
"""

from __future__ import annotations

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

from bench import core, e2e, large, load, overhead, stages, variants, workers

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Written by hand about one run (it says which): where the time goes, the floor, what was
# kept; the tables after it are rewritten by every run.
NOTES = Path(__file__).resolve().parent / "NOTES.md"


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


def main() -> int:
    started = time.time()
    load_before = f"{os.getloadavg()[0]:.2f}"
    sections = [
        ("Machine", machine()),
        ("(a) End to end, 512x512, against the tutorial's implementation",
         "Each request at a new point; services alternated round by round (3 rounds of 30 "
         "requests per level and service); 4 gunicorn sync workers each; MapServer under "
         "lighttpd with 4 FastCGI processes. CPU ms per request: user + system time of the "
         "service's processes (or the tutorial's) and of MapServer's, over the requests' "
         "batches.\n\n" + captured(e2e.main, [])),
        ("What each change is worth, and that it changed no pixel",
         "4 in flight, 4 sync workers each, alternated round by round; `before` is the "
         "commit before the work (a git worktree), `now, PNG GetMaps` is the service now "
         "with `[wms] image_format = image/png`.\n\n" + captured(variants.main, [])),
        ("The gunicorn worker count (sync workers)", captured(workers.main, [])),
        ("The service's own handling cost per Execute, against stock PyWPS",
         captured(overhead.main, [])),
        ("(b) One 512x512 Execute, stage by stage, on each kind of data",
         captured(stages.main, [])),
        ("(c, d) Raster core on in-memory tiles; the filter alone", captured(core.main)),
        ("(e) The filter's share of end-to-end time at every size; the largest request's "
         "memory", captured(large.main, [])),
        ("Load: 500 Executes, 8 in flight", captured(load.main, [])),
    ]
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
