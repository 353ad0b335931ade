"""The service's WSGI application, with every response it sends recorded to a file.

tests/support/keyed.py starts every integration test server with this application: at the
end of the session, the recorder fixture looks for the configured WMS key in everything
the service ever answered (status line, headers, body), and in every file it wrote.
$EDGE_TEST_RECORD_DIR names the folder; each worker process appends to its own file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from wps_app.app import application as service

RECORD_DIR = Path(os.environ["EDGE_TEST_RECORD_DIR"])


def _append(chunks: list[bytes]) -> None:
    with (RECORD_DIR / f"responses-{os.getpid()}.bin").open("ab") as record:
        record.write(b"".join(chunks) + b"\n\x00\n")


def application(environ: dict, start_response) -> Iterable[bytes]:
    """`service`, recording the response it gives (the body as the client gets it: a
    file served by wsgi.file_wrapper is read through here too)."""
    recorded: list[bytes] = []

    def recording_start(status: str, headers: list[tuple[str, str]], exc_info=None):
        recorded.append(f"{status}\n{headers!r}\n".encode())
        return start_response(status, headers, exc_info)

    environ = dict(environ)
    environ.pop("wsgi.file_wrapper", None)  # make file responses plain iterables
    body = service(environ, recording_start)

    def relayed() -> Iterator[bytes]:
        try:
            for chunk in body:
                recorded.append(bytes(chunk))
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            _append(recorded)

    return relayed()
