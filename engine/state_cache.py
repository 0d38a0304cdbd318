"""The document state cache: a document's per-layer key/value tensors in SQLite.

Reading a document (prefill) is the slow step; this cache stores its result so
a later question, in this run or after a restart, restores it instead.

Where: ``states.sqlite`` beside the library database. The states are large
(tens of KB per document token) and disposable; keeping them in their own file
means a damaged or evicted cache never touches the library or chat history,
and freed space goes back to the disk (incremental vacuum) without locking the
library.

Layout: one ``states`` row per stored state and its tensors in ``chunks`` rows
(one per layer, K or V, and token span, at most ``CHUNK_BYTES`` each: far below
SQLite's BLOB limit), each chunk with its shape, stored dtype, byte count and
CRC-32. A state is written in one transaction, so a crash leaves all of it or
none. Bad rows (checksum mismatch, missing chunks, older format) are moved into
``quarantine_*`` tables, never silently deleted; quarantined data is the first
thing evicted when space is needed.

Storage formats:
- ``model``: the model's own dtype, bit-exact;
- ``fp16``: float16 (half of an fp32 CPU model's size; same as ``model`` on GPU);
- ``int8``: symmetric 8-bit with one float16 scale per block of 64 values: keys
  per channel over 64-token blocks (key outliers live in channels), values per
  token over the head dimension. About 53% of fp16.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import sqlite_utils
import torch

from .dbfile import damaged_reason, is_damage, set_aside

log = logging.getLogger("docfocus.cache")

FORMAT_VERSION = 1
FORMATS = ("model", "fp16", "int8")
DEFAULT_FORMAT = "model"
CHUNK_BYTES = 4 * 1024 * 1024
QUANT_BLOCK = 64  # values sharing one int8 scale
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 65536  # large pages: fewer overflow pages per BLOB, faster reads

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                 "float64": torch.float64, "int8": torch.int8}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


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


# ---------------------------------------------------------------- database file


def _connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                           isolation_level=None)  # explicit BEGIN IMMEDIATE / COMMIT below
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:  # new file: settings that need an empty database
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL after a large state is checkpointed
    return sqlite_utils.Database(conn)


_STATE_COLUMNS = {"id": int, "key": str, "sha256": str, "title": str, "path": str, "model_id": str,
                  "model_revision": str, "dtype": str, "prefix_tokens": int, "layout_hash": str,
                  "storage_format": str, "variant": str, "format_version": int, "layers": int, "chunks": int,
                  "stored_bytes": int, "logits": bytes, "created": float, "last_used": float}
_CHUNK_COLUMNS = {"state_id": int, "layer": int, "kind": str, "part": int, "start": int, "shape": str,
                  "dtype": str, "nbytes": int, "checksum": int, "data": bytes, "scales": bytes}


_SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "FLOAT", bytes: "BLOB"}


def _create_schema(db: sqlite_utils.Database) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db["meta"].create({"name": str, "value": str}, pk="name", if_not_exists=True)
        # AUTOINCREMENT: an id is never reused, so quarantined chunks stay tied to their own state
        columns = ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in _STATE_COLUMNS.items() if name != "id")
        db.execute(f"CREATE TABLE IF NOT EXISTS states (id INTEGER PRIMARY KEY AUTOINCREMENT, {columns})")
        db["chunks"].create(_CHUNK_COLUMNS, pk=("state_id", "layer", "kind", "part"), if_not_exists=True)
        extra = {"reason": str, "quarantined": float}
        db["quarantine_states"].create({**_STATE_COLUMNS, **extra}, if_not_exists=True)
        db["quarantine_chunks"].create(_CHUNK_COLUMNS, if_not_exists=True)
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS states_key ON states(key)")
        db.execute("CREATE INDEX IF NOT EXISTS states_sha ON states(sha256)")
        db.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('format_version', ?)", [str(FORMAT_VERSION)])
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


# ---------------------------------------------------------------- tensor encoding


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()


def _from_bytes(data: bytes, dtype: str, shape: list[int]) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=_TORCH_DTYPES[dtype]).view(shape)


def quantize_int8(tensor: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one fp16 scale per block of QUANT_BLOCK values along ``axis`` (2: tokens, 3: channels).

    tensor (1, H, T, D) -> (q int8 (1, H, T, D), scales fp16 (1, H, ceil(T/64), D) or (1, H, T, ceil(D/64))).
    """
    x = tensor.detach().float().cpu()
    size = x.shape[axis]
    pad = (-size) % QUANT_BLOCK
    moved = x.movedim(axis, -1)  # (..., N)
    if pad:
        moved = torch.nn.functional.pad(moved, (0, pad))
    blocks = moved.reshape(*moved.shape[:-1], -1, QUANT_BLOCK)  # (..., N/64, 64)
    scales = (blocks.abs().amax(-1, keepdim=True) / 127.0).to(torch.float16).float()
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = torch.clamp(torch.round(blocks / safe), -127, 127).to(torch.int8)
    q = q.reshape(*moved.shape)[..., :size].movedim(-1, axis).contiguous()
    return q, scales.squeeze(-1).to(torch.float16).movedim(-1, axis).contiguous()


