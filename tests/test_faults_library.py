"""Issue 23, item 3: a row of library.sqlite that cannot be read is skipped or repaired and said, never a crash,
and nothing else in the library is lost."""
from __future__ import annotations

import json
import sqlite3

import pytest
from test_state_cache import _answer, make_engine

from engine.ingest.extract import file_sha256
from engine.library.documents import Library
from engine.store.history import History, damaged_notice

from test_storage_readonly import ask_twice, docfocus, home  # noqa: F401  (home: a data folder after one answer)


def sql(path, statement: str, args=()) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(statement, args)
    db.close()


def test_a_garbage_ingest_report_is_read_again_from_the_file_and_said_once(home, tiny_model_dir, fact_pdf):
    sql(home / "library.sqlite", "UPDATE ingest_reports SET report = ?", ["\x00garbage{"])
    result = ask_twice([], home, tiny_model_dir, fact_pdf)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2  # both questions answered
    told = "The library's copy of Observatory notes could not be read"
    assert result.stderr.count(told) == 1 and "read again from its file" in result.stderr, result.stderr
    library = Library(home / "library.sqlite")
    sha = file_sha256(fact_pdf)
    assert json.loads(library.db.execute("SELECT report FROM ingest_reports").fetchone()[0])["format"] == "PDF"
    assert library.load(sha) is not None and library.take_notices() == []  # repaired
    assert len(History(library.db).entries(sha)) == 3  # the history is kept, the new answers added
    again = ask_twice([], home, tiny_model_dir, fact_pdf)
    assert again.returncode == 0 and told not in again.stderr


def test_unreadable_history_evidence_is_shown_without_it_and_said(home, fact_pdf):
    sql(home / "library.sqlite", "UPDATE history SET evidence = '{not json'")
    before = (home / "library.sqlite").read_bytes()
    shown = docfocus([], home, "history", str(fact_pdf))
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "Q: What is the launch code?" in shown.stdout and "A: " in shown.stdout
    assert "Note: 1 answer in this chat history had parts that could not be read (evidence)" in shown.stderr
    as_json = docfocus([], home, "history", str(fact_pdf), "--json")
    entry = json.loads(as_json.stdout.splitlines()[0])
    assert as_json.returncode == 0 and entry["evidence"] == [] and entry["damaged"] == ["evidence"]
    assert entry["citations"] and entry["question"] == "What is the launch code?"
    assert (home / "library.sqlite").read_bytes() == before  # shown, not rewritten


@pytest.mark.parametrize("column, value, damaged", [
    ("evidence", "[1, 2]", ["evidence"]),
    ("citations", '[{"page": 1}]', ["citations"]),
    ("highlights", "null-ish", ["highlights"]),
    ("attention", "[]", ["attention"]),
    ("model", b"\xff\xfe", ["model"]),
    ("token_scores", b"TSQ1 garbage", ["token_scores"]),
    ("token_scores", "text, not bytes", ["token_scores"]),
    ("question", b"\x00\x01", ["question"]),
    ("finish", "exploded", []),
])
def test_every_part_of_a_history_row_that_cannot_be_read_is_left_out_and_named(tmp_path, column, value, damaged):
    library = Library(tmp_path / "library.sqlite")
    history = History(library.db)
    history.record(_answer("a" * 64, "first"))
    history.record(_answer("a" * 64, "second"))
    sql(tmp_path / "library.sqlite", f"UPDATE history SET {column} = ? WHERE question = 'first'", [value])
    first, second = History(Library(tmp_path / "library.sqlite").db).entries("a" * 64)
    assert first["damaged"] == damaged and second["damaged"] == []
    assert second["evidence"][0]["page"] == 1 and second["question"] == "second"
    assert first["finish"] == "complete" and isinstance(first["answer"], str)
    assert (damaged_notice([first, second]) is None) == (not damaged)


@pytest.mark.parametrize("table, change", [
    ("words", "UPDATE words SET x0 = 'left' WHERE idx = 3"),
    ("words", "UPDATE words SET page = 40 WHERE idx = 5"),
    ("pages", "DELETE FROM pages"),
    ("ingest_reports", "UPDATE ingest_reports SET report = '[1, 2]'"),
    ("ingest_reports", "UPDATE ingest_reports SET report = '{\"ocr\": {\"no such field\": 1}}'"),
    ("documents", "UPDATE documents SET text = NULL"),
])
def test_a_stored_copy_that_cannot_be_read_is_read_again_and_repaired(tiny_model_dir, tmp_path, fact_pdf, table,
                                                                       change):
    engine = make_engine(tiny_model_dir, tmp_path)
    doc = engine.open_document(fact_pdf)
    engine.ask(doc, "What is the launch code?")
    sql(tmp_path / "library.sqlite", change)
    again = make_engine(tiny_model_dir, tmp_path)
    answer = again.ask(again.open_document(fact_pdf), "What is the launch code?")
    assert "The library's copy of Observatory notes could not be read" in answer.notice
    assert again.library.load(doc.sha256).text == doc.ingested.text  # stored anew
    assert len(again.history(doc.sha256)) == 2


def test_an_unreadable_ocr_row_is_recognised_again(tmp_path):
    library = Library(tmp_path / "library.sqlite")
    sql(tmp_path / "library.sqlite", "INSERT INTO ocr_pages VALUES ('a', 0, 'auto', 'e', '{not json', 0)")
    assert library.get_ocr("a", 0, "auto") is None
