"""The raster pipeline in-process, this tree against a baseline checkout, alternating.

No WPS: each tree runs `wps_app.core.pipeline.render` in a worker process of its own
(two trees cannot share one interpreter: both are the package `wps_app`), reading the
whole sample raster through GDAL's WMS driver from one embedded MapServer, at each size.
Runs alternate between the trees (ABBA), so drifts in machine load hit both; the table
gives the median seconds of each and the ratio new/old. After the timed runs each worker
renders once more and digests its outputs: the decoded GeoTIFF and PNG pixels and their
georeferencing must be equal in both trees.

Usage: python -m bench.pipeline --baseline ../h-pipeline-base [--sizes 512 16384]
       [--rounds 15] [--large-rounds 3] [--methods sobel_x]
(the baseline is a checkout of an earlier commit, e.g. `git worktree add ../base HEAD~1`,
with the same .venv and data/generated). Without --baseline only this tree is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LARGE_PX = 4096  # sizes from here on get --large-rounds


def _digest_outputs(geotiff: Path, png: Path) -> dict:
    """Digests of the decoded pixels (row blocks, so a 16384^2 output stays bounded) and of
    the georeferencing; a PNG alpha band that is all 255 counts as no alpha."""
    import rasterio
    from rasterio.windows import Window

    digest: dict = {}
    for name, path in (("geotiff", geotiff), ("png", png)):
        with rasterio.open(path) as ds:
            pixels = hashlib.sha256()
            alpha = hashlib.sha256()
            opaque = True
            for first in range(0, ds.height, 1024):
                window = Window(0, first, ds.width, min(1024, ds.height - first))
                pixels.update(ds.read(1, window=window).tobytes())
                if ds.count == 2:
                    band = ds.read(2, window=window)
                    opaque = opaque and bool((band == 255).all())
                    alpha.update(band.tobytes())
            digest[name] = pixels.hexdigest()[:16]
            digest[f"{name}_alpha"] = None if opaque else alpha.hexdigest()[:16]
            digest[f"{name}_georef"] = [list(ds.transform)[:6], ds.crs.to_epsg(),
                                        ds.shape, str(ds.dtypes[0])]
            if name == "geotiff":
                digest["tags"] = {k: v for k, v in ds.tags().items()
                                  if k not in ("AREA_OR_POINT",)}
    return digest


def worker(root: str) -> None:
    """Serve render commands (JSON lines on stdin) with the `wps_app` of `root`."""
    sys.path.insert(0, root)
    from wps_app.core import pipeline
    from wps_app.core.types import BBox
    from wps_app.settings import Settings, WmsServer

    for line in sys.stdin:
        command = json.loads(line)
        settings = Settings(wms_servers=(WmsServer(url=command["url"]),))
        request = pipeline.TileRequest("sample_city", BBox(*command["bbox"]), command["size"],
                                       command["size"], command["method"], "signed")
        workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        try:
            started = time.perf_counter()
            if hasattr(settings, "render_options"):  # the core of this commit and later
                result = pipeline.render(request, settings.wms_source(request.source),
                                         settings.render_options(), workdir)
            else:  # the core that read Settings itself
                result = pipeline.render(request, settings, workdir)
            seconds = time.perf_counter() - started
            digest = _digest_outputs(result.geotiff, result.png) if command["digest"] else {}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(json.dumps({"seconds": seconds, "timings": result.timings_s, "digest": digest}),
              flush=True)


class Tree:
    """A worker process running the pipeline of one checkout."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)

    def render(self, url: str, bbox, size: int, method: str, digest: bool = False) -> dict:
        command = {"url": url, "bbox": bbox, "size": size, "method": method, "digest": digest}
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.name} worker stopped (exit {self.process.wait()})")
        return json.loads(answer)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def whole_sample_bbox() -> list[float]:
    """(west, south, east, north) of the sample raster: every size reads real data."""
    from data import make_sample

    south = make_sample.NORTH - make_sample.SIZE * make_sample.PIXEL_DEG
    east = make_sample.WEST + make_sample.SIZE * make_sample.PIXEL_DEG
    return [make_sample.WEST, south, east, make_sample.NORTH]


def compare(trees: list[Tree], url: str, size: int, method: str, rounds: int) -> list[str]:
    """Time `rounds` renders per tree, ABBA; the table rows and the equality check."""
    bbox = whole_sample_bbox()
    for tree in trees:  # warm-up: imports, GDAL drivers, MapServer's file cache
        tree.render(url, bbox, min(size, 512), method)
    seconds: dict[str, list[float]] = {tree.name: [] for tree in trees}
    stages: dict[str, list[dict]] = {tree.name: [] for tree in trees}
    for index in range(rounds):
        for tree in trees if index % 2 == 0 else trees[::-1]:
            answer = tree.render(url, bbox, size, method)
            seconds[tree.name].append(answer["seconds"])
            stages[tree.name].append(answer["timings"])
    rows = []
    for tree in trees:
        median = statistics.median(seconds[tree.name])
        keys = stages[tree.name][0].keys()
        parts = ", ".join(f"{k} {statistics.median(s[k] for s in stages[tree.name]):.3f}"
                          for k in keys)
        rows.append(f"| {size}x{size} | {method} | {tree.name} | {median:.3f} "
                    f"| {min(seconds[tree.name]):.3f} | {parts} |")
    if len(trees) == 2:
        old, new = (statistics.median(seconds[t.name]) for t in trees)
        digests = [tree.render(url, bbox, size, method, digest=True)["digest"] for tree in trees]
        same = digests[0] == digests[1]
        rows.append(f"| {size}x{size} | {method} | **new/old** | **{new / old:.3f}** "
                    f"| | outputs equal: {same} |")
        if not same:
            rows.append(f"<!-- old {digests[0]} -->\n<!-- new {digests[1]} -->")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="checkout of the commit to compare with")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 16384])
    parser.add_argument("--rounds", type=int, default=15, help="per tree, below 4096 px")
    parser.add_argument("--large-rounds", type=int, default=3, help="per tree, from 4096 px")
    parser.add_argument("--methods", nargs="+", default=["sobel_x"])
    args = parser.parse_args(argv)

    from devtools import embedded_wms

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-wms-") as rundir:
        server = embedded_wms.start(rundir=Path(rundir))
        trees = ([Tree("old", args.baseline.resolve())] if args.baseline else []) + [
            Tree("new", REPO)]
        try:
            print("| size | method | tree | median s | min s | stages (median s) |")
            print("|---|---|---|---|---|---|")
            all_equal = True
            for size in args.sizes:
                rounds = args.large_rounds if size >= LARGE_PX else args.rounds
                for method in args.methods:
                    rows = compare(trees, server.url, size, method, rounds)
                    all_equal = all_equal and not any("outputs equal: False" in r for r in rows)
                    print("\n".join(rows), flush=True)
        finally:
            for tree in trees:
                tree.close()
            server.stop()
    return 0 if all_equal else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        sys.exit(main())
