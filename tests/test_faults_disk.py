"""Issue 23, item 2: a full disk. DocFocus answers without saving, says so once, and loses nothing.

The real thing needs a small filesystem: a 30 MB tmpfs mounted in a private mount namespace (``unshare``: as
root, or as a user where unprivileged user namespaces are allowed); it is skipped, with the reason, where neither
works. The in-process tests below always run: they inject the errors SQLite gives on a full disk (a real
SQLITE_FULL from ``max_page_count``; SQLITE_IOERR_SHMSIZE, which a full tmpfs gives when WAL mode opens, from a
connection that raises it).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_state_cache import make_engine

from engine.store import dbfile

import pdfs
from conftest import ROOT

SCENARIO = """
    import json, os, subprocess, sys
    home, model, first, second = sys.argv[1:5]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", home], check=True)
    env = dict(os.environ, DOCFOCUS_HOME=home, HF_HUB_OFFLINE="1")
    ask = ["--model", model, "--device", "cpu", "--max-new-tokens", "4"]

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env)
        return {"rc": done.returncode, "out": done.stdout, "err": done.stderr}

    results = {"first": run("ask", first, "What is the launch code?", *ask)}
    fd = os.open(os.path.join(home, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except OSError as error:
        results["filled"] = str(error)
    os.close(fd)
    results["full"] = run("ask", second, "When are tours?", *ask)
    results["again"] = run("ask", first, "What is the launch code?", *ask)
    results["history"] = run("history", first)
    os.unlink(os.path.join(home, "filler"))
    results["freed"] = run("ask", second, "When are tours?", *ask)
    results["history_after"] = run("history", first, "--json")
    print(json.dumps(results))
"""


def _namespace() -> list[str] | None:
    """A command prefix that runs a process in its own mount namespace where it may mount a tmpfs, or None."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-Urm"]):
        mount = "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || mount -t tmpfs -o size=1m tmpfs /tmp"
        probe = subprocess.run([*prefix, "sh", "-c", mount], capture_output=True)  # in the namespace only
        if probe.returncode == 0:
            return prefix
    return None


def test_a_full_disk_answers_without_saving_says_so_and_loses_nothing(tmp_path, tiny_model_dir):
    prefix = _namespace()
    if prefix is None:
        pytest.skip("no mount namespace here (neither root nor unprivileged user namespaces): the in-process "
                    "full-disk tests below cover it")
    home = tmp_path / "home"
    home.mkdir()
    first, second = pdfs.fact_pdf(tmp_path / "facts.pdf"), pdfs.paragraphs_pdf(tmp_path / "other.pdf",
                                                                                [pdfs.PAGE_THREE])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(SCENARIO), str(home), str(tiny_model_dir),
                           str(first), str(second)], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    assert results["first"]["rc"] == 0 and "No space left" in results["filled"], results
    for name in ("full", "again"):  # a new document, and one the library has
        run = results[name]
        assert run["rc"] == 0 and "Traceback" not in run["err"] and run["out"].strip(), run
        notes = [line for line in run["err"].splitlines() if line.startswith("Note:")]
        assert " ".join(notes).count("(the disk is full)") == 2 and len(notes) == len(set(notes)), run["err"]
        assert "not saved in the chat history" in notes[0]
    history = results["history"]
    assert history["rc"] == 2 and "the disk is full" in history["err"] and "Free some space" in history["err"]
    assert "Traceback" not in history["err"]
    assert results["freed"]["rc"] == 0 and "Note:" not in results["freed"]["err"], results["freed"]
    kept = [json.loads(line) for line in results["history_after"]["out"].splitlines()]
    assert [entry["question"] for entry in kept] == ["What is the launch code?"]  # nothing lost


# ---------------------------------------------------------------- in process: the errors a full disk gives


def _shm_fails(monkeypatch) -> None:
    """Every new SQLite connection fails to enter WAL mode as on a full tmpfs, and the disk reports 0 bytes free."""
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode, error.sqlite_errorname = 4874, "SQLITE_IOERR_SHMSIZE"

    class FullDisk(sqlite3.Connection):
        def execute(self, sql, *args):
            if "journal_mode" in sql:
                raise error
            return super().execute(sql, *args)
    connect = sqlite3.connect

    def on_disk(database, *args, **kwargs):  # a database in memory needs no disk
        return connect(database, *args, **kwargs, **({} if database == ":memory:" else {"factory": FullDisk}))
    monkeypatch.setattr(sqlite3, "connect", on_disk)
    monkeypatch.setattr(dbfile.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(30 << 20, 30 << 20, 0))


