"""Chat history per document, in the library database (it is user data, unlike the state cache).

One row per answer: question, answer, evidence (page, passage, score, word boxes), the per-token
relevance in a compact form, the attention and engine settings used, timings and a timestamp.

Per-token relevance (one float per document token, up to ~80K) is stored as 8-bit codes over the
array's [min, max] range, zlib-compressed: about 1 byte per token before compression, and within
(max - min) / 510 of the original, far finer than a heat overlay can show.
"""
from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import asdict, is_dataclass

import numpy as np
import sqlite_utils

_SCORES_HEADER = struct.Struct("<4sIff")  # magic, length, min, max
_SCORES_MAGIC = b"TSQ1"


def encode_scores(scores: np.ndarray | None) -> bytes | None:
    """(L,) float relevance -> compact bytes (8-bit codes over [min, max], zlib), or None."""
    if scores is None:
        return None
    values = np.nan_to_num(np.asarray(scores, dtype=np.float32).ravel())
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    span = high - low
    codes = np.zeros(values.shape, np.uint8) if span <= 0 else np.round((values - low) / span * 255).astype(np.uint8)
    return _SCORES_HEADER.pack(_SCORES_MAGIC, values.size, low, high) + zlib.compress(codes.tobytes(), 6)


def decode_scores(blob: bytes | None) -> np.ndarray | None:
    """Inverse of ``encode_scores``: (L,) float32, or None."""
    if not blob:
        return None
    try:
        magic, length, low, high = _SCORES_HEADER.unpack_from(blob)
        codes = np.frombuffer(zlib.decompress(blob[_SCORES_HEADER.size:]), dtype=np.uint8)
    except (struct.error, zlib.error, TypeError) as error:
        raise ValueError(f"token scores not readable ({error})") from error
    if magic != _SCORES_MAGIC or codes.size != length:
        raise ValueError("unknown token score encoding")
    return (low + codes.astype(np.float32) * ((high - low) / 255.0)).astype(np.float32)


# The answer's story (engine/answer/result.py): citations and highlights as JSON, the support verdict, how it ended,
# the verdict's score and signals and the quote beside an unsupported answer (JSON, "null" when none).
_STORY_COLUMNS = {"citations": "TEXT", "highlights": "TEXT", "supported": "INTEGER", "finish": "TEXT",
                  "generated": "TEXT", "verdict": "TEXT", "quote": "TEXT"}


def _plain(item) -> dict:
    return asdict(item) if is_dataclass(item) else dict(item)


def _plain_or_none(item) -> dict | None:
    return None if item is None else _plain(item)


