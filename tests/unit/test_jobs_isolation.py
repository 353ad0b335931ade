"""The job store is shared by every protocol binding, so it imports none: no PyWPS,
pygeoapi, Flask or werkzeug under wps_app/jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted((REPO_ROOT / "wps_app" / "jobs").glob("*.py"))
FORBIDDEN = ("pywps", "pygeoapi", "flask", "werkzeug")


def test_importing_the_job_store_loads_no_binding():
    modules = [f"wps_app.jobs.{p.stem}" for p in JOBS if p.stem != "__init__"]
    assert {"store", "schema", "lease", "model", "db"} <= {m.rsplit(".", 1)[1] for m in modules}
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
