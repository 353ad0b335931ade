"""The template environment every PyWPS response renders with.

One jinja2 environment, built once per process (PyWPS 4.8.1 built one per response,
recompiling every template several times per Execute). Its loader looks in
wps_app/wps/templates before PyWPS's own templates: that is where the documents that fail
the OGC schemas are fixed (see the notes at the top of each template). pywps_compat makes
PyWPS use it.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader
from pywps.response import RelEnvironment
from pywps.translations import get_translation

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment: RelEnvironment | None = None


def shared_environment() -> RelEnvironment:
    """The process-wide template environment (ours, then PyWPS's templates)."""
    global _environment
    if _environment is None:
        _environment = RelEnvironment(
            loader=ChoiceLoader(
                [FileSystemLoader(str(TEMPLATES)), PackageLoader("pywps", "templates")]
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=True,
        )
        _environment.globals.update(get_translation=get_translation)
    return _environment
