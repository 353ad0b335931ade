"""The raster core (every module under wps_app/core) imports no web framework or protocol
library: PyWPS, pygeoapi, Flask and werkzeug stay in the bindings; nor anything of wps_app
outside wps_app/core (settings, bindings, jobs): they hand the core plain values."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE = sorted((REPO_ROOT / "wps_app" / "core").glob("*.py"))
FORBIDDEN = ("pywps", "pygeoapi", "flask", "werkzeug")


def test_the_core_folder_holds_the_modules():
    """The glob sees the core (a moved folder would make the checks below vacuous)."""
    assert {p.stem for p in CORE} >= {"types", "errors", "wms", "filters", "writers", "pipeline"}


def test_importing_the_core_loads_no_framework():
    """Importing every core module pulls none of the forbidden packages in, nor any wps_app
    module outside the core, even indirectly."""
    modules = [f"wps_app.core.{p.stem}" for p in CORE if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        + "assert not bad, bad\n"
        + "app = [m for m in sys.modules if m.startswith('wps_app.')\n"
        + "       and not m.startswith('wps_app.core')]\n"
        + "assert not app, app\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_no_core_source_names_a_framework():
    """No core source file imports a forbidden package."""
    pattern = re.compile(rf"^\s*(import|from)\s+({'|'.join(FORBIDDEN)})\b", re.M | re.I)
    for path in CORE:
        text = path.read_text()
        assert not pattern.search(text), path.name


# `from wps_app.X ...`, `from wps_app import X`, `import wps_app.X` with X other than core,
# and relative imports reaching above wps_app/core.
OUTSIDE_CORE = re.compile(
    r"^\s*(from\s+wps_app\.(?!core\b)\w+"
    r"|from\s+wps_app\s+import\s+(?!core\s*(#.*)?$)"
    r"|import\s+wps_app\.(?!core\b)\w+"
    r"|import\s+wps_app\s*$"
    r"|from\s+\.\.)",
    re.M,
)


@pytest.mark.parametrize(
    ("line", "outside"),
    [("from wps_app.settings import Settings", True),
     ("    from wps_app.wps import service", True),
     ("from wps_app import settings", True),
     ("from wps_app import context, core", True),
     ("import wps_app.jobs.store", True),
     ("import wps_app", True),
     ("from .. import settings", True),
     ("from wps_app.core import wms", False),
     ("from wps_app.core.types import BBox", False),
     ("import wps_app.core.filters", False),
     ("from wps_app import core", False),
     ("from wps_app import core  # the package", False),
     ("from wps_app import core, settings", True),
     ("from wps_app.corelike import x", True),
     ("from . import wms", False)],
)
def test_the_outside_core_pattern(line, outside):
    """The pattern below catches every spelling of an import from outside the core."""
    assert bool(OUTSIDE_CORE.search(line)) is outside


def test_the_core_imports_nothing_of_wps_app_outside_it():
    """No core source imports settings, a binding, the jobs or any other wps_app module."""
    for path in CORE:
        found = OUTSIDE_CORE.search(path.read_text())
        assert found is None, f"{path.name}: {found.group(0).strip()}"
