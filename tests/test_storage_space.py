"""Freed cache space goes back to the disk: real states.sqlite files, measured on disk."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import torch
from test_state_cache import docfocus, make_key, random_layers

from engine.store import state_cache as sc

PAGE = sc.PAGE_SIZE


def on_disk(path: Path) -> int:
    """The database's bytes on disk, its write-ahead log included."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def fill(path: Path, names: str, tokens: int = 1000) -> sc.StateCache:
    cache = sc.StateCache(path, cap_bytes=1 << 40)
    for seed, name in enumerate(names):  # about 8 MB each
        cache.store(make_key(sha=name * 64, tokens=tokens), random_layers(layers=4, heads=4, tokens=tokens, dim=64,
                                                                          seed=seed), torch.zeros(4))
    return cache


def pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_cache_clear_gives_the_space_back_to_the_disk(tmp_path):
    path = tmp_path / "states.sqlite"
    fill(path, "abc").close()
    before = on_disk(path)
    cleared = docfocus(tmp_path, "cache", "clear")
    assert cleared.returncode == 0 and "Removed 3 stored states" in cleared.stdout, cleared.stderr
    after = on_disk(path)
    assert before > 24 * 1024**2
    assert after <= 16 * PAGE, (before, after)  # the empty schema: a few 64 KB pages


def test_clearing_one_document_gives_its_share_back(tmp_path):
    path = tmp_path / "states.sqlite"
    cache = fill(path, "abc")
    share = cache.entries()[0]["stored_bytes"]
    cache.close()
    before = on_disk(path)
    cache = sc.StateCache(path)
    assert cache.clear("b" * 64) == (1, share)
    assert on_disk(path) < before - 0.95 * share  # at once, with the connection still open (as in the window)
    cache.close()
    assert on_disk(path) < before - 0.95 * share
    assert sc.StateCache(path).load(make_key(sha="c" * 64, tokens=1000), torch.float32) is not None


def test_an_older_cache_without_incremental_vacuum_is_converted_once_half_of_it_is_free(tmp_path):
    path = tmp_path / "states.sqlite"
    fill(path, "abc").close()
    conn = sqlite3.connect(path, isolation_level=None)  # as a cache file made without incremental auto-vacuum
    conn.execute("PRAGMA auto_vacuum=NONE")
    conn.execute("VACUUM")
    conn.close()
    assert pragma(path, "auto_vacuum") == 0

    cache = sc.StateCache(path)
    cache.clear("a" * 64)  # a third free: the freed pages stay for reuse, no full rewrite yet
    cache.close()
    assert pragma(path, "auto_vacuum") == 0 and pragma(path, "freelist_count") > 0
    before = on_disk(path)
    cache = sc.StateCache(path)
    cache.clear("b" * 64)  # two thirds free: converted, and the file shrinks
    cache.close()
    assert pragma(path, "auto_vacuum") == 2 and pragma(path, "freelist_count") == 0
    assert on_disk(path) < before / 2
    assert sc.StateCache(path).load(make_key(sha="c" * 64, tokens=1000), torch.float32) is not None
