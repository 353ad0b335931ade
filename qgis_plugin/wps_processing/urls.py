"""Server lists, key-value request URLs and algorithm names (plain Python)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def split_urls(text: str | None) -> tuple[str, ...]:
    """The URLs of a comma- (or whitespace-) separated list, in order, without empties or
    repeats."""
    seen: list[str] = []
    for url in re.split(r"[,\s]+", text or ""):
        if url and url not in seen:
            seen.append(url)
    return tuple(seen)


def kvp_url(base: str, params: dict[str, str]) -> str:
    """`base` with the key-value `params` added; a key `base` already has (in any case)
    is replaced, other query items are kept (e.g. `?map=...`)."""
    parts = urlsplit(base)
    lowered = {key.lower() for key in params}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in lowered]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query, safe=",:")))


def algorithm_name(identifier: str, position: int) -> str:
    """The algorithm name of process `identifier` on the server at 1-based `position` in
    the list: the identifier itself for the first server, `identifier_<position>` after."""
    return identifier if position == 1 else f"{identifier}_{position}"
