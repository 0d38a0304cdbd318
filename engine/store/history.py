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
    magic, length, low, high = _SCORES_HEADER.unpack_from(blob)
    if magic != _SCORES_MAGIC:
        raise ValueError("unknown token score encoding")
    codes = np.frombuffer(zlib.decompress(blob[_SCORES_HEADER.size:]), dtype=np.uint8)
    assert codes.size == length, (codes.size, length)
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
        return {
            "id": row["id"], "sha256": row["sha256"], "question": row["question"], "answer": row["answer"],
            "evidence": json.loads(row["evidence"] or "[]"), "token_scores": decode_scores(row["token_scores"]),
            "attention": json.loads(row["attention"] or "{}"), "model": json.loads(row["model"] or "{}"),
            "settings": json.loads(row["settings"] or "{}"), "timings": json.loads(row["timings"] or "{}"),
            "cache_hit": bool(row["cache_hit"]), "stopped": bool(row["stopped"]), "created": row["created"],
            "citations": json.loads(row.get("citations") or "[]"),
            "highlights": json.loads(row.get("highlights") or "[]"),
            "supported": bool(row["supported"]) if row.get("supported") is not None else True,
            "finish": row.get("finish") or "complete", "generated": row.get("generated") or row["answer"],
            "verdict": json.loads(row.get("verdict") or "null"), "quote": json.loads(row.get("quote") or "null"),
        }

    def clear(self, sha256: str) -> int:
        """Delete one document's history (a user's explicit request); returns the number of rows removed."""
        with self.db.conn:
            return self.db.conn.execute("DELETE FROM history WHERE sha256 = ?", [sha256]).rowcount

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT sha256, COUNT(*) FROM history GROUP BY sha256").fetchall())
