"""The raster core (every module under wps_app/core) imports no web framework or protocol
library: PyWPS, pygeoapi, Flask and werkzeug stay in the bindings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE = sorted((REPO_ROOT / "wps_app" / "core").glob("*.py"))
FORBIDDEN = ("pywps", "pygeoapi", "flask", "werkzeug")


def test_the_core_folder_holds_the_modules():
    """The glob sees the core (a moved folder would make the checks below vacuous)."""
    assert {p.stem for p in CORE} >= {"types", "errors", "wms", "filters", "writers", "pipeline"}


def test_importing_the_core_loads_no_framework():
    """Importing every core module pulls none of the forbidden packages in, even indirectly."""
    modules = [f"wps_app.core.{p.stem}" for p in CORE if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_no_core_source_names_a_framework():
    """No core source file imports a forbidden package."""
    pattern = re.compile(rf"^\s*(import|from)\s+({'|'.join(FORBIDDEN)})\b", re.M | re.I)
    for path in CORE:
        text = path.read_text()
        assert not pattern.search(text), path.name
