"""Damaged or not: a database SQLite can open and check is kept; a really damaged one is moved aside with
a message that says where it went and how to get its history back."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import torch
from test_state_cache import _answer, docfocus, make_key, random_layers

from engine.ingest.extract import file_sha256
from engine.library.documents import Library
from engine.store import state_cache as sc
from engine.store.history import History

import pdfs


def copy_as_killed_mid_checkpoint(path: Path, writer: sqlite3.Connection, copy: Path) -> None:
    """Copy ``path`` to ``copy`` as a kill during a WAL checkpoint leaves it.

    ``writer`` is the open connection that committed into the WAL (not checkpointed yet). The copy's -wal
    file holds every commit; its database file has the checkpoint's first pages (a header with the new
    page count) but not the last page, which the checkpoint had not written yet.
    """
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path.with_name(path.name + "-wal"), copy.with_name(copy.name + "-wal"))
    writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    page_size = writer.execute("PRAGMA page_size").fetchone()[0]
    copy.write_bytes(path.read_bytes()[:-page_size])


def header_pages(path: Path) -> int:
    header = path.read_bytes()[:100]
    page_size = int.from_bytes(header[16:18], "big")
    return int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)


def test_a_cache_killed_mid_checkpoint_is_kept_with_all_its_states(tmp_path):
    live = tmp_path / "live" / "states.sqlite"
    live.parent.mkdir()
    cache = sc.StateCache(live)
    cache.store(make_key(sha="a" * 64, tokens=300), random_layers(tokens=300, seed=0), torch.zeros(2))
    reader = sqlite3.connect(live)  # another process reading: no checkpoint can go past its snapshot
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM states").fetchall()
    for seed, name in enumerate("bc", start=1):
        cache.store(make_key(sha=name * 64, tokens=300), random_layers(tokens=300, seed=seed), torch.zeros(2))
    reader.close()
    copy = tmp_path / "after-kill" / "states.sqlite"
    copy_as_killed_mid_checkpoint(live, cache.db.conn, copy)
    assert header_pages(copy) > copy.stat().st_size  # what the size check alone took for truncation
    reopened = sc.StateCache(copy)
    restored = reopened.load(make_key(sha="c" * 64, tokens=300), torch.float32)
    assert restored is not None and torch.equal(restored.layers[1][0], random_layers(tokens=300, seed=2)[1][0])
    assert sorted(entry["sha256"][0] for entry in reopened.entries()) == ["a", "b", "c"]
    assert reopened.take_notices() == []
    assert list(copy.parent.glob("*.damaged-*")) == []


def _library_with_answers(path: Path, sha: str, count: int) -> Library:
    library = Library(path)
    history = History(library.db)
    for index in range(count):
        history.record(_answer(sha, f"question {index}"))
    return library


def test_a_library_killed_mid_checkpoint_keeps_its_history(tmp_path):
    pdf = pdfs.fact_pdf(tmp_path / "facts.pdf")
    sha = file_sha256(pdf)
    live = tmp_path / "live" / "library.sqlite"
    live.parent.mkdir()
    library = _library_with_answers(live, sha, 19)
    home = tmp_path / "after-kill"
    copy_as_killed_mid_checkpoint(live, library.db.conn, home / "library.sqlite")
    assert header_pages(home / "library.sqlite") > (home / "library.sqlite").stat().st_size
    shown = docfocus(home, "history", str(pdf))
    assert shown.returncode == 0, shown.stderr
    assert [line for line in shown.stdout.splitlines() if line.startswith("Q: ")] == \
        [f"Q: question {index}" for index in range(19)]
    assert "moved aside" not in shown.stderr and list(home.glob("*.damaged-*")) == []


def _truncate_tail(path: Path, pages: int) -> None:
    page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - pages * page_size)


def _add_words(library: Library, count: int = 20_000) -> None:
    """Words of another document: they fill the file's last pages."""
    library.db["words"].insert_all(({"sha256": "f" * 64, "idx": index, "page": 0, "x0": 0.0, "y0": 0.0, "x1": 1.0,
                                     "y1": 1.0, "text": f"word{index}", "start": 0, "end": 1}
                                    for index in range(count)), batch_size=2000)


def test_a_damaged_library_is_moved_aside_and_its_history_copied_into_the_new_one(tmp_path):
    pdf = pdfs.fact_pdf(tmp_path / "facts.pdf")
    sha = file_sha256(pdf)
    home = tmp_path / "home"
    home.mkdir()
    library = _library_with_answers(home / "library.sqlite", sha, 19)
    _add_words(library)
    library.db.conn.close()
    _truncate_tail(home / "library.sqlite", 3)
    damaged_bytes = (home / "library.sqlite").read_bytes()
    assert header_pages(home / "library.sqlite") > len(damaged_bytes)

    shown = docfocus(home, "history", str(pdf))
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert [line for line in shown.stdout.splitlines() if line.startswith("Q: ")] == \
        [f"Q: question {index}" for index in range(19)]
    aside = list(home.glob("library.sqlite.damaged-*"))  # and no empty -wal or -shm left beside it
    assert len(aside) == 1 and aside[0].read_bytes() == damaged_bytes  # kept, byte for byte
    assert shown.stderr.count("Note: The library") == 1  # said once
    assert f"moved to {aside[0]} (nothing was deleted)" in shown.stderr
    assert "its chat history (19 answers) was copied into the new one" in shown.stderr


def _page_holding(path: Path, marker: bytes) -> int:
    data = path.read_bytes()
    assert data.count(marker) == 1, marker
    return data.index(marker) // sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]


def test_answers_on_an_unreadable_page_are_skipped_and_the_others_copied(tmp_path):
    path = tmp_path / "library.sqlite"
    library = Library(path)
    history = History(library.db)
    for index in range(19):
        history.record(_answer("a" * 64, f"question {index} " + "x" * 1500))  # one answer per 4 KB page
    _add_words(library)
    library.db.conn.close()
    page = _page_holding(path, b"answer to question 7 ")
    with open(path, "r+b") as handle:
        handle.seek(page * 4096)
        handle.write(bytes(range(256)) * 16)
    _truncate_tail(path, 3)
    reopened = Library(path)
    kept = [entry["question"].split()[1] for entry in History(reopened.db).entries("a" * 64)]
    assert kept == [str(index) for index in range(19) if index != 7]
    notices = reopened.take_notices()
    assert len(notices) == 1 and f"the {len(kept)} answers of its chat history that could still be read" in notices[0]
    assert "the rest stays in the moved file" in notices[0]


def test_a_damaged_cache_message_names_the_full_path_of_the_moved_file(tmp_path):
    path = tmp_path / "states.sqlite"
    path.write_bytes(b"this is not a database at all\n" * 100)
    cache = sc.StateCache(path)
    assert cache.load(make_key(), torch.float32) is None
    aside = list(tmp_path.glob("states.sqlite.damaged-*"))
    notices = cache.take_notices()
    assert len(aside) == 1 and len(notices) == 1
    assert str(aside[0]) in notices[0] and "not a SQLite database" in notices[0]
    assert cache.store(make_key(), random_layers(), torch.zeros(2)) > 0  # a new cache works at once
