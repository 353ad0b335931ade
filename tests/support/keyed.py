"""Every integration test server reads its WMS with a key, and records what it answers.

A commercial WMS takes a key in the URL (`?apikey=...`) or in a header (`X-API-Key`). Every
server the integration layer starts goes through start_keyed_wps: its WMS sources get the
session's KEY in their URL and as a header (so every read goes through core.relay), and it
runs tests/support/recording_app.py. The recorder fixture (tests/integration/conftest.py)
then finds KEY in no response, status document, output, log or job database of the
session; tests/unit/test_keyed_servers.py checks that no test starts a server otherwise.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devtools.servers import Overrides, WpsServer, start_wps

SUPPORT = Path(__file__).resolve().parent
# random per session: no file can hold it by accident
KEY = "k3y" + secrets.token_hex(12)
HEADER = "X-API-Key"
# where the servers record their responses: set by the recorder fixture before any starts
RECORD_DIR: Path | None = None
# the folders of every server started, for the recorder's scan
STARTED: list[WpsServer] = []
# folders of servers started otherwise (make cluster), each with the files it may skip
ALSO_SCANNED: list[tuple[Path, set[Path]]] = []


def keyed_environment() -> dict[str, str]:
    """The default source's key as environment overrides, for servers started as `make`
    starts them (WPS_WMS_URL is keyed with keyed_url)."""
    return {"WPS_WMS_HEADERS": f"{HEADER}: {KEY}"}


def keyed_url(url: str) -> str:
    """`url` with the session's key as a query parameter."""
    parts = urlsplit(url)
    query = f"{parts.query}&apikey={KEY}" if parts.query else f"apikey={KEY}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def keyed_overrides(overrides: Overrides | None) -> Overrides:
    """`overrides` with the key added to every [wms] and [wms:NAME] section's URL (when it
    sets one) and as a header."""
    keyed: Overrides = {section: dict(values) for section, values in (overrides or {}).items()}
    keyed.setdefault("wms", {})
    for section, values in keyed.items():
        if section == "wms" or section.startswith("wms:"):
            if "url" in values:
                values["url"] = keyed_url(str(values["url"]))
            values.setdefault("headers", f"{HEADER}: {KEY}")
    return keyed


def start_keyed_wps(directory: Path, wms_url: str, workers: int = 2,
                    overrides: Overrides | None = None, env: dict[str, str] | None = None
                    ) -> WpsServer:
    """devtools.servers.start_wps, keyed and recorded (see the module docstring)."""
    if RECORD_DIR is None:
        raise RuntimeError("the recorder fixture sets keyed.RECORD_DIR first")
    environment = {"EDGE_TEST_RECORD_DIR": str(RECORD_DIR),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT),
                                                               os.environ.get("PYTHONPATH")])),
                   **(env or {})}
    server = start_wps(directory, keyed_url(wms_url), workers, keyed_overrides(overrides),
                       environment, app="recording_app:application")
    STARTED.append(server)
    return server


def files_holding_key(roots: list[Path], skip: set[Path]) -> list[Path]:
    """Every file under `roots` (but `skip`) whose bytes contain the key."""
    found = []
    needle = KEY.encode()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path not in skip and needle in path.read_bytes():
                found.append(path)
    return found
