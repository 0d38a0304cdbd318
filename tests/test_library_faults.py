"""Faults while the library or a question reads: a document removed while it is read keeps nothing and the
queue goes on; a process killed (kill -9) at any point of a reading leaves every database intact, and the next
run goes on from what was stored."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from test_library import QUESTION, library_folder, long_pdf, make_engine, small_model_dir  # noqa: F401 (fixture)

from conftest import ROOT


def test_a_document_removed_while_it_is_read_keeps_nothing_and_the_queue_goes_on(small_model_dir, tmp_path,
                                                                                  monkeypatch):
    folder = library_folder(tmp_path)
    engine = make_engine(small_model_dir, tmp_path)
    engine.library_add([folder / "manual.pdf", folder / "notes.pdf"])
    manual = engine.library_documents()[0]
    ingest = engine.ingest

    def removed_meanwhile(path, *args, **kwargs):  # another process removes it while this one reads it
        result = ingest(path, *args, **kwargs)
        if Path(path).name == "manual.pdf":
            engine.library_queue.remove(manual["id"])
        return result
    monkeypatch.setattr(engine, "ingest", removed_meanwhile)
    first = engine.library_read_next()
    assert first["state"] == "removed" and first["id"] == manual["id"]
    sha = first["sha256"]
    assert sha not in engine.passage_index.documents(engine.index_key)  # no orphan index
    second = engine.library_read_next()
    assert Path(second["path"]).name == "notes.pdf" and second["state"] == "ready"
    assert engine.library_read_next() is None
    assert "4417" in engine.ask_library(QUESTION).evidence[0].text


def docfocus_process(home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "app", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def intact(home: Path) -> None:
    for name in ("library.sqlite", "states.sqlite"):
        path = home / name
        if path.exists():
            with sqlite3.connect(path) as db:
                assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok", name


def test_kill_9_at_random_points_of_a_reading_leaves_everything_intact(small_model_dir, tmp_path):
    """20 runs of a question on a never-read long document, each killed at a random moment (model loading,
    ingest, indexing, reading segments, storing them, answering): every database passes SQLite's check after
    each kill, and a last run answers, reading only what no killed run had stored."""
    home, rng = tmp_path / "home", random.Random(7)
    path = long_pdf(tmp_path / "long.pdf")
    options = ["--model", str(small_model_dir), "--device", "cpu", "--max-new-tokens", "4", "--json"]
    questions = [QUESTION, "Which section is about item number 21?", "What is section 3 about?"]
    for run in range(20):
        process = docfocus_process(home, "ask", str(path), rng.choice(questions), *options)
        time.sleep(rng.uniform(0.5, 6.0))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        intact(home)
    last = docfocus_process(home, "ask", str(path), *questions, *options)
    out, err = last.communicate(timeout=600)
    assert last.returncode == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 3 and all(a["evidence"] for a in answers)
    intact(home)
    listed = subprocess.run([sys.executable, "-m", "app", "library", "list", "--json"], capture_output=True,
                            text=True, env=dict(os.environ, DOCFOCUS_HOME=str(home)), cwd=ROOT, timeout=120)
    assert listed.returncode == 0, listed.stderr
