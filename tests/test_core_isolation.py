"""The raster core knows nothing of PyWPS; processes stay the only place that does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CORE = ["errors", "types", "settings", "raster", "wms", "outputs", "tile", "context"]


def test_core_modules_do_not_import_pywps():
    code = (
        "import sys\n"
        + "".join(f"import wps_app.{name}\n" for name in CORE)
        + "assert not [m for m in sys.modules if m.split('.')[0] == 'pywps'], 'pywps imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_no_core_source_imports_pywps():
    pattern = re.compile(r"^\s*(import|from)\s+pywps\b", re.M)
    for name in CORE:
        text = (REPO_ROOT / "wps_app" / f"{name}.py").read_text()
        assert not pattern.search(text), name