def test_a_library_and_cache_that_cannot_open_on_a_full_disk_still_answer(tiny_model_dir, tmp_path, fact_pdf,
                                                                           monkeypatch):
    first = make_engine(tiny_model_dir, tmp_path)
    expected = first.ask(first.open_document(fact_pdf), "What is the launch code?").answer
    first.state_cache.close()
    first.library.db.conn.close()
    before = {path.name: path.read_bytes() for path in tmp_path.glob("*.sqlite")}
    _shm_fails(monkeypatch)
    from engine.api import Engine

    engine = Engine(first.settings)  # the same settings, its library and cache in the data folder that fails
    monkeypatch.setenv("DOCFOCUS_HOME", str(tmp_path))
    answer = engine.ask(engine.open_document(fact_pdf), "What is the launch code?")
    assert answer.answer == expected
    assert f"cannot write its library {tmp_path / 'library.sqlite'} (the disk is full)" in answer.notice
    assert f"without its document cache {tmp_path / 'states.sqlite'} (the disk is full)" in answer.notice
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in tmp_path.glob("*.sqlite")} == before


def _fill(conn: sqlite3.Connection) -> None:
    """No page may be added any more: SQLite's own SQLITE_FULL ("database or disk is full") on the next growth."""
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")


def test_a_disk_that_fills_while_open_answers_and_says_what_was_not_saved(tiny_model_dir, tmp_path, fact_pdf):
    engine = make_engine(tiny_model_dir, tmp_path)
    engine.ask(engine.open_document(fact_pdf), "What is the launch code?")
    _fill(engine.library.db.conn)
    _fill(engine.state_cache.db.conn)
    other = pdfs.paragraphs_pdf(tmp_path / "other.pdf", [pdfs.PAGE_THREE + pdfs.FILLER] * 3)
    answer = engine.ask(engine.open_document(other), "When are tours?")
    assert answer.answer
    assert "could not keep Observatory notes" not in answer.notice
    assert "DocFocus could not keep other in its library" in answer.notice and "(the disk is full" in answer.notice
    assert "The disk is full; the document's state" in answer.notice
    assert "This answer was not saved in the chat history (database or disk is full)" in answer.notice
    again = engine.ask(engine.open_document(other), "When are tours?")
    assert "could not keep" not in (again.notice or "")  # said once
    assert engine.library.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [e["question"] for e in engine.history(answer.document["sha256"])] == []
    assert len(engine.history(engine.open_document(fact_pdf).sha256)) == 1  # nothing lost
    assert engine.library.get_row(answer.document["sha256"]) is None


def test_why_unwritable_names_a_full_disk_and_what_to_do(tmp_path, monkeypatch):
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    assert dbfile.is_unwritable(full) and dbfile.why_unwritable(tmp_path / "x.sqlite", full) == "the disk is full"
    assert dbfile.hint_for("the disk is full").startswith("Free some space")
    assert dbfile.why_unwritable(tmp_path / "x.sqlite", OSError(28, "No space left on device")) == "the disk is full"
    assert not dbfile.is_damage(full)
    assert Path(tmp_path).is_dir()


def test_no_room_to_convert_the_bundled_model_is_a_clear_error_that_leaves_nothing(tmp_path, monkeypatch,
                                                                                  tiny_model_dir):
    import errno

    import transformers

    from engine.errors import ModelLoadError
    from engine.model import loading

    tiny = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(loading, "preconverted_bundled_dir", lambda: None)
    monkeypatch.setattr(loading.paths, "models_dir", lambda: tmp_path / "models")
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *args, **kwargs: tokenizer)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *args, **kwargs: tiny)

    def no_room(self, folder, *args, **kwargs):
        Path(folder).mkdir(parents=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half written")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(type(tiny), "save_pretrained", no_room)
    with pytest.raises(ModelLoadError, match=r"could not convert its bundled model .*\(the disk is full\)"):
        loading.converted_bundled_dir()
    assert list((tmp_path / "models").iterdir()) == []  # no half-converted folder