class History:
    """Questions and answers about each document (keyed by the PDF's SHA-256), oldest first."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        db.execute("CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL, "
                   "question TEXT, answer TEXT, evidence TEXT, token_scores BLOB, attention TEXT, model TEXT, "
                   "settings TEXT, timings TEXT, cache_hit INTEGER, stopped INTEGER, created FLOAT)")
        db.execute("CREATE INDEX IF NOT EXISTS history_sha ON history(sha256, created)")
        present = {row[1] for row in db.execute("PRAGMA table_info(history)").fetchall()}
        for column, kind in _STORY_COLUMNS.items():  # added after the first release: older libraries lack them
            if column not in present:
                db.execute(f"ALTER TABLE history ADD COLUMN {column} {kind}")
        if db.conn.in_transaction and db.conn.isolation_level is not None:
            db.conn.commit()

    def record(self, answer, settings: dict | None = None, created: float | None = None) -> int:
        """Store an ``engine.api.Answer`` (or an object with its fields); returns the row id."""
        row = {
            "sha256": answer.document["sha256"], "question": answer.question, "answer": answer.answer,
            "evidence": json.dumps([_plain(item) for item in answer.evidence]),
            "token_scores": encode_scores(answer.token_scores),
            "attention": json.dumps(answer.attention), "model": json.dumps(answer.model),
            "settings": json.dumps(settings or {}), "timings": json.dumps(answer.timings),
            "cache_hit": int(bool(answer.cache_hit)), "stopped": int(bool(answer.stopped)),
            "created": time.time() if created is None else created,
            "citations": json.dumps([_plain(item) for item in getattr(answer, "citations", [])]),
            "highlights": json.dumps([_plain(item) for item in getattr(answer, "highlights", [])]),
            "supported": int(bool(getattr(answer, "supported", True))),
            "finish": getattr(answer, "finish", "complete"), "generated": getattr(answer, "generated", ""),
            "verdict": json.dumps(_plain_or_none(getattr(answer, "verdict", None))),
            "quote": json.dumps(_plain_or_none(getattr(answer, "quote", None))),
        }
        with self.db.conn:
            cursor = self.db.conn.execute(
                f"INSERT INTO history ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        return int(cursor.lastrowid)

    def entries(self, sha256: str) -> list[dict]:
        """Every recorded answer about the document, oldest first, as plain Python values."""
        cursor = self.db.execute("SELECT * FROM history WHERE sha256 = ? ORDER BY created, id", [sha256])
        names = [c[0] for c in cursor.description]
        return [self._entry(dict(zip(names, row))) for row in cursor.fetchall()]

    @staticmethod
    def _entry(row: dict) -> dict:
        """A row as plain values. A part that cannot be read (not JSON, or not the shape it should have) is left
        empty and named in ``damaged``: the rest of the answer is still shown, and nothing is lost in the file."""
        damaged: list[str] = []
        part = _Reader(row, damaged)
        entry = {
            "id": row["id"], "sha256": row["sha256"], "question": part.text("question"), "answer": part.text("answer"),
            "evidence": part.items("evidence", ("page", "text")), "token_scores": part.scores(),
            "attention": part.mapping("attention"), "model": part.mapping("model"),
            "settings": part.mapping("settings"), "timings": part.mapping("timings"),
            "cache_hit": bool(row["cache_hit"]), "stopped": bool(row["stopped"]), "created": row["created"],
            "citations": part.items("citations", ("page", "text")), "highlights": part.items("highlights", ("page", "box")),
            "supported": bool(row["supported"]) if row.get("supported") is not None else True,
            "finish": row.get("finish") if row.get("finish") in ("complete", "length", "stopped") else "complete",
            "verdict": part.optional("verdict"), "quote": part.optional("quote"),
        }
        entry["generated"] = row.get("generated") if isinstance(row.get("generated"), str) else entry["answer"]
        entry["damaged"] = damaged
        return entry

    def clear(self, sha256: str) -> int:
        """Delete one document's history (a user's explicit request); returns the number of rows removed."""
        with self.db.conn:
            return self.db.conn.execute("DELETE FROM history WHERE sha256 = ?", [sha256]).rowcount

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT sha256, COUNT(*) FROM history GROUP BY sha256").fetchall())


def damaged_notice(entries: list[dict]) -> str | None:
    """A sentence for the user when some recorded answers had parts that could not be read, or None."""
    hurt = [entry for entry in entries if entry.get("damaged")]
    if not hurt:
        return None
    parts = sorted({name for entry in hurt for name in entry["damaged"]})
    count = f"{len(hurt)} answer{'s' if len(hurt) != 1 else ''}"
    return (f"{count} in this chat history had parts that could not be read ({', '.join(parts)}); "
            f"{'they are' if len(hurt) != 1 else 'it is'} shown without them. The library file was not changed.")


class _Reader:
    """Reads the parts of one history row, noting in ``damaged`` each one that cannot be read."""

    def __init__(self, row: dict, damaged: list[str]) -> None:
        self.row, self.damaged = row, damaged

    def _json(self, name: str, default):
        text = self.row.get(name)
        if text is None or text == "":
            return default
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, type(default)):
            self.damaged.append(name)
            return default
        return value

    def text(self, name: str) -> str:
        value = self.row.get(name)
        if value is not None and not isinstance(value, str):
            self.damaged.append(name)
        return value if isinstance(value, str) else ""

    def mapping(self, name: str) -> dict:
        return self._json(name, {})

    def optional(self, name: str) -> dict | None:
        """An object, or None where the row has none ("null", or a column that older rows lack)."""
        if self.row.get(name) in (None, "", "null"):
            return None
        return self._json(name, {}) or None

    def items(self, name: str, keys: tuple[str, ...]) -> list[dict]:
        """A list of objects that each have ``keys``; a list that does not is not shown at all."""
        items = self._json(name, [])
        if all(isinstance(item, dict) and all(key in item for key in keys) for item in items):
            return items
        self.damaged.append(name)
        return []

    def scores(self) -> np.ndarray | None:
        try:
            return decode_scores(self.row.get("token_scores"))
        except ValueError:
            self.damaged.append("token_scores")
            return None
