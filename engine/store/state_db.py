"""The ``states.sqlite`` file: connection settings, schema, write transactions and giving space back.

Layout: one ``states`` row per stored state and its tensors in ``chunks`` rows (one per layer, K or V,
and token span; engine/store/codec.py). Bad rows are moved into ``quarantine_*`` tables, never silently
deleted. Large pages (64 KB) mean fewer overflow pages per BLOB and faster reads; incremental
auto-vacuum lets freed space go back to the disk without rewriting the file.
"""
from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import sqlite_utils

from .dbfile import check_writable, enable_wal

log = logging.getLogger("docfocus.cache")

FORMAT_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 65536
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental auto-vacuum

STATE_COLUMNS = {"id": int, "key": str, "sha256": str, "title": str, "path": str, "model_id": str,
                 "model_revision": str, "dtype": str, "prefix_tokens": int, "layout_hash": str,
                 "storage_format": str, "variant": str, "format_version": int, "layers": int, "chunks": int,
                 "stored_bytes": int, "logits": bytes, "created": float, "last_used": float}
CHUNK_COLUMNS = {"state_id": int, "layer": int, "kind": str, "part": int, "start": int, "shape": str,
                 "dtype": str, "nbytes": int, "checksum": int, "data": bytes, "scales": bytes}
_SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "FLOAT", bytes: "BLOB"}


def connect(path: Path) -> sqlite_utils.Database:
    """Open (creating if needed) the states database; SQLite's error if it is damaged or cannot be written."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                           isolation_level=None)  # explicit BEGIN IMMEDIATE / COMMIT (write_transaction)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:  # new file: settings that need an empty database
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        enable_wal(conn, BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL after a large state is checkpointed
        # Not zeroing freed pages first (some builds do, e.g. Debian's): the incremental vacuum truncates them
        # off the file or overwrites them anyway, and zeroing wrote every freed byte again into the WAL.
        conn.execute("PRAGMA secure_delete=FAST")
        check_writable(conn)
        db = sqlite_utils.Database(conn)
        _create_schema(db)
    except BaseException:
        conn.close()
        raise
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database):
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: a state is written whole or not at all.

    IMMEDIATE takes the write lock at once, so a second process waits (busy timeout) instead of failing later."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:  # SQLite has already rolled back after some errors (disk full)
            db.execute("ROLLBACK")
        raise


def _create_schema(db: sqlite_utils.Database) -> None:
    with write_transaction(db):
        db["meta"].create({"name": str, "value": str}, pk="name", if_not_exists=True)
        # AUTOINCREMENT: an id is never reused, so quarantined chunks stay tied to their own state
        columns = ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in STATE_COLUMNS.items() if name != "id")
        db.execute(f"CREATE TABLE IF NOT EXISTS states (id INTEGER PRIMARY KEY AUTOINCREMENT, {columns})")
        db["chunks"].create(CHUNK_COLUMNS, pk=("state_id", "layer", "kind", "part"), if_not_exists=True)
        extra = {"reason": str, "quarantined": float}
        db["quarantine_states"].create({**STATE_COLUMNS, **extra}, if_not_exists=True)
        db["quarantine_chunks"].create(CHUNK_COLUMNS, if_not_exists=True)
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS states_key ON states(key)")
        db.execute("CREATE INDEX IF NOT EXISTS states_sha ON states(sha256)")
        db.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('format_version', ?)", [str(FORMAT_VERSION)])


def reclaim_space(db: sqlite_utils.Database) -> None:
    """Give freed pages back to the disk (outside a transaction).

    Each step of ``PRAGMA incremental_vacuum`` frees one page and Python's ``execute`` steps a statement
    once, so the pragma runs through ``executescript``, which steps it to the end. A file made without
    incremental auto-vacuum is converted by one VACUUM, the first time at least half of it is free, so the
    rewrite never costs more than it gains. In WAL mode the file itself shrinks at the next checkpoint.
    """
    conn = db.conn
    try:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            conn.executescript("PRAGMA incremental_vacuum;")
        elif _mostly_free(conn):
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")
        else:
            return
        _checkpoint_without_waiting(conn)
    except sqlite3.OperationalError as error:  # busy, or no room for VACUUM's copy: the space stays for reuse
        log.info("could not give freed cache space back to the disk: %s", error)


def _checkpoint_without_waiting(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file, which then shrinks, and empty the WAL, unless another process is reading
    (then the next checkpoint does it): never wait for that reader."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _mostly_free(conn: sqlite3.Connection) -> bool:
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return 2 * free >= conn.execute("PRAGMA page_count").fetchone()[0]
