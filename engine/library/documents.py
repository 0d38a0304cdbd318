"""The document library in SQLite: documents, their pages and words.

One database file in the data folder, opened in WAL mode with a busy timeout
so the GUI and a command-line run can use it at the same time.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from .. import paths
from ..ingest.extract import IngestedDocument, Page, Word
from ..ingest.report import IngestReport
from ..store.dbfile import (
    DatabaseNotWritable,
    check_writable,
    enable_wal,
    hint_for,
    is_unwritable,
    open_checked,
    readable_rows,
    why_unwritable,
)
from ..store.history import History

BUSY_TIMEOUT_MS = 30_000


def connect(path: str | Path | None, notices: list[str]) -> sqlite_utils.Database:
    """Open (creating if needed) the library database with WAL and a busy timeout.

    A file SQLite finds damaged is moved aside, never deleted, and a new library is started with the chat
    history that can still be read from it; the message for the user (where the file went, what was copied)
    is appended to ``notices``. A library that cannot be written here raises DatabaseNotWritable and is
    left as it is.
    """
    path = Path(path) if path else paths.library_path()
    moved: list[tuple[Path, str]] = []
    try:
        db = open_checked(path, _open, lambda target, reason: moved.append((target, reason)))
    except (sqlite3.Error, OSError) as error:
        if not is_unwritable(error):
            raise
        reason = why_unwritable(path, error)
        raise DatabaseNotWritable(f"DocFocus cannot write its library {path} ({reason}). Nothing in it was "
                                  f"changed.", hint_for(reason)) from error
    for target, reason in moved:
        copied, complete = _copy_history(target, db)
        notices.append(_moved_aside_message(path, target, reason, copied, complete))
    return db


def _copy_history(damaged: Path, db: sqlite_utils.Database) -> tuple[int, bool]:
    """Copy the chat history SQLite can still read from a damaged library into ``db`` (the new, empty one);
    returns (answers copied, whether all were read). Documents need no copy: they are read again from the PDFs."""
    columns, rows, complete = readable_rows(damaged, "history")
    known = {row[1] for row in db.execute("PRAGMA table_info(history)").fetchall()}
    kept = [index for index, name in enumerate(columns) if name in known]
    if rows:
        sql = f"INSERT INTO history ({', '.join(columns[i] for i in kept)}) VALUES ({', '.join('?' * len(kept))})"
        with db.conn:
            db.conn.executemany(sql, ([row[i] for i in kept] for row in rows))
    return len(rows), complete


def _moved_aside_message(path: Path, target: Path, reason: str, copied: int, complete: bool) -> str:
    if copied and complete:
        history = f"its chat history ({copied} answers) was copied into the new one"
    elif copied:
        history = (f"the {copied} answers of its chat history that could still be read were copied into the new "
                   f"one; the rest stays in the moved file")
    else:
        history = "it held no chat history" if complete else "no chat history could be read from it"
    return (f"The library {path} could not be used ({reason}). It was moved to {target} (nothing was deleted) "
            f"and a new library was started: {history}. PDFs are read again when opened.")


def _open(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        enable_wal(conn, BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA synchronous=NORMAL")
        check_writable(conn)
        db = sqlite_utils.Database(conn)
        # The write lock first: a transaction that reads the schema and then writes fails at once, without
        # waiting, when another process (two starting together) wrote in between.
        conn.execute("BEGIN IMMEDIATE")
        _create_schema(db)
        History(db)  # the chat history's table and its later columns, under the same lock
        if conn.in_transaction:
            conn.execute("COMMIT")
    except BaseException:
        conn.close()  # rolls back an open transaction
        raise
    return db


def _create_schema(db: sqlite_utils.Database) -> None:
    db["documents"].create({"sha256": str, "path": str, "title": str, "pages": int, "text": str,
                            "added": float, "last_opened": float, "last_page": int},
                           pk="sha256", if_not_exists=True)
    db["pages"].create({"sha256": str, "number": int, "width": float, "height": float,
                        "text_start": int, "text_end": int},
                       pk=("sha256", "number"), if_not_exists=True)
    db["words"].create({"sha256": str, "idx": int, "page": int, "x0": float, "y0": float, "x1": float,
                        "y1": float, "text": str, "start": int, "end": int},
                       pk=("sha256", "idx"), if_not_exists=True)
    # How each document was read (format, OCR summary, repair notice), as JSON.
    db["ingest_reports"].create({"sha256": str, "report": str}, pk="sha256", if_not_exists=True)
    # Recognised pages, kept as soon as each is done: a cancelled or failed OCR run resumes where it stopped,
    # and no page is recognised twice with the same language setting.
    db["ocr_pages"].create({"sha256": str, "page": int, "languages": str, "engine": str, "words": str,
                            "created": float},
                           pk=("sha256", "page", "languages"), if_not_exists=True)


class Library:
    """Documents DocFocus has read, keyed by the PDF's SHA-256."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.notices: list[str] = []  # for the user, said once: a damaged file moved aside, answers not saved
        self.path = Path(path) if path else paths.library_path()
        self.db = connect(path, self.notices)
        self._said: set[str] = set()

    @classmethod
    def or_in_memory(cls, path: str | Path | None = None) -> "Library":
        """The library at ``path`` or, where it cannot be written, an empty one in memory that says so:
        questions are still answered, but nothing is saved."""
        try:
            return cls(path)
        except DatabaseNotWritable as error:
            library = cls(":memory:")
            library.notices.append(f"{error} Answers are given but not saved in the chat history.")
            return library

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    @contextlib.contextmanager
    def _writing(self, what: str):
        """One write transaction. Where the disk is full (or fails, or turned read-only) it is rolled back and
        ``what`` is said once with the reason: the caller goes on with what it has in memory."""
        try:
            with self.db.conn:
                yield
        except (sqlite3.Error, OSError) as error:
            if not is_unwritable(error):
                raise
            message = f"{what} ({why_unwritable(self.path, error)}: {self.path})."
            if message not in self._said:
                self._said.add(message)
                self.notices.append(message)

    def save(self, document: IngestedDocument) -> None:
        """Store (or refresh) a document with its pages, words and ingest report, in one transaction (all of it
        or none, also on a full disk); a document read again with other words (OCR in another language)
        replaces its pages and words. Plain SQL: sqlite_utils' table methods commit on their own."""
        now = time.time()
        existing = self.get_row(document.sha256)
        sha = document.sha256
        with self._writing(f"DocFocus could not keep {document.title} in its library; it is read again from its "
                           f"file next time"):
            if existing is not None and existing["text"] != document.text:
                self.db.execute("DELETE FROM words WHERE sha256 = ?", [sha])
                self.db.execute("DELETE FROM pages WHERE sha256 = ?", [sha])
            self._put("ingest_reports", [{"sha256": sha, "report": json.dumps(document.report.to_dict())}])
            self._put("documents", [{
                "sha256": sha, "path": document.path, "title": document.title, "pages": len(document.pages),
                "text": document.text, "added": existing["added"] if existing else now, "last_opened": now,
                "last_page": existing["last_page"] if existing else 0}])
            if existing is None or not self.has_words(sha):
                self._put("pages", [{"sha256": sha, **vars(p)} for p in document.pages])
                self._put("words", [{"sha256": sha, "idx": i, **vars(w)} for i, w in enumerate(document.words)])

    def _put(self, table: str, rows: list[dict]) -> None:
        """INSERT OR REPLACE ``rows`` (all with the same keys) inside the caller's transaction."""
        if rows:
            names = list(rows[0])
            self.db.conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) "
                                     f"VALUES ({', '.join('?' * len(names))})", [list(r.values()) for r in rows])

    def get_row(self, sha256: str) -> dict | None:
        rows = list(self.db["documents"].rows_where("sha256 = ?", [sha256]))
        return rows[0] if rows else None

    def has_words(self, sha256: str) -> bool:
        return self.db.execute("SELECT 1 FROM words WHERE sha256 = ? LIMIT 1", [sha256]).fetchone() is not None

    def load(self, sha256: str) -> IngestedDocument | None:
        """Rebuild an ingested document from the database (no PDF parsing), or None. A stored copy that cannot
        be read (a damaged or crafted row) is dropped, said once, and the caller reads the file again (its
        ``save`` then stores it anew); the document's chat history is kept."""
        row = self.get_row(sha256)
        if row is None or not self.has_words(sha256):
            return None
        try:
            return self._rebuild(row)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            self._drop_copy(row, error)
            return None

    def _rebuild(self, row: dict) -> IngestedDocument:
        sha256 = row["sha256"]
        pages = [Page(_int(r["number"]), _float(r["width"]), _float(r["height"]), _int(r["text_start"]),
                      _int(r["text_end"])) for r in self.db["pages"].rows_where("sha256 = ?", [sha256], order_by="number")]
        words = [Word(_int(r["page"]), _float(r["x0"]), _float(r["y0"]), _float(r["x1"]), _float(r["y1"]),
                      _text(r["text"]), _int(r["start"]), _int(r["end"]))
                 for r in self.db["words"].rows_where("sha256 = ?", [sha256], order_by="idx")]
        reports = list(self.db["ingest_reports"].rows_where("sha256 = ?", [sha256]))
        report = IngestReport.from_dict(json.loads(reports[0]["report"])) if reports else IngestReport()
        if not pages or any(word.page >= len(pages) for word in words):
            raise ValueError("its words are on pages it does not have")
        return IngestedDocument(sha256, _text(row["path"]), _text(row["title"]), pages, words, _text(row["text"]),
                                report)

    def forget_copy(self, sha256: str) -> bool:
        """Delete a document's stored copy (text, pages, words, report, recognised pages), not its chat history;
        whether there was one. Used for a document that needs a password: none of it is kept in clear."""
        tables = ("documents", "pages", "words", "ingest_reports", "ocr_pages")
        with self._writing("DocFocus could not delete the unencrypted copy of an encrypted document"):
            return sum(self.db.execute(f"DELETE FROM {table} WHERE sha256 = ?", [sha256]).rowcount
                       for table in tables) > 0
        return False

    def _drop_copy(self, row: dict, error: BaseException) -> None:
        """Forget a stored copy that cannot be read (its pages, words and report; not its chat history)."""
        with self._writing("DocFocus could not repair its library"):
            for table in ("pages", "words", "ingest_reports"):
                self.db.execute(f"DELETE FROM {table} WHERE sha256 = ?", [row["sha256"]])
        name = row["title"] if isinstance(row["title"], str) and row["title"] else row["sha256"][:12]
        self.notices.append(f"The library's copy of {name} could not be read ({_short(error)}); it was read "
                            f"again from its file. Its chat history is kept.")

    def get_ocr(self, sha256: str, page: int, languages: str) -> list | None:
        """A page's stored OCR words (engine.ingest.ocr.OcrWord), or None if it was never recognised."""
        from ..ingest.ocr import OcrWord

        row = self.db.execute("SELECT words FROM ocr_pages WHERE sha256 = ? AND page = ? AND languages = ?",
                              [sha256, page, languages]).fetchone()
        try:
            return None if row is None else [OcrWord(*item) for item in json.loads(row[0])]
        except (TypeError, ValueError):  # a row that cannot be read: the page is recognised again (and replaced)
            return None

    def put_ocr(self, sha256: str, page: int, languages: str, engine: str, words: list) -> None:
        rows = [[round(w.x0, 2), round(w.y0, 2), round(w.x1, 2), round(w.y1, 2), w.text, w.block, w.line,
                 round(w.confidence, 4)] for w in words]
        with self._writing("DocFocus could not keep the recognised pages in its library; they are recognised "
                           "again next time"):
            self.db["ocr_pages"].upsert({"sha256": sha256, "page": page, "languages": languages, "engine": engine,
                                         "words": json.dumps(rows, ensure_ascii=False), "created": time.time()},
                                        pk=("sha256", "page", "languages"))

    def recent(self, limit: int = 10) -> list[dict]:
        return list(self.db["documents"].rows_where(select="sha256, path, title, pages, last_opened, last_page",
                                                    order_by="last_opened desc", limit=limit))

    def touch(self, sha256: str, path: str) -> None:
        """Record that the document was opened now, from ``path`` (it may have moved)."""
        with self._writing("DocFocus could not record this opening in its library"):
            self.db.execute("UPDATE documents SET last_opened = ?, path = ? WHERE sha256 = ?",
                            [time.time(), str(path), sha256])

    def set_last_page(self, sha256: str, page: int) -> None:
        with self._writing("DocFocus could not record the page you were reading"):
            self.db.execute("UPDATE documents SET last_page = ? WHERE sha256 = ?", [page, sha256])


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{str(value)[:20]!r} where a whole number belongs")
    return value


def _float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{str(value)[:20]!r} where a number belongs")
    return float(value)


def _text(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{str(value)[:20]!r} where text belongs")
    return value


def _short(error: BaseException) -> str:
    text = str(error).replace("\n", " ")
    return text[:120] if text else type(error).__name__
