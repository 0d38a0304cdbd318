"""Checks for a SQLite database file that cannot be used (not SQLite, truncated, malformed).

Such a file is renamed aside, never deleted: it may hold user data (the library's chat history).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("docfocus")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DAMAGED = ("malformed", "not a database", "file is encrypted", "disk image")


def damaged_reason(path: Path) -> str | None:
    """Why ``path`` cannot be a usable SQLite database (not SQLite, truncated), or None if it looks fine."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "it is not a SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]  # the in-header page count is trustworthy
    if header_valid and pages and size < pages * page_size:
        return f"it is truncated ({size:,} of {pages * page_size:,} bytes)"
    if size % page_size:
        return "it is truncated (not a whole number of pages)"
    return None


def set_aside(path: Path, reason: str, what: str = "document cache",
              consequence: str = "Documents are read again once.") -> tuple[Path, str]:
    """Rename a damaged database (and its WAL files) out of the way; returns (new path, user message)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):  # a stale WAL must not be replayed into the new database
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    message = (f"The {what} {path.name} could not be used ({reason}); it was moved aside to "
               f"{target.name} and a new one was started. {consequence}")
    log.warning(message)
    return target, message


def is_damage(error: BaseException) -> bool:
    return isinstance(error, sqlite3.DatabaseError) and any(word in str(error).lower() for word in _DAMAGED)
