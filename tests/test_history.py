"""Chat history per document: what ask() records, the compact relevance, clearing, and `docfocus history`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from engine.api import Engine, EngineSettings
from engine.library.documents import Library
from engine.store import history as history_module
from engine.store.history import History, decode_scores, encode_scores

import pdfs
from conftest import ROOT


@pytest.fixture()
def engine(tiny_model_dir, tmp_path):
    return Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 6}),
                  library=Library(tmp_path / "library.sqlite"))


def test_scores_are_stored_compactly_and_closely():
    rng = np.random.default_rng(0)
    scores = np.zeros(8000, dtype=np.float32)
    scores[rng.choice(8000, 800, replace=False)] = rng.random(800).astype(np.float32)  # ~10% focal tokens
    blob = encode_scores(scores)
    back = decode_scores(blob)
    assert back.dtype == np.float32 and back.shape == scores.shape
    assert np.abs(back - scores).max() <= (scores.max() - scores.min()) / 510 + 1e-7
    assert len(blob) < 0.35 * scores.size  # under 0.35 byte per token here (float32 would be 4)
    assert len(blob) < len(zlib.compress(scores.astype(np.float16).tobytes()))


def test_scores_edge_cases():
    assert encode_scores(None) is None and decode_scores(None) is None
    flat = decode_scores(encode_scores(np.full(5, 0.25)))
    assert np.allclose(flat, 0.25)
    assert decode_scores(encode_scores(np.array([], dtype=np.float32))).size == 0
    negative = np.array([-1.0, 0.0, 2.0])
    assert np.allclose(decode_scores(encode_scores(negative)), negative, atol=3 / 510)


def test_ask_records_history_the_gui_can_show(engine, fact_pdf):
    doc = engine.open_document(fact_pdf)
    before = engine.history(doc.sha256)
    first = engine.ask(doc, "What is the launch code?")
    second = engine.ask(doc, "Who met in the spring?")
    entries = engine.history(doc.sha256)
    assert before == [] and [e["question"] for e in entries] == ["What is the launch code?", "Who met in the spring?"]
    entry = entries[0]
    assert entry["answer"] == first.answer and isinstance(entry["id"], int)
    assert isinstance(entry["created"], float) and entry["created"] <= entries[1]["created"]
    assert entry["attention"] == first.attention
    assert len(entry["evidence"]) == len(first.evidence)
    for stored, original in zip(entry["evidence"], first.evidence):
        assert {"page", "text", "score", "boxes"} <= set(stored)
        assert (stored["page"], stored["text"], stored["score"]) == (original.page, original.text, original.score)
        assert stored["boxes"] == [list(box) for box in original.boxes]
    if first.token_scores is None:
        assert entry["token_scores"] is None
    else:
        assert entry["token_scores"].shape == first.token_scores.shape
        span = float(first.token_scores.max() - first.token_scores.min())
        assert np.abs(entry["token_scores"] - first.token_scores).max() <= span / 510 + 1e-6
    assert entry["settings"]["answer"]["max_new_tokens"] == 6 and entry["settings"]["cache_format"] == "auto"
    assert entry["model"]["id"] == first.model["id"] and entry["timings"]["first_token_s"] >= 0
    assert entries[1]["cache_hit"] is True and second.cache_hit


def test_history_is_per_document_and_clearing_is_per_document(engine, fact_pdf, tmp_path):
    other = pdfs.paragraphs_pdf(tmp_path / "other.pdf", [pdfs.PAGE_THREE])
    doc, doc2 = engine.open_document(fact_pdf), engine.open_document(other)
    engine.ask(doc, "q1")
    engine.ask(doc2, "q2")
    assert [e["question"] for e in engine.history(doc2.sha256)] == ["q2"]
    assert engine.clear_history(doc.sha256) == 1
    assert engine.history(doc.sha256) == [] and len(engine.history(doc2.sha256)) == 1


def test_history_survives_a_new_engine(tiny_model_dir, tmp_path, fact_pdf, engine):
    doc = engine.open_document(fact_pdf)
    engine.ask(doc, "remembered?")
    later = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu"), library=Library(tmp_path / "library.sqlite"))
    assert [e["question"] for e in later.history(doc.sha256)] == ["remembered?"]


def test_stopped_answer_with_no_text_is_not_recorded(engine, fact_pdf, monkeypatch):
    import engine.api as api

    doc = engine.open_document(fact_pdf)
    engine.read(doc)
    stopped = []

    def decode_nothing(*args, **kwargs):  # the user presses Stop as decoding begins
        stopped.append(True)
        return iter(())
    monkeypatch.setattr(api.generation, "decode", decode_nothing)
    answer = engine.ask(doc, "stopped at once", should_stop=lambda: bool(stopped))
    assert answer.stopped and answer.answer == ""
    assert engine.history(doc.sha256) == []


@pytest.mark.model
def test_stopped_answer_with_text_is_recorded(bundled_engine):
    doc = bundled_engine.open_document(ROOT / "resources" / "sample.pdf")
    bundled_engine.read(doc)
    calls: list[int] = []

    def stop_after_a_few_tokens() -> bool:  # asked after the question's prefill, then after each token
        calls.append(1)
        return len(calls) > 4

    answer = bundled_engine.ask(doc, "How tall is the tower?", should_stop=stop_after_a_few_tokens)
    entry = bundled_engine.history(doc.sha256)[-1]
    assert answer.stopped and answer.finish == "stopped" and 2 <= answer.timings["generated_tokens"] <= 4
    assert entry["stopped"] is True and entry["answer"] == answer.answer != "" and entry["finish"] == "stopped"


def test_history_failure_never_costs_the_answer(engine, fact_pdf, monkeypatch):
    import sqlite3

    def broken(self, *args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(history_module.History, "record", broken)
    answer = engine.ask(engine.open_document(fact_pdf), "still answered?")
    assert answer.timings["generated_tokens"] > 0


def test_history_command(tmp_path):
    pdf = pdfs.fact_pdf(tmp_path / "facts.pdf")
    from engine.api import Answer, Evidence
    from engine.ingest.extract import file_sha256

    sha = file_sha256(pdf)
    history = History(Library(tmp_path / "library.sqlite").db)
    history.record(Answer(question="What is the launch code?", answer="4417", document={"sha256": sha},
                          model={"id": "SmolLM2"}, attention={"mode": "dga"}, timings={},
                          evidence=[Evidence(2, "The secret launch code of the observatory is 4417.", 0.9)],
                          cache_hit=False, token_scores=np.array([0.0, 0.5, 1.0])))
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(tmp_path))
    run = lambda *args: subprocess.run([sys.executable, "-m", "app", "history", str(pdf), *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    shown = run()
    assert shown.returncode == 0, shown.stderr
    assert "Q: What is the launch code?" in shown.stdout and "A: 4417" in shown.stdout
    assert "[p. 2] The secret launch code" in shown.stdout and "dga" in shown.stdout
    line = json.loads(run("--json").stdout.splitlines()[0])
    assert line["answer"] == "4417" and line["token_scores"] == pytest.approx([0.0, 0.5, 1.0], abs=0.003)
    assert run("--clear").returncode == 0 and "No questions asked" in run().stdout
    missing = subprocess.run([sys.executable, "-m", "app", "history", str(tmp_path / "nope.pdf")],
                             capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert missing.returncode != 0 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_damaged_library_is_moved_aside_with_its_history_kept(tiny_model_dir, tmp_path, fact_pdf):
    path = tmp_path / "library.sqlite"
    path.write_bytes(b"garbage, not a database" * 50)
    original = path.read_bytes()
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 4}), library=Library(path))
    doc = engine.open_document(fact_pdf)
    answer = engine.ask(doc, "still answered?")
    assert answer.timings["generated_tokens"] > 0 and len(engine.history(doc.sha256)) == 1
    aside = [p for p in tmp_path.glob("library.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == original  # kept for the user, not deleted
    assert f"The library {path} could not be used (it is not a SQLite database" in " ".join(answer.notices)
    assert f"moved to {aside[0]}" in " ".join(answer.notices)  # told with the answer, where the window and the CLI show it
    assert engine.ask(doc, "and again?").notices == []  # said once
