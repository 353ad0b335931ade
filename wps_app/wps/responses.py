"""How PyWPS renders and stores its responses, fixed in three places.

1. One shared jinja2 environment for PyWPS's responses, with our corrected templates first.

PyWPS 4.8.1 builds a new jinja2 Environment (and so recompiles every template) for every
response it creates, several per Execute; here one environment, built once per process,
serves them all. Its loader looks in wps_app/templates before PyWPS's own templates, which
is where the documents that fail the OGC schemas are fixed (see the notes at the top of
each template).

2. Status documents written atomically. PyWPS rewrites `<job>.xml` in place at every
status update, so a client polling statusLocation could read half a document; here each
version is written to a temporary file and renamed over the old one.

3. A sync Execute renders its document once, at the end (and not at all for a raw
output), instead of at every status update.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pywps.response.basic as pywps_basic
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader
from pywps.inout.storage.file import FileStorage
from pywps.response import RelEnvironment
from pywps.response.execute import ExecuteResponse
from pywps.response.status import WPS_STATUS
from pywps.translations import get_translation

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment: RelEnvironment | None = None
_original_update_status_doc = ExecuteResponse._update_status_doc


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


def _shared_environment_factory(**_kwargs) -> RelEnvironment:
    return shared_environment()


def _no_loader(*_args, **_kwargs) -> None:
    return None


def _atomic_write(self: FileStorage, data, destination, data_format=None) -> str:
    """FileStorage.write, but readers see the old or the new document, never a mix."""
    os.makedirs(self.target, exist_ok=True)
    final = os.path.join(self.target, destination)
    fd, tmp = tempfile.mkstemp(prefix=".status-", dir=os.path.dirname(final))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        os.unlink(tmp)
        raise
    return self.url(destination)


def _update_status_doc_when_needed(self) -> None:
    """Render the status document only when someone can read it: async jobs store it at
    every change, a sync request only returns the final one (PyWPS rendered it at every
    progress update)."""
    if self.store_status_file:
        _original_update_status_doc(self)
    elif self.status in (WPS_STATUS.SUCCEEDED, WPS_STATUS.FAILED) and not self.wps_request.raw:
        # a raw output is sent as it is; PyWPS rendered (and base64-encoded) it anyway
        _original_update_status_doc(self)


def install() -> None:
    """Make every PyWPS response use the shared environment and atomic status writes
    (idempotent)."""
    pywps_basic.RelEnvironment = _shared_environment_factory
    pywps_basic.PackageLoader = _no_loader
    FileStorage.write = _atomic_write
    ExecuteResponse._update_status_doc = _update_status_doc_when_needed
