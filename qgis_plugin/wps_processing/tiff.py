"""The GDAL metadata of a TIFF file (tag 42112), read without GDAL's Python bindings
(QGIS's Python has none on some platforms, Debian's among them)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import BinaryIO

GDAL_METADATA = 42112
ASCII = 2
MAX_TEXT = 1 << 20
# magic -> (IFD offset format, entry count format, entry format, value field size)
LAYOUTS = {42: ("I", "H", "HHI4s", 4), 43: ("Q", "Q", "HHQ8s", 8)}


def _read(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("truncated TIFF file")
    return data


def gdal_metadata(path: str | Path) -> dict[str, str]:
    """The dataset-level GDAL metadata items (default domain) of a TIFF, e.g. METHOD.

    Returns {} for a TIFF without such metadata.

    Raises
    ------
    ValueError
        The file is not a (classic or Big) TIFF, or is truncated.
    """
    with open(path, "rb") as handle:
        header = handle.read(16)
        order = {b"II": "<", b"MM": ">"}.get(header[:2])
        magic = struct.unpack(order + "H", header[2:4])[0] if order and len(header) == 16 \
            else None
        if magic not in LAYOUTS:
            raise ValueError("not a TIFF file")
        offset_fmt, count_fmt, entry_fmt, field = LAYOUTS[magic]
        ifd = struct.unpack(order + offset_fmt, header[4:8] if magic == 42 else header[8:16])[0]
        count_size = struct.calcsize(count_fmt)
        (count,) = struct.unpack(order + count_fmt, _read(handle, ifd, count_size))
        entry_size = struct.calcsize(order + entry_fmt)
        table = _read(handle, ifd + count_size, count * entry_size)
        for index in range(count):
            tag, kind, length, value = struct.unpack_from(order + entry_fmt, table,
                                                          index * entry_size)
            if tag != GDAL_METADATA or kind != ASCII or length > MAX_TEXT:
                continue
            if length > field:
                value = _read(handle, struct.unpack(order + offset_fmt, value)[0], length)
            return _items(value[:length].rstrip(b"\0"))
    return {}


def _items(raw: bytes) -> dict[str, str]:
    """Items of a <GDALMetadata> document that belong to the dataset's default domain."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return {}
    return {item.get("name", ""): (item.text or "") for item in root.iter("Item")
            if item.get("sample") is None and not item.get("domain") and item.get("name")}
