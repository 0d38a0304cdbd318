"""A SQLite database file DocFocus cannot use: damaged (SQLite itself says so) or not writable here.

A damaged file is renamed aside, never deleted: it may hold user data (the library's chat history).
A file that cannot be written (a read-only folder or file, a full disk, a disk that fails to write) is not
damaged: it is left exactly as it is.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import quote

from ..errors import DocFocusError

log = logging.getLogger("docfocus")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
# SQLITE_FULL: the disk (or the file's quota) is full; SQLITE_IOERR: the disk failed a write, e.g. the -shm
# file of WAL mode could not be made on a full disk ("disk I/O error")
_UNWRITABLE_CODES = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_FULL,
                     sqlite3.SQLITE_IOERR)
FULL_BELOW = 1024**2  # free bytes under which a failing write is put down to a full disk
_DAMAGED_WORDS = ("malformed", "not a database", "file is encrypted", "disk image")
Opened = TypeVar("Opened")
WRITABLE_HINT = "Make that folder writable for your user, or set DOCFOCUS_HOME to a folder you can write."
FULL_HINT = "Free some space on that disk, or set DOCFOCUS_HOME to a folder on another disk."
DISK_FULL = "the disk is full"


class DatabaseNotWritable(DocFocusError):
    """A database DocFocus must write cannot be written here (a read-only folder or file); nothing was changed."""


def _primary_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # extended codes keep the primary code in the low byte


def is_damage(error: BaseException) -> bool:
    if not isinstance(error, sqlite3.DatabaseError):
        return False
    return _primary_code(error) in _DAMAGE_CODES or any(word in str(error).lower() for word in _DAMAGED_WORDS)


def is_unwritable(error: BaseException) -> bool:
    """A file or folder that cannot be created or written (permissions, a file where a folder should be, a full
    disk, a failing one)."""
    if isinstance(error, sqlite3.Error):
        return _primary_code(error) in _UNWRITABLE_CODES
    return isinstance(error, OSError)


def is_disk_full(path: Path, error: BaseException) -> bool:
    """Whether ``error`` (writing ``path``) comes from a full disk: SQLite or the system says so, or a write
    failed with less than FULL_BELOW bytes free there."""
    if _primary_code(error) == sqlite3.SQLITE_FULL or getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    folder = next((p for p in (path.parent, *path.parent.parents) if p.is_dir()), None)
    try:
        return folder is not None and shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def hint_for(reason: str) -> str:
    """What the user can do about a file that cannot be written for ``reason`` (from ``why_unwritable``)."""
    return FULL_HINT if reason == DISK_FULL else WRITABLE_HINT


def why_unwritable(path: Path, error: BaseException) -> str:
    """A plain reason for ``is_unwritable(error)`` about ``path``."""
    folder = path.parent
    if is_disk_full(path, error):
        return DISK_FULL
    if not folder.is_dir():
        return f"{folder} is not a folder DocFocus can create or write"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return str(error)


def enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to WAL mode, the journal that lets a reader and a writer in two processes work at once.

    On a new file two processes starting together can deadlock on the switch, and SQLite then reports
    "database is locked" at once instead of waiting; so wait and retry, as SQLite's own busy handler would."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as error:
            busy = _primary_code(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def check_writable(conn: sqlite3.Connection) -> None:
    """Raise SQLite's own error now if the database cannot be written: a read-only file opens and reads
    without complaint, and only its first write, much later, would fail."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE docfocus_write_check (x)")  # rolled back: never stored
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


# ---------------------------------------------------------------- is it damaged?


def damaged_reason(path: Path) -> str | None:
    """Why SQLite cannot use ``path``, or None when it can (or when it cannot even check it, e.g. read-only).

    The header is read first because it is cheap; a file that looks wrong is then checked by SQLite with its
    -wal file. A kill during a checkpoint leaves a file shorter than its header says, yet whole: its WAL
    still holds every commit, and SQLite replays it.
    """
    suspicion = _header_suspicion(path)
    if suspicion is None:
        return None
    finding = _sqlite_finding(path)
    return None if finding is None else f"{suspicion}; SQLite's check: {finding}"


def _header_suspicion(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size == 0:
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


def _sqlite_finding(path: Path) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong, or None if nothing (or if SQLite cannot check the file here)."""
    try:
        with read_only(path) as conn:
            rows = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as error:
        return str(error) if is_damage(error) else None
    return None if rows == ["ok"] else "; ".join(rows[:3])


@contextlib.contextmanager
def read_only(path: Path):
    """A read-only connection: it never writes the file and never checkpoints, so the file and its WAL stay
    exactly as they were (SQLite may create an empty -wal and a -shm beside them)."""
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def readable_rows(path: Path, table: str) -> tuple[list[str], list[tuple], bool]:
    """(column names, rows in rowid order, whether every row was read) of ``table`` in a damaged database
    that was set aside: what SQLite can still read. A row on an unreadable page is skipped, and reading
    goes on after it."""
    try:
        with read_only(path) as conn:
            _allow_short_file(conn)
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            if not columns:  # no such table: nothing to read, nothing lost
                return [], [], True
            rows, complete = _rows_one_by_one(conn, table)
            return columns, rows, complete
    except sqlite3.DatabaseError:
        return [], [], False
    finally:
        _drop_empty_wal(path)


def _allow_short_file(conn: sqlite3.Connection) -> None:
    """SQLite refuses a file shorter than its header says unless ``writable_schema`` is on (read-only here)."""
    try:
        conn.execute("PRAGMA writable_schema=ON")
    except sqlite3.DatabaseError:  # the pragma reads the schema first and may complain; it is on all the same
        pass


def _rows_one_by_one(conn: sqlite3.Connection, table: str) -> tuple[list[tuple], bool]:
    rows: list[tuple] = []
    start, skip, complete = 0, 1, True  # DocFocus's row ids start at 1
    while skip < 2**31:
        try:
            row = conn.execute(f"SELECT rowid, * FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                               [start]).fetchone()
        except sqlite3.DatabaseError:  # an unreadable page: look further on, further each time
            complete = False
            start, skip = start + skip, skip * 2
            continue
        if row is None:
            break
        rows.append(row[1:])
        start, skip = row[0] + 1, 1
    return rows, complete


# ---------------------------------------------------------------- moving it aside


def set_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal and -shm files) to ``<name>.damaged-<time>``; returns the new path."""
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
    _drop_empty_wal(target)
    log.info("moved the damaged database %s to %s", path, target)
    return target


def _drop_empty_wal(path: Path) -> None:
    """Remove the empty -wal (and its -shm index) that checking a set-aside file left: they hold nothing.
    Only for a set-aside file, which no other process opens."""
    wal, index = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
    if wal.is_file() and wal.stat().st_size == 0:
        wal.unlink()
        index.unlink(missing_ok=True)


def open_checked(path: Path, open_database: Callable[[Path], Opened],
                 moved_aside: Callable[[Path, str], None]) -> Opened:
    """``open_database(path)``, after moving a damaged file aside (``moved_aside(new path, reason)`` tells the
    user); damage SQLite only finds while opening moves the file aside too, and a new database is opened.

    ``open_database`` must close its connection before raising. Errors of a file that cannot be written
    (``is_unwritable``) propagate, with the file untouched."""
    reason = damaged_reason(path)
    if reason:
        moved_aside(set_aside(path), reason)
    try:
        return open_database(path)
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise
        moved_aside(set_aside(path), str(error))
        return open_database(path)
