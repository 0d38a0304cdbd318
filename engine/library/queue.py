"""The library's documents and their reading queue, in ``library.sqlite`` (table ``library_items``).

A document added to the library is *queued*; the engine reads queued documents one at a time (*reading*, with
progress), after which it is *ready* (its state in the state cache, its passages in the passage index) or
*failed* (with the reason). The queue lives in SQLite, so a reading interrupted by a crash or a quit resumes
after a restart (an item left *reading* is taken first). A file whose content changed (a new SHA-256 at the
same path) is queued again.
"""
from __future__ import annotations

import time
from pathlib import Path

import sqlite_utils

from ..ingest.extract import file_sha256

STATES = ("queued", "reading", "ready", "failed")
COLUMNS = ("id", "path", "sha256", "title", "pages", "tokens", "state", "reason", "done", "total", "size", "mtime",
           "added", "updated")


class LibraryQueue:
    """Rows of ``library_items``: one per file path."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        with db.conn:
            db.execute("CREATE TABLE IF NOT EXISTS library_items (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "path TEXT UNIQUE, sha256 TEXT, title TEXT, pages INTEGER, tokens INTEGER, state TEXT, "
                       "reason TEXT, done INTEGER, total INTEGER, size INTEGER, mtime FLOAT, added FLOAT, "
                       "updated FLOAT)")

    def _rows(self, where: str = "", args: list | None = None) -> list[dict]:
        cursor = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM library_items {where}", args or [])
        return [dict(zip(COLUMNS, row)) for row in cursor]

    def items(self) -> list[dict]:
        """Every document of the library, in the order added."""
        return self._rows("ORDER BY id")

    def get(self, item_id: int) -> dict | None:
        rows = self._rows("WHERE id = ?", [int(item_id)])
        return rows[0] if rows else None

    def find(self, id_or_path: str | int) -> dict | None:
        """The item with this id, or at this path (as given, or resolved)."""
        text = str(id_or_path)
        if text.isdigit():
            found = self.get(int(text))
            if found is not None:
                return found
        for candidate in dict.fromkeys([text, str(Path(text).expanduser().resolve())]):
            rows = self._rows("WHERE path = ?", [candidate])
            if rows:
                return rows[0]
        return None

    def add(self, path: Path) -> int:
        """Queue the file at ``path`` unless the same content is there already (ready, queued or reading); a
        changed file, or one that failed before, is queued again. Returns the item's id."""
        path = Path(path).expanduser().resolve()
        sha, stat, now = file_sha256(path), path.stat(), time.time()
        found = self._rows("WHERE path = ?", [str(path)])
        with self.db.conn:
            if not found:
                return int(self.db.execute(
                    "INSERT INTO library_items (path, sha256, title, state, done, total, size, mtime, added, updated) "
                    "VALUES (?, ?, ?, 'queued', 0, 0, ?, ?, ?, ?)",
                    [str(path), sha, path.stem, stat.st_size, stat.st_mtime, now, now]).lastrowid)
            item = found[0]
            if item["sha256"] != sha or item["state"] == "failed":
                self.db.execute("UPDATE library_items SET sha256 = ?, state = 'queued', reason = NULL, done = 0, "
                                "total = 0, size = ?, mtime = ?, updated = ? WHERE id = ?",
                                [sha, stat.st_size, stat.st_mtime, now, item["id"]])
            return int(item["id"])

    def refresh(self) -> list[int]:
        """Queue again the documents whose file changed (size or time first, then the SHA-256); a file that
        is gone is marked failed. Returns the ids queued again."""
        queued = []
        for item in self._rows("WHERE state IN ('ready', 'failed')"):
            path = Path(item["path"])
            if not path.is_file():
                if item["state"] == "ready":
                    self.set_state(item["id"], "failed", reason=f"The file {path} is no longer there.")
                continue
            stat = path.stat()
            if (stat.st_size, stat.st_mtime) == (item["size"], item["mtime"]) and item["state"] == "ready":
                continue
            if file_sha256(path) != item["sha256"] or item["reason"] == f"The file {path} is no longer there.":
                self.add(path)
                queued.append(item["id"])
            else:
                with self.db.conn:
                    self.db.execute("UPDATE library_items SET size = ?, mtime = ? WHERE id = ?",
                                    [stat.st_size, stat.st_mtime, item["id"]])
        return queued

    def next(self) -> dict | None:
        """The next document to read: one left *reading* (interrupted) first, then the oldest queued one."""
        rows = self._rows("WHERE state IN ('reading', 'queued') ORDER BY state = 'reading' DESC, id LIMIT 1")
        return rows[0] if rows else None

    def set_state(self, item_id: int, state: str, reason: str | None = None, **fields) -> None:
        assert state in STATES, state
        fields = {key: value for key, value in fields.items() if key in COLUMNS}
        sets = ", ".join([f"{key} = ?" for key in fields] + ["state = ?", "reason = ?", "updated = ?"])
        with self.db.conn:
            self.db.execute(f"UPDATE library_items SET {sets} WHERE id = ?",
                            [*fields.values(), state, reason, time.time(), int(item_id)])

    def progress(self, item_id: int, done: int, total: int) -> None:
        with self.db.conn:
            self.db.execute("UPDATE library_items SET done = ?, total = ?, updated = ? WHERE id = ?",
                            [int(done), int(total), time.time(), int(item_id)])

    def remove(self, item_id: int) -> None:
        with self.db.conn:
            self.db.execute("DELETE FROM library_items WHERE id = ?", [int(item_id)])

    def users(self, sha256: str) -> int:
        """How many items hold this content."""
        return self.db.execute("SELECT COUNT(*) FROM library_items WHERE sha256 = ?", [sha256]).fetchone()[0]
