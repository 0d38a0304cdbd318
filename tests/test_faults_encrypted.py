"""Issue 23, item 8: a document that needs a password needs it in every process. Nothing derived from its content
(text, words, recognised pages, passage index, stored states, chat history) is written to disk, so a later
process must open the PDF again with its password; a copy an older DocFocus kept in clear is deleted."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
import torch
from test_state_cache import _answer, make_engine, make_key, random_layers

from engine.errors import PdfPasswordError
from engine.ingest.extract import PROTECTED_CLEANED, PROTECTED_NOTICE, file_sha256, ingest_pdf
from engine.library.documents import Library
from engine.store import state_cache as sc
from engine.store.history import History

import pdfs
from conftest import ROOT

SECRET = "the vault opens at midnight"
TABLES = ("documents", "pages", "words", "ingest_reports", "ocr_pages", "history")


def docfocus(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


def secret_pdf(path: Path, password: str = "s3cret") -> Path:
    """An encrypted PDF with a few pages of text, so it has words, passages and a stored reading worth keeping."""
    document = pymupdf.open()
    for number in range(3):
        page = document.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 520, 770), f"Page {number + 1}. {pdfs.FILLER} "
                                                            f"Classified: {SECRET}.", fontsize=11)
    document.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")
    return path


def rows_about(home: Path, sha: str) -> dict[str, int]:
    counts = {}
    db = sqlite3.connect(home / "library.sqlite")
    for table in TABLES:
        counts[table] = db.execute(f"SELECT COUNT(*) FROM {table} WHERE sha256 = ?", [sha]).fetchone()[0]
    passages = db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'passage%' AND type = 'table'").fetchall()
    counts["passage tables holding its text"] = sum(
        db.execute(f"SELECT COUNT(*) FROM {name} WHERE CAST(text AS TEXT) LIKE ?", [f"%{SECRET}%"]).fetchone()[0]
        for (name,) in passages if "text" in [c[1] for c in db.execute(f"PRAGMA table_info({name})")])
    db.close()
    return counts


def in_clear(home: Path) -> list[str]:
    """The files of the data folder (their -wal files too) that hold any piece of the document's text."""
    return [path.name for path in home.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]


def test_a_later_process_needs_the_password_and_nothing_is_kept_in_clear(tmp_path, tiny_model_dir):
    home, pdf = tmp_path / "home", secret_pdf(tmp_path / "secret.pdf")
    ask = ["--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "4"]
    first = docfocus(home, "ask", str(pdf), "When does the vault open?", "--password", "s3cret", *ask)
    assert first.returncode == 0 and first.stdout.strip(), first.stderr
    assert PROTECTED_NOTICE in first.stderr
    sha = file_sha256(pdf)
    assert rows_about(home, sha) == dict.fromkeys([*TABLES, "passage tables holding its text"], 0)
    assert sc.StateCache(home / "states.sqlite").entries() == []
    assert in_clear(home) == []

    without = docfocus(home, "ask", str(pdf), "When does the vault open?", *ask)
    assert without.returncode == 2 and "secret.pdf is encrypted" in without.stderr, without.stderr
    assert "--password" in without.stderr and not without.stdout.strip()
    wrong = docfocus(home, "ask", str(pdf), "When does the vault open?", "--password", "guess", *ask)
    assert wrong.returncode == 2 and "Wrong password for secret.pdf" in wrong.stderr
    again = docfocus(home, "ask", str(pdf), "When does the vault open?", "--password", "s3cret", *ask)
    assert again.returncode == 0 and again.stdout.strip() and in_clear(home) == []


def test_a_copy_an_older_version_kept_in_clear_is_deleted_and_the_history_kept(tmp_path, tiny_model_dir):
    pdf = secret_pdf(tmp_path / "secret.pdf")
    old = ingest_pdf(pdf, "s3cret")
    old.protected = False  # as every DocFocus before this one kept it
    library = Library(tmp_path / "library.sqlite")
    library.save(old)
    History(library.db).record(_answer(old.sha256, "an earlier question"))
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(sha=old.sha256), random_layers(), torch.zeros(2))
    cache.close()

    engine = make_engine(tiny_model_dir, tmp_path)
    with pytest.raises(PdfPasswordError):  # the old copy no longer answers without the password
        engine.open_document(pdf)
    assert rows_about(tmp_path, old.sha256)["documents"] == 0 and engine.state_cache.entries() == []
    answer = engine.ask(engine.open_document(pdf, password="s3cret"), "When does the vault open?")
    assert PROTECTED_CLEANED in answer.notice and PROTECTED_NOTICE in answer.notice
    assert [e["question"] for e in engine.history(old.sha256)] == ["an earlier question"]  # the user's, kept


def test_a_long_encrypted_document_keeps_no_segment_states_no_index_and_no_ocr(tmp_path, bundled_dir):
    from engine.api import Engine, EngineSettings

    from conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "small", bundled_dir, window=1024)
    document = pymupdf.open()
    for number in range(6):
        document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 770), pdfs.FILLER * 3 + f" {SECRET} {number}.",
                                           fontsize=10)
    document.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), pixmap=pymupdf.Pixmap(pymupdf.csGRAY, (0, 0, 600, 800), 0))
    pdf = tmp_path / "long-secret.pdf"
    document.save(pdf, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
    settings = EngineSettings(model=str(model), device="cpu").changed(
        answer={"max_new_tokens": 4, "focal_tokens": 64}, reading={"segment": 96, "overlap": 16})
    engine = Engine(settings, library=Library(tmp_path / "library.sqlite"))
    doc = engine.open_document(pdf, password="pw")
    assert doc.method == "select" and doc.ingested.protected
    assert engine.ask(doc, "What opens at midnight?").answer
    assert engine.state_cache.entries() == [] and engine.passage_index.doc_id(doc.sha256, engine.load().id) is None
    assert rows_about(tmp_path, doc.sha256) == dict.fromkeys([*TABLES, "passage tables holding its text"], 0)
    assert in_clear(tmp_path) == []  # the PDF itself is encrypted: its words are not in clear either
