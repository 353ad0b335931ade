"""Optional API keys: `[auth] keys_file` names a file of `KEY NAME` lines.

Without the file every request is served as before (and anyone may list and read jobs).
With it, every request but /health and the public capabilities (WPS GetCapabilities) must
carry a key, as `Authorization: Bearer KEY` or `X-API-Key: KEY`; async jobs then belong to
the key's name. Keys are compared in constant time through their SHA-256 digests and never
logged: logs and job records name the key's NAME.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from wps_app.runtime import CLIENT_ENVIRON_KEY

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
__all__ = ["CLIENT_ENVIRON_KEY", "KeyRing", "is_public", "presented_key"]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, by digest; `names` in file order."""

    digests: tuple[tuple[bytes, str], ...]

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read `KEY NAME` lines ('#' starts a comment). Raises ValueError on a bad line,
        naming its number only (never the key)."""
        entries: list[tuple[bytes, str]] = []
        names: set[str] = set()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 2 or len(parts[0]) < 16 or not _NAME.match(parts[1]):
                raise ValueError(f"{path.name} line {number}: expected 'KEY NAME', the key "
                                 "at least 16 characters, the name [A-Za-z0-9_.@-]")
            if parts[1] in names:
                raise ValueError(f"{path.name} line {number}: name {parts[1]} is used twice")
            names.add(parts[1])
            entries.append((_digest(parts[0]), parts[1]))
        if not entries:
            raise ValueError(f"{path.name} holds no key")
        return cls(tuple(entries))

    def name_of(self, key: str | None) -> str | None:
        """The name of `key`, or None. Every digest is compared, in constant time."""
        if not key:
            return None
        digest = _digest(key)
        found = None
        for known, name in self.digests:
            if hmac.compare_digest(known, digest):
                found = name
        return found


def presented_key(environ: dict) -> str | None:
    """The key a request carries (Authorization: Bearer, or X-API-Key), if any."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return environ.get("HTTP_X_API_KEY", "").strip() or None


def is_public(environ: dict) -> bool:
    """/health and WPS GetCapabilities (by GET) need no key."""
    path = environ.get("PATH_INFO", "") or "/"
    if path == "/health" or path.startswith("/health/"):
        return True
    if path in ("/", "/wps", "/wps/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        args = {k.lower(): v for k, v in parse_qsl(environ.get("QUERY_STRING", ""))}
        return args.get("request", "").lower() == "getcapabilities"
    return False