def dequantize_int8(q: torch.Tensor, scales: torch.Tensor, axis: int) -> torch.Tensor:
    """Inverse of ``quantize_int8`` (float32)."""
    expanded = scales.float().repeat_interleave(QUANT_BLOCK, dim=axis)
    expanded = expanded.narrow(axis, 0, q.shape[axis])
    return q.float() * expanded


def _axis(kind: str) -> int:
    return 2 if kind == "k" else 3  # keys: per channel over token blocks; values: per token over channels


def encode_chunk(tensor: torch.Tensor, kind: str, storage_format: str) -> dict:
    """One (1, H, T, D) slice -> a chunk row without its ids (data, scales, shape, dtype, nbytes, checksum)."""
    scales = b""
    if storage_format == "int8":
        q, s = quantize_int8(tensor, _axis(kind))
        data, dtype, scales = _raw_bytes(q), "int8", _raw_bytes(s)
    elif storage_format == "fp16":
        data, dtype = _raw_bytes(tensor.to(torch.float16)), "float16"
    else:
        data, dtype = _raw_bytes(tensor), dtype_name(tensor.dtype)
    return {"shape": json.dumps(list(tensor.shape)), "dtype": dtype, "nbytes": len(data) + len(scales),
            "checksum": zlib.crc32(scales, zlib.crc32(data)), "data": data, "scales": scales}


