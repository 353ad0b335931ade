"""Build the plugin zip QGIS installs (Plugins → Manage and Install Plugins → Install from
ZIP): the folder wps_processing/ with its sources, metadata and icon; no caches.

Usage: python3 qgis_plugin/build.py [dist/wps_processing.zip]
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "wps_processing"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "dist" / "wps_processing.zip"
SUFFIXES = {".py", ".txt", ".svg", ".png", ".md"}
FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # same sources, same bytes


def members() -> list[Path]:
    """The files that go into the zip, sorted."""
    return sorted(p for p in PLUGIN.rglob("*")
                  if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts)


def build(out: Path = DEFAULT_OUT) -> Path:
    """Write the zip to `out` (its folder is created) and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in members():
            info = zipfile.ZipInfo(f"{PLUGIN.name}/{path.relative_to(PLUGIN).as_posix()}",
                                   FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    partial.replace(out)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
