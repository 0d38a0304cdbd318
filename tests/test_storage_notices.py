"""A cache problem is told once in a terminal: as a note with the answer, not again by a logging warning."""
from __future__ import annotations

import sqlite3

import pytest

from test_storage_readonly import ask_twice, docfocus, home  # noqa: F401  (home: the shared data-folder fixture)


def flip_a_stored_byte(path) -> None:
    db = sqlite3.connect(path)
    with db:  # one byte of one chunk, keeping its recorded checksum
        rowid, data = db.execute("SELECT rowid, data FROM chunks LIMIT 1").fetchone()
        db.execute("UPDATE chunks SET data = ? WHERE rowid = ?", [bytes([data[0] ^ 0xFF]) + data[1:], rowid])
    db.close()


@pytest.mark.parametrize("damage, told", [
    ("file", "could not be used (it is not a SQLite database"),
    ("state", "A cached document state was damaged (checksum mismatch"),
])
def test_a_cache_problem_is_told_once(home, tiny_model_dir, fact_pdf, damage, told):
    if damage == "file":
        (home / "states.sqlite").write_bytes(b"this is not a database at all\n" * 100)
    else:
        flip_a_stored_byte(home / "states.sqlite")
    result = ask_twice([], home, tiny_model_dir, fact_pdf)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(told) == 1, result.stderr
    assert [line.startswith("Note: ") for line in result.stderr.splitlines() if told in line] == [True]


def test_a_damaged_library_is_told_once_by_the_history_command(home, fact_pdf):
    (home / "library.sqlite").write_bytes(b"garbage, not a database" * 50)
    shown = docfocus([], home, "history", str(fact_pdf))
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.count("could not be used (it is not a SQLite database") == 1, shown.stderr
