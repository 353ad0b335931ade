"""HTTP clients at other loopback addresses: Linux routes all of 127.0.0.0/8 to lo, so a
client bound to 127.0.0.2 reaches a server on 127.0.0.1 and is seen there as 127.0.0.2,
a distinct client for per-client limits and job owners."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


class _SourceAdapter(HTTPAdapter):
    """Connections from `address` (any free port)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str) -> requests.Session:
    """A requests session whose connections come from loopback `address` (127.x.y.z)."""
    if not address.startswith("127."):
        raise ValueError(f"loopback addresses only: {address}")
    session = requests.Session()
    session.mount("http://", _SourceAdapter(address))
    return session
