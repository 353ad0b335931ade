"""The README's examples run as pasted (curl, OWSLib, birdy, GDAL) against a real server:
only the address is the test server's instead of make run's 127.0.0.1:5000."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import rasterio

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()
DEFAULT = "http://127.0.0.1:5000"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def _shell_examples() -> list[str]:
    """The curl and gdal commands of the "Using it" section's sh blocks."""
    using = README[README.index("## Using it"):README.index("### QGIS")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", using, re.S):
        # the block's own WPS= line: the test sets WPS to its server instead
        block = re.sub(r"^WPS=\S+\n", "", block.strip())
        for command in re.split(r"\n(?=curl |gdal)", block):
            if command.startswith(("curl ", "gdal")) and "<job-id>" not in command:
                commands.append(command)
    return commands


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("command", _shell_examples(), ids=lambda c: c[:40])
def test_shell_examples_run_as_pasted(wps, workdir, command):
    script = f"set -e\nWPS={wps.url}\n" + command.replace(DEFAULT, wps.base)
    result = subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-800:]
    assert "ExceptionReport" not in result.stdout, result.stdout[:800]


def test_the_curl_outputs_are_what_the_readme_says(wps, workdir):
    for command in _shell_examples():
        if command.startswith("curl -o"):
            subprocess.run(["bash", "-c", f"WPS={wps.url}\n{command}"], cwd=workdir,
                           check=True, timeout=120)
    assert (workdir / "tile.png").read_bytes().startswith(b"\x89PNG")
    with rasterio.open(workdir / "tile.tif") as tile:
        assert tile.crs.to_epsg() == 4326 and tile.dtypes == ("float32",)
        assert tile.tags()["METHOD"] == "sobel_magnitude"


def test_the_ogcapi_walk_through_runs_as_pasted(wps, workdir):
    """The OGC API section's bash blocks, in order, as one script: list, describe, a sync
    PNG, a results document, an async job polled to its end, its results, the job list,
    then DELETE and the 404 that follows."""
    using = README[README.index("### OGC API"):README.index("#### Which binding")]
    blocks = re.findall(r"```bash\n(.*?)```", using, re.S)
    assert len(blocks) >= 6
    script = "set -euo pipefail\nBASE=" + wps.base + "\n" + "\n".join(blocks)
    result = subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-800:]
    assert (workdir / "edges.png").read_bytes().startswith(b"\x89PNG")
    assert '"status": "successful"' in result.stdout
    assert result.stdout.rstrip().endswith("404")  # the dismissed job is gone


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run_as_pasted(wps, tmp_path, index):
    code = _blocks("python")[index].replace(DEFAULT, wps.base)
    result = subprocess.run([os.sys.executable, "-c", code], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-1500:]