def decode_chunk(row: dict, model_dtype: torch.dtype) -> torch.Tensor:
    shape = json.loads(row["shape"])
    if row["dtype"] == "int8":
        q = _from_bytes(row["data"], "int8", shape)
        axis = _axis(row["kind"])
        scale_shape = list(shape)
        scale_shape[axis] = -(-shape[axis] // QUANT_BLOCK)
        scales = _from_bytes(row["scales"], "float16", scale_shape)
        return dequantize_int8(q, scales, axis).to(model_dtype)
    return _from_bytes(row["data"], row["dtype"], shape).to(model_dtype)


def _token_spans(length: int, bytes_per_token: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_BYTES // max(1, bytes_per_token))
    return [(start, min(length, start + step)) for start in range(0, length, step)]


# ---------------------------------------------------------------- the cache


class StateCache:
    """Stored document states in ``path`` with a size cap and least-recently-used eviction.

    Every public method survives a damaged database: the file is moved aside (``notices`` says so
    once) and the call behaves as on an empty cache.
    """

    def __init__(self, path: str | Path, cap_bytes: int = 4 * 1024**3) -> None:
        self.path = Path(path)
        self.cap_bytes = int(cap_bytes)
        self.notices: list[str] = []
        self._db: sqlite_utils.Database | None = None

    # -- connection and damage handling

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            reason = damaged_reason(self.path)
            if reason:
                self.notices.append(set_aside(self.path, reason)[1])
            try:
                self._db = _connect(self.path)
                _create_schema(self._db)
            except sqlite3.DatabaseError as error:
                if not is_damage(error):
                    raise
                self._close()
                self.notices.append(set_aside(self.path, str(error))[1])
                self._db = _connect(self.path)
                _create_schema(self._db)
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    def close(self) -> None:
        self._close()

    def _guarded(self, action: Callable, fallback):
        """Run ``action``; if the database turns out damaged, move it aside and return ``fallback``."""
        try:
            return action()
        except sqlite3.DatabaseError as error:
            if not is_damage(error):
                raise
            self._close()
            if self.path.exists():
                self.notices.append(set_aside(self.path, str(error))[1])
            return fallback

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    # -- reading

    def load(self, key: StateKey, model_dtype: torch.dtype,
             devices: list[torch.device] | None = None) -> RestoredState | None:
        """The stored state for ``key`` as tensors in ``model_dtype`` (on ``devices[layer]``), or None."""
        return self._guarded(lambda: self._load(key, model_dtype, devices), None)

    def _load(self, key: StateKey, model_dtype: torch.dtype, devices) -> RestoredState | None:
        db = self.db
        cursor = db.execute("SELECT * FROM states WHERE key = ?", [key.digest()])
        row = cursor.fetchone()
        if row is None:
            return None
        state = dict(zip([c[0] for c in cursor.description], row))
        if state["format_version"] != FORMAT_VERSION:
            self._quarantine(state["id"], f"format version {state['format_version']}, expected {FORMAT_VERSION}")
            return None
        cursor = db.execute("SELECT * FROM chunks WHERE state_id = ? ORDER BY layer, kind, part", [state["id"]])
        names = [c[0] for c in cursor.description]
        parts: dict[tuple[int, str], list[torch.Tensor]] = {}
        count = 0
        for values in cursor:
            chunk = dict(zip(names, values))
            count += 1
            data, scales = chunk["data"] or b"", chunk["scales"] or b""
            if len(data) + len(scales) != chunk["nbytes"] or zlib.crc32(scales, zlib.crc32(data)) != chunk["checksum"]:
                cursor.close()
                self._quarantine(state["id"], f"checksum mismatch in layer {chunk['layer']} {chunk['kind']} "
                                              f"part {chunk['part']}")
                return None
            parts.setdefault((chunk["layer"], chunk["kind"]), []).append(decode_chunk(chunk, model_dtype))
        if count != state["chunks"] or len(parts) != 2 * state["layers"]:
            self._quarantine(state["id"], f"incomplete: {count} of {state['chunks']} chunks")
            return None
        layers = []
        for layer in range(state["layers"]):
            device = devices[layer] if devices else torch.device("cpu")
            keys = torch.cat(parts[(layer, "k")], dim=2).to(device)  # (1, H_kv, L, D)
            values = torch.cat(parts[(layer, "v")], dim=2).to(device)
            # a sliding-window layer holds fewer tokens than the prefix, never more
            if keys.shape[2] > key.prefix_tokens or keys.shape[2] != values.shape[2]:
                self._quarantine(state["id"], f"layer {layer} holds {keys.shape[2]} tokens for a "
                                              f"{key.prefix_tokens}-token prefix")
                return None
            layers.append((keys, values))
        logits = torch.from_numpy(np.frombuffer(state["logits"], dtype=np.float32).copy())
        self._touch(state["id"])
        return RestoredState(layers, logits.to(devices[-1] if devices else "cpu"), state["stored_bytes"])

    def _touch(self, state_id: int) -> None:
        try:
            self.db.execute("UPDATE states SET last_used = ? WHERE id = ?", [time.time(), state_id])
        except sqlite3.OperationalError as error:  # busy for 30 s: the state is still good to use
            log.warning("could not record cache use: %s", error)

    # -- writing

    def store(self, key: StateKey, layers: list[tuple[torch.Tensor, torch.Tensor]], last_logits: torch.Tensor,
              title: str = "", path: str = "") -> int:
        """Write one state in one transaction, evicting least-recently-used states to stay under the cap.

        ``layers``: per layer (keys, values), each (1, H_kv, L, D). Returns the stored byte count.
        Raises StateTooLarge when it cannot fit (cap or disk); the cache is then unchanged.
        """
        assert key.storage_format in FORMATS, key.storage_format
        encoded = self._encode(key.storage_format, layers)
        stored = sum(row["nbytes"] for row in encoded)
        logits = last_logits.detach().float().cpu().numpy().astype(np.float32).tobytes()
        total = stored + len(logits)
        if total > self.cap_bytes:
            raise StateTooLarge(f"The document's state ({_mb(total)}) is larger than the cache's size cap "
                                f"({_mb(self.cap_bytes)}); it was not saved, so the document will be read again "
                                f"next time. Raise the cap to keep it.")
        free = shutil.disk_usage(self.path.parent).free
        if total * 2 > free:  # the WAL holds a second copy until it is checkpointed
            raise StateTooLarge(f"Not enough free disk space to save the document's state ({_mb(total)} needed, "
                                f"{_mb(free)} free); the document will be read again next time.")
        row = {"key": key.digest(), **asdict(key), "title": title, "path": path, "format_version": FORMAT_VERSION,
               "layers": len(layers), "chunks": len(encoded), "stored_bytes": total, "logits": logits,
               "created": time.time(), "last_used": time.time()}
        return self._guarded(lambda: self._write(row, encoded), 0)

    @staticmethod
    def _encode(storage_format: str, layers) -> list[dict]:
        rows = []
        for layer, (keys, values) in enumerate(layers):
            for kind, tensor in (("k", keys), ("v", values)):
                assert tensor.dim() == 4 and tensor.shape[0] == 1, tuple(tensor.shape)  # (1, H_kv, L, D)
                per_token = tensor.shape[1] * tensor.shape[3] * tensor.element_size()
                for part, (start, end) in enumerate(_token_spans(tensor.shape[2], per_token)):
                    chunk = encode_chunk(tensor[:, :, start:end], kind, storage_format)
                    rows.append({"layer": layer, "kind": kind, "part": part, "start": start, **chunk})
        return rows

    def _write(self, row: dict, chunks: list[dict]) -> int:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # take the write lock now: waits (busy timeout) instead of failing later
        try:
            self._evict_for(row["stored_bytes"], keep_key=row["key"])
            old = db.execute("SELECT id FROM states WHERE key = ?", [row["key"]]).fetchone()
            if old:
                self._delete_state(old[0])
            columns = ", ".join(row)
            cursor = db.execute(f"INSERT INTO states ({columns}) VALUES ({', '.join('?' * len(row))})",
                                list(row.values()))
            state_id = cursor.lastrowid
            names = list(_CHUNK_COLUMNS)
            sql = f"INSERT INTO chunks ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            for chunk in chunks:
                db.execute(sql, [state_id if n == "state_id" else chunk[n] for n in names])
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if db.conn.in_transaction:  # SQLite has already rolled back after some errors (disk full)
                db.execute("ROLLBACK")
            if "full" in str(error).lower():
                raise StateTooLarge(f"The disk is full; the document's state ({_mb(row['stored_bytes'])}) was not "
                                    f"saved, so the document will be read again next time.") from error
            raise
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._reclaim()
        return row["stored_bytes"]

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

    def _reclaim(self) -> None:
        """Give freed pages back to the disk (the database was created with incremental auto-vacuum)."""
        try:
            self.db.execute("PRAGMA incremental_vacuum")
        except sqlite3.OperationalError as error:
            log.info("incremental vacuum skipped: %s", error)

    def _quarantine(self, state_id: int, reason: str) -> None:
        """Move a bad state and its chunks into the quarantine tables (one transaction)."""
        db = self.db
        message = f"A cached document state was damaged ({reason}); it was set aside and the document is read again."
        log.warning(message)
        self.notices.append(message)
        columns = ", ".join(_STATE_COLUMNS)
        chunk_columns = ", ".join(_CHUNK_COLUMNS)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"INSERT INTO quarantine_states ({columns}, reason, quarantined) "
                       f"SELECT {columns}, ?, ? FROM states WHERE id = ?", [reason, time.time(), state_id])
            db.execute(f"INSERT INTO quarantine_chunks ({chunk_columns}) "
                       f"SELECT {chunk_columns} FROM chunks WHERE state_id = ?", [state_id])
            self._delete_state(state_id)
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- listing and clearing

    def entries(self) -> list[dict]:
        """Stored states, most recently used first (no tensor data)."""
        def query():
            columns = ("id, sha256, title, path, model_id, model_revision, dtype, prefix_tokens, storage_format, "
                       "format_version, stored_bytes, created, last_used")
            cursor = self.db.execute(f"SELECT {columns} FROM states ORDER BY last_used DESC")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor]
        return self._guarded(query, [])

    def quarantined(self) -> list[dict]:
        def query():
            cursor = self.db.execute("SELECT id, sha256, title, storage_format, format_version, stored_bytes, reason, "
                                     "quarantined FROM quarantine_states ORDER BY quarantined DESC")
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor]
        return self._guarded(query, [])

    def used_bytes(self) -> int:
        return self._guarded(self._used_bytes, 0)

    def clear(self, sha256: str | None = None) -> tuple[int, int]:
        """Remove stored states (all, or one document's) and quarantined data; returns (states, bytes) removed."""
        def action():
            db = self.db
            where, args = ("WHERE sha256 = ?", [sha256]) if sha256 else ("", [])
            db.execute("BEGIN IMMEDIATE")
            try:
                count, size = db.execute(f"SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM states {where}",
                                         args).fetchone()
                db.execute(f"DELETE FROM chunks WHERE state_id IN (SELECT id FROM states {where})", args)
                db.execute(f"DELETE FROM states {where}", args)
                q_size = db.execute(f"SELECT COALESCE(SUM(stored_bytes), 0) FROM quarantine_states {where}",
                                    args).fetchone()[0]
                db.execute(f"DELETE FROM quarantine_chunks WHERE state_id IN "
                           f"(SELECT id FROM quarantine_states {where})", args)
                db.execute(f"DELETE FROM quarantine_states {where}", args)
                db.execute("COMMIT")
            except BaseException:
                if db.conn.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._reclaim()
            return count, size + q_size
        return self._guarded(action, (0, 0))


def _mb(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"
