"""Imports go one way: the app wires the bindings; a binding imports the core, the job
store, settings and the runtime, never the app or another binding; the job store imports no
binding or protocol library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# folder -> wps_app packages it may not import
FORBIDDEN = {
    "wps_app/jobs": ("web", "wps", "ogcapi", "task"),
    "wps_app/wps": ("web", "ogcapi"),
    "processes": ("web", "ogcapi"),
}
_IMPORT = re.compile(r"^\s*(?:from|import)\s+wps_app\.(\w+)", re.M)


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_reaches_up_or_across(folder):
    files = sorted((REPO_ROOT / folder).rglob("*.py"))
    assert files, folder
    for path in files:
        for package in _IMPORT.findall(path.read_text()):
            assert package not in FORBIDDEN[folder], f"{path.relative_to(REPO_ROOT)} imports " \
                                                     f"wps_app.{package}"


def test_the_job_store_imports_no_protocol_library():
    pattern = re.compile(r"^\s*(?:from|import)\s+(pywps|pygeoapi|flask|werkzeug)\b", re.M)
    for path in (REPO_ROOT / "wps_app" / "jobs").rglob("*.py"):
        assert not pattern.search(path.read_text()), path.name
