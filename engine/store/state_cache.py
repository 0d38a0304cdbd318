"""The document state cache: a document's per-layer key/value tensors in SQLite.

Reading a document (prefill) is the slow step; this cache stores its result so
a later question, in this run or after a restart, restores it instead.

Where: ``states.sqlite`` beside the library database. The states are large
(tens of KB per document token) and disposable; keeping them in their own file
means a damaged or evicted cache never touches the library or chat history,
and freed space goes back to the disk (incremental vacuum) without locking the
library.

A state is written in one transaction, so a crash leaves all of it or none.
Bad rows (checksum mismatch, missing chunks, older format, and any chunk that
does not decode into the tensor its row describes, whatever its checksum says)
are moved into ``quarantine_*`` tables, never silently deleted; quarantined data is the first
thing evicted when space is needed. The file and its schema are in
engine/store/state_db.py, the tensor encoding (formats) in engine/store/codec.py.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import sqlite_utils
import torch

from . import state_db
from .codec import DEFAULT_FORMAT, FORMATS, ChunkUnreadable, chunk_is_intact, decode_chunk, dtype_name, encode_layers
from .dbfile import is_damage, is_unwritable, open_checked, set_aside, why_unwritable
from .state_db import CHUNK_COLUMNS, FORMAT_VERSION, PAGE_SIZE, STATE_COLUMNS, reclaim_space, write_transaction

__all__ = ["DEFAULT_FORMAT", "FORMATS", "FORMAT_VERSION", "PAGE_SIZE", "RestoredState", "StateCache", "StateKey",
           "StateTooLarge", "dtype_name", "layout_hash"]

log = logging.getLogger("docfocus.cache")


@dataclass(frozen=True)
class StateKey:
    """Everything that changes the stored tensors: any difference is a miss, never a wrong hit."""

    sha256: str  # the PDF file's content
    model_id: str
    model_revision: str  # changes whenever the weights change
    dtype: str  # the model's compute dtype
    prefix_tokens: int
    layout_hash: str  # SHA-256 of the prefix token ids (prompt template, tokenizer, truncation)
    storage_format: str  # one of FORMATS
    variant: str  # other settings: prefill attention, transformers version

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def layout_hash(ids: list[int]) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()


@dataclass
class RestoredState:
    """What ``StateCache.load`` gives back: per-layer (keys, values), each (1, H_kv, L, D)."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    last_logits: torch.Tensor  # (V,)
    stored_bytes: int


class StateTooLarge(Exception):
    """The state does not fit the size cap or the disk; the caller answers without caching."""


