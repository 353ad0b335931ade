"""Counts what processes do to a folder tree, through Linux inotify (ctypes, no package).

A thread reads the kernel's events and counts, per top-level folder (e.g. "outputs",
"work"): files created, files closed after writing, renames, deletions and the bytes of the
files closed after writing (their size when the event is read; a temporary file renamed
before that is sized under its new name, one deleted first is counted as unsized).
New subfolders are watched as they appear; one created and filled before its watch is in
place loses its first events (counted as such when the kernel says its queue overflowed).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading
from collections import Counter
from pathlib import Path

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_Q_OVERFLOW, IN_ISDIR = 0x100, 0x200, 0x4000, 0x40000000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_HEADER = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


class FolderWatch:
    """Watch `root` and every folder under it until `stop()`; read counts with `snapshot`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fd = _libc.inotify_init1(os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._paths: dict[int, Path] = {}
        self._moved: dict[int, str] = {}  # cookie -> name closed-written, then renamed
        self._pending: set[Path] = set()  # closed-written, not found when read
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for folder, _, _ in os.walk(root):
            self._add(Path(folder))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _add(self, folder: Path) -> None:
        wd = _libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
        if wd >= 0:
            self._paths[wd] = folder

    def _area(self, path: Path) -> str:
        parts = path.relative_to(self.root).parts
        return parts[0] if len(parts) > 1 else "."

    def _size(self, path: Path) -> int | None:
        try:
            return path.stat().st_size
        except OSError:
            return None

    def _event(self, wd: int, mask: int, cookie: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self._counts["overflows"] += 1
            return
        folder = self._paths.get(wd)
        if folder is None or not name:
            return
        path = folder / name
        area = self._area(path)
        if mask & IN_CREATE:
            self._counts[(area, "created")] += 1
            if mask & IN_ISDIR:
                self._add(path)
        if mask & IN_MODIFY:
            self._counts[(area, "writes")] += 1
        if mask & IN_CLOSE_WRITE:
            self._counts[(area, "closed")] += 1
            size = self._size(path)
            if size is None:
                self._pending.add(path)
            else:
                self._counts[(area, "bytes")] += size
        if mask & IN_MOVED_FROM:
            self._counts[(area, "renames")] += 1
            if path in self._pending:
                self._pending.discard(path)
                self._moved[cookie] = name
        if mask & IN_MOVED_TO:
            if cookie in self._moved:
                del self._moved[cookie]
                size = self._size(path)
                self._counts[(area, "bytes" if size is not None else "unsized")] += size or 1
            if mask & IN_ISDIR:  # a published job folder: watch it under its new name
                self._add(path)
        if mask & IN_DELETE:
            self._counts[(area, "deleted")] += 1
            if path in self._pending:
                self._pending.discard(path)
                self._counts[(area, "unsized")] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self._fd, 1 << 20)
            offset = 0
            with self._lock:
                while offset < len(data):
                    wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
                    raw = data[offset + _HEADER.size:offset + _HEADER.size + length]
                    offset += _HEADER.size + length
                    self._event(wd, mask, cookie, os.fsdecode(raw.rstrip(b"\0")))

    def snapshot(self) -> Counter:
        """The counts so far: keys (area, kind) and "overflows"."""
        with self._lock:
            return Counter(self._counts)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._fd)
