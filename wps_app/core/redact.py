"""Upstream text made safe to show a client: no URL credentials, query strings or paths.

A WMS URL may carry a key (`?apikey=...`, `user:pass@host`); GDAL, requests and OWSLib
name the URL they fetched in their messages, and a WMS may echo the request in its
ServiceException. Any such text passes through `redact` before it reaches an error a
client sees, a status document or an output's tags.
"""

from __future__ import annotations

import re

# scheme://[userinfo@]host[:port][/path][?query][#fragment] -> scheme://host[:port]/...
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/@'\"<>]*@)?([^\s/?#'\"<>]+)"
                  r"[^\s'\"<>]*")
# a query-like run of key=value pairs outside a URL (a WMS echoing its request)
_QUERY = re.compile(r"(?i)\b[\w.-]+=[^\s&'\"<>]*(?:&[\w.-]+=[^\s&'\"<>]*)+")
_SECRET_PAIR = re.compile(r"(?i)\b(api[_-]?key|key|token|access[_-]?token|password|passwd|"
                          r"secret|signature|sig|auth)=([^\s&'\"<>]+)")


def redact(text: str, secrets: tuple[str, ...] = (), keep_hosts: bool = False) -> str:
    """`text` for a client: every URL replaced by '[url]', query-like runs by '...',
    key=value pairs that name a secret masked, each of `secrets` (configured values such
    as header keys) by '***'. With `keep_hosts` (operators' logs) a URL keeps its scheme
    and host: scheme://host[:port]/..."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL.sub(
        (lambda m: f"{m.group(1)}{m.group(2)}/...") if keep_hosts else (lambda m: "[url]"),
        text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=***", text)
    return _QUERY.sub("...", text)