class StateCache:
    """Stored document states in ``path`` with a size cap and least-recently-used eviction.

    Every public method survives a damaged database (it is moved aside and ``notices`` says where, once) and
    one that cannot be written here, a read-only folder or file (the cache is then off for this object,
    ``unavailable`` says why, ``notices`` once); the call then behaves as on an empty cache.
    """

    def __init__(self, path: str | Path, cap_bytes: int = 4 * 1024**3) -> None:
        self.path = Path(path)
        self.cap_bytes = int(cap_bytes)
        self.notices: list[str] = []
        self.unavailable: str | None = None  # why this cache cannot be used here; it then stays off
        self._db: sqlite_utils.Database | None = None

    # -- connection, damage and a cache that cannot be written

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = open_checked(self.path, state_db.connect, self._tell_moved_aside)
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    def close(self) -> None:
        self._close()

    def _guarded(self, action: Callable, fallback):
        """Run ``action``; on a damaged database (moved aside) or one that cannot be written (the cache turns
        off), return ``fallback`` instead."""
        if self.unavailable is not None:
            return fallback
        try:
            return action()
        except (sqlite3.Error, OSError) as error:
            if is_damage(error):
                self._set_aside(str(error))
            elif is_unwritable(error):
                self._turn_off(error)
            else:
                raise
            return fallback

    def _set_aside(self, reason: str) -> None:
        self._close()
        try:
            if self.path.exists():
                self._tell_moved_aside(set_aside(self.path), reason)
        except OSError as error:  # damaged, and in a folder that cannot be written either
            self._turn_off(error)

    def _tell_moved_aside(self, target: Path, reason: str) -> None:
        self.notices.append(f"The document cache {self.path} could not be used ({reason}). It was moved to "
                            f"{target} and a new cache was started; documents are read again once. The moved "
                            f"file holds only cached document states, so it can be deleted.")

    def _turn_off(self, error: BaseException) -> None:
        self._close()
        self.unavailable = why_unwritable(self.path, error)
        self.notices.append(f"DocFocus answers without its document cache {self.path} ({self.unavailable}): "
                            f"documents are read again each time and nothing in the cache was changed.")

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    # -- reading

    def load(self, key: StateKey, model_dtype: torch.dtype,
             devices: list[torch.device] | None = None) -> RestoredState | None:
        """The stored state for ``key`` as tensors in ``model_dtype`` (on ``devices[layer]``), or None."""
        return self._guarded(lambda: self._load(key, model_dtype, devices), None)

    def _load(self, key: StateKey, model_dtype: torch.dtype, devices) -> RestoredState | None:
        state = self._state_row(key)
        if state is None:
            return None
        try:
            if state["format_version"] != FORMAT_VERSION:
                raise ChunkUnreadable(f"format version {state['format_version']}, expected {FORMAT_VERSION}")
            restored = self._decode(state, key, model_dtype, devices)
        except ChunkUnreadable as error:  # any state that does not decode is set aside, said once, read again
            self._quarantine(state["id"], str(error))
            return None
        self._touch(state["id"])
        return restored

    def _decode(self, state: dict, key: StateKey, model_dtype: torch.dtype, devices) -> RestoredState:
        """The state's tensors, checked against its row and ``key``; ChunkUnreadable when they do not fit."""
        parts = self._read_chunks(state, model_dtype)
        layers = []
        for layer in range(state["layers"]):
            device = devices[layer] if devices else torch.device("cpu")
            keys = _joined(parts[(layer, "k")], layer, "k").to(device)  # (1, H_kv, L, D)
            values = _joined(parts[(layer, "v")], layer, "v").to(device)
            # a sliding-window layer holds fewer tokens than the prefix, never more
            if keys.shape[2] > key.prefix_tokens or keys.shape[2] != values.shape[2]:
                raise ChunkUnreadable(f"layer {layer} holds {keys.shape[2]} tokens for a "
                                      f"{key.prefix_tokens}-token prefix")
            layers.append((keys, values))
        logits = state["logits"]
        if not isinstance(logits, bytes) or len(logits) % 4:
            raise ChunkUnreadable("its last logits are not float32 values")
        logits = torch.from_numpy(np.frombuffer(logits, dtype=np.float32).copy())
        return RestoredState(layers, logits.to(devices[-1] if devices else "cpu"), state["stored_bytes"])

    def stored(self, keys: list[StateKey]) -> set[str]:
        """The digests of those ``keys`` that have a stored state (one query; nothing is loaded)."""
        digests = [key.digest() for key in keys]

        def query() -> set[str]:
            found: set[str] = set()
            for first in range(0, len(digests), 500):
                part = digests[first:first + 500]
                found.update(row[0] for row in self.db.execute(
                    f"SELECT key FROM states WHERE key IN ({', '.join('?' * len(part))})", part))
            return found
        return self._guarded(query, set())

    def _state_row(self, key: StateKey) -> dict | None:
        cursor = self.db.execute("SELECT * FROM states WHERE key = ?", [key.digest()])
        row = cursor.fetchone()
        return None if row is None else dict(zip([c[0] for c in cursor.description], row))

    def _read_chunks(self, state: dict, model_dtype: torch.dtype) -> dict[tuple[int, str], list]:
        """Decoded chunks by (layer, kind), in order; ChunkUnreadable if one is bad or missing."""
        cursor = self.db.execute("SELECT * FROM chunks WHERE state_id = ? ORDER BY layer, kind, part", [state["id"]])
        names = [c[0] for c in cursor.description]
        parts: dict[tuple[int, str], list[torch.Tensor]] = {}
        count = 0
        try:
            for values in cursor:
                chunk = dict(zip(names, values))
                count += 1
                where = f"layer {chunk['layer']} {chunk['kind']} part {chunk['part']}"
                if not chunk_is_intact(chunk):
                    raise ChunkUnreadable(f"checksum mismatch in {where}")
                try:
                    parts.setdefault((chunk["layer"], chunk["kind"]), []).append(decode_chunk(chunk, model_dtype))
                except ChunkUnreadable as error:
                    raise ChunkUnreadable(f"{where} cannot be decoded: {error}") from error
        finally:
            cursor.close()
        layers = state["layers"]
        complete = isinstance(layers, int) and 2 * layers == len(parts) and all(
            (layer, kind) in parts for layer in range(layers) for kind in "kv")
        if count != state["chunks"] or not complete:
            raise ChunkUnreadable(f"incomplete: {count} of {state['chunks']} chunks")
        return parts

    def _touch(self, state_id: int) -> None:
        try:
            self.db.execute("UPDATE states SET last_used = ? WHERE id = ?", [time.time(), state_id])
        except sqlite3.OperationalError as error:  # busy for 30 s: the state is still good to use
            log.info("could not record cache use: %s", error)

    # -- writing

    def store(self, key: StateKey, layers: list[tuple[torch.Tensor, torch.Tensor]], last_logits: torch.Tensor,
              title: str = "", path: str = "") -> int:
        """Write one state in one transaction, evicting least-recently-used states to stay under the cap.

        ``layers``: per layer (keys, values), each (1, H_kv, L, D). Returns the stored byte count (0 when
        the cache is off). Raises StateTooLarge when it cannot fit (cap or disk); the cache is then unchanged.
        """
        if self.unavailable is not None:
            return 0
        encoded = encode_layers(key.storage_format, layers)
        logits = last_logits.detach().float().cpu().numpy().astype(np.float32).tobytes()
        total = sum(row["nbytes"] for row in encoded) + len(logits)
        if total > self.cap_bytes:
            raise StateTooLarge(f"The document's state ({_mb(total)}) is larger than the cache's size cap "
                                f"({_mb(self.cap_bytes)}); it was not saved, so the document will be read again "
                                f"next time. Raise the cap to keep it.")
        row = {"key": key.digest(), **asdict(key), "title": title, "path": path, "format_version": FORMAT_VERSION,
               "layers": len(layers), "chunks": len(encoded), "stored_bytes": total, "logits": logits,
               "created": time.time(), "last_used": time.time()}
        return self._guarded(lambda: self._write(row, encoded), 0)

    def _write(self, row: dict, chunks: list[dict]) -> int:
        db = self.db
        free = shutil.disk_usage(self.path.parent).free
        if row["stored_bytes"] * 2 > free:  # the WAL holds a second copy until it is checkpointed
            raise StateTooLarge(f"Not enough free disk space to save the document's state "
                                f"({_mb(row['stored_bytes'])} needed, {_mb(free)} free); the document will be "
                                f"read again next time.")
        try:
            with write_transaction(db):
                self._evict_for(row["stored_bytes"], keep_key=row["key"])
                self._insert(row, chunks)
        except sqlite3.OperationalError as error:
            if (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL:
                raise StateTooLarge(f"The disk is full; the document's state ({_mb(row['stored_bytes'])}) was not "
                                    f"saved, so the document will be read again next time.") from error
            raise
        reclaim_space(db)
        return row["stored_bytes"]

    def _insert(self, row: dict, chunks: list[dict]) -> None:
        """Inside the write transaction: the state row (replacing one with the same key) and its chunks."""
        old = self.db.execute("SELECT id FROM states WHERE key = ?", [row["key"]]).fetchone()
        if old:
            self._delete_state(old[0])
        cursor = self.db.execute(f"INSERT INTO states ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                 list(row.values()))
        state_id = cursor.lastrowid
        names = list(CHUNK_COLUMNS)
        sql = f"INSERT INTO chunks ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        for chunk in chunks:
            self.db.execute(sql, [state_id if n == "state_id" else chunk[n] for n in names])

    def _evict_for(self, incoming: int, keep_key: str) -> None:
        """Inside the write transaction: drop quarantined data, then least-recently-used states, until it fits."""
        db = self.db
        used = self._used_bytes()
        if used + incoming <= self.cap_bytes:
            return
        quarantined = db.execute("SELECT COALESCE(SUM(stored_bytes), 0) FROM quarantine_states").fetchone()[0]
        if quarantined:
            db.execute("DELETE FROM quarantine_chunks")
            db.execute("DELETE FROM quarantine_states")
            used -= quarantined
        for state_id, size, title in db.execute(
                "SELECT id, stored_bytes, title FROM states WHERE key != ? ORDER BY last_used", [keep_key]).fetchall():
            if used + incoming <= self.cap_bytes:
                break
            self._delete_state(state_id)
            used -= size
            log.info("evicted the cached state of %s (%s)", title, _mb(size))

    def _used_bytes(self) -> int:
        return sum(self.db.execute(f"SELECT COALESCE(SUM(stored_bytes), 0) FROM {table}").fetchone()[0]
                   for table in ("states", "quarantine_states"))

    def _delete_state(self, state_id: int) -> None:
        self.db.execute("DELETE FROM chunks WHERE state_id = ?", [state_id])
        self.db.execute("DELETE FROM states WHERE id = ?", [state_id])

    def _quarantine(self, state_id: int, reason: str) -> None:
        """Move a bad state and its chunks into the quarantine tables (one transaction)."""
        message = f"A cached document state was damaged ({reason}); it was set aside and the document is read again."
        log.info(message)
        self.notices.append(message)
        columns = ", ".join(STATE_COLUMNS)
        chunk_columns = ", ".join(CHUNK_COLUMNS)
        with write_transaction(self.db) as db:
            db.execute(f"INSERT INTO quarantine_states ({columns}, reason, quarantined) "
                       f"SELECT {columns}, ?, ? FROM states WHERE id = ?", [reason, time.time(), state_id])
            db.execute(f"INSERT INTO quarantine_chunks ({chunk_columns}) "
                       f"SELECT {chunk_columns} FROM chunks WHERE state_id = ?", [state_id])
            self._delete_state(state_id)

    # -- listing and clearing

    def entries(self) -> list[dict]:
        """Stored states, most recently used first (no tensor data)."""
        columns = ("id, sha256, title, path, model_id, model_revision, dtype, prefix_tokens, storage_format, "
                   "format_version, stored_bytes, created, last_used")
        return self._guarded(lambda: self._rows(f"SELECT {columns} FROM states ORDER BY last_used DESC"), [])

    def quarantined(self) -> list[dict]:
        return self._guarded(lambda: self._rows(
            "SELECT id, sha256, title, storage_format, format_version, stored_bytes, reason, quarantined "
            "FROM quarantine_states ORDER BY quarantined DESC"), [])

    def _rows(self, sql: str) -> list[dict]:
        cursor = self.db.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def used_bytes(self) -> int:
        return self._guarded(self._used_bytes, 0)

    def remove(self, key: StateKey) -> bool:
        """Remove one stored state (its space is reused by the next ones); whether there was one."""
        def remove() -> bool:
            with write_transaction(self.db) as db:
                found = db.execute("SELECT id FROM states WHERE key = ?", [key.digest()]).fetchone()
                if found:
                    self._delete_state(found[0])
            return bool(found)
        return self._guarded(remove, False)

    def clear(self, sha256: str | None = None) -> tuple[int, int]:
        """Remove stored states (all, or one document's) and quarantined data, and give the space back to the
        disk; returns (states, bytes) removed."""
        return self._guarded(lambda: self._clear(sha256), (0, 0))

    def _clear(self, sha256: str | None) -> tuple[int, int]:
        where, args = ("WHERE sha256 = ?", [sha256]) if sha256 else ("", [])
        with write_transaction(self.db) as db:
            count, size = db.execute(f"SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM states {where}",
                                     args).fetchone()
            db.execute(f"DELETE FROM chunks WHERE state_id IN (SELECT id FROM states {where})", args)
            db.execute(f"DELETE FROM states {where}", args)
            quarantined = db.execute(f"SELECT COALESCE(SUM(stored_bytes), 0) FROM quarantine_states {where}",
                                     args).fetchone()[0]
            db.execute(f"DELETE FROM quarantine_chunks WHERE state_id IN (SELECT id FROM quarantine_states {where})",
                       args)
            db.execute(f"DELETE FROM quarantine_states {where}", args)
        reclaim_space(self.db)
        return count, size + quarantined


def _joined(parts: list[torch.Tensor], layer: int, kind: str) -> torch.Tensor:
    """A layer's keys or values from its chunks in token order (each (1, H_kv, T, D))."""
    if len({(part.shape[1], part.shape[3]) for part in parts}) != 1:
        raise ChunkUnreadable(f"layer {layer} {kind}: its parts have different shapes")
    return torch.cat(parts, dim=2)


def _mb(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"
