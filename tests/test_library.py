"""The library: the passage index, lazily loaded segments, the reading queue and answers across documents.

A tiny random model with a 1,024-token window (so a few pages are a long document read in segments), real PDFs
made with PyMuPDF and real SQLite files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.errors import CancelledError
from engine.library.documents import Library
from engine.retrieval import passages as passage_ops
from engine.retrieval.index import PassageIndex

import pdfs

LONG = {"segment": 96, "overlap": 16}
QUESTION = "What is the secret launch code of the observatory?"


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory, bundled_dir):
    from conftest import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("small-window"), bundled_dir, window=1024)


def make_engine(model_dir, folder, **answer) -> Engine:
    settings = EngineSettings(model=str(model_dir), device="cpu").changed(  # stored exactly: keys are compared
        answer={"max_new_tokens": 6, "focal_tokens": 64, "model_check": False, **answer}, reading=LONG,
        store={"cache_format": "model"})  # a random model's check of the passages is noise: the words rank here
    engine = Engine(settings, library=Library(folder / "library.sqlite"))
    engine.load()
    return engine


def long_pdf(path, fact_at: int | None = 4, extra: str = ""):
    paragraphs = [pdfs.FILLER * 3 + f" Section {n} is about item number {n * 7}." for n in range(6)]
    if fact_at is not None:
        paragraphs[fact_at] += " " + pdfs.FACT
    paragraphs[0] += extra
    return pdfs.paragraphs_pdf(path, paragraphs, title=path.stem)


def test_the_index_ranks_a_document_as_its_own_word_match(tiny_engine, tmp_path):
    """One BM25: the index over one document gives exactly passages.lexical_scores and question_weights; over a
    scope of two documents, the same passages' term frequencies with the scope's idf."""
    first = tiny_engine.open_document(long_pdf(tmp_path / "a.pdf"))
    second = tiny_engine.open_document(pdfs.fact_pdf(tmp_path / "b.pdf"))
    index = PassageIndex(Library(tmp_path / "index.sqlite").db)
    ids = [index.add(d.ingested, d.passages, "tiny", d.total_tokens) for d in (first, second)]
    for question in (QUESTION, "Which section is about item number 21?", "budget schedule minutes", "zebra"):
        for doc, number in zip((first, second), ids):
            want = passage_ops.lexical_scores(doc.passages, doc.ingested, question)
            np.testing.assert_array_equal(index.search(question, [number]).lexical, want)
            assert index.weights(question, [number]) == passage_ops.question_weights(doc.passages, doc.ingested,
                                                                                     question)
    scope = index.search(QUESTION, ids)
    assert len(scope) == len(first.passages) + len(second.passages)
    best = int(np.argmax(scope.lexical))
    doc = first if scope.sha256[best] == first.sha256 else second
    assert "4417" in doc.passages.text(doc.ingested, int(scope.number[best]))
    index.remove(first.sha256)
    assert len(index.search(QUESTION, ids)) == len(second.passages)


def test_a_new_process_loads_only_the_segments_it_needs_and_reads_an_evicted_one_again(small_model_dir, tmp_path):
    path = long_pdf(tmp_path / "long.pdf")
    reader = make_engine(small_model_dir, tmp_path)
    doc = reader.open_document(path)
    assert doc.method == "select" and doc.segments >= 6
    first = reader.ask(doc, QUESTION)
    assert 1 <= first.timings["segments_read"] < doc.segments
    assert reader.read(doc) > 0  # the rest, stored segment by segment
    # A second engine (as a new process): the head and the segments come from disk, nothing is read
    asker = make_engine(small_model_dir, tmp_path)
    doc2 = asker.open_document(path)
    lazy = asker.readings.lazy(doc2)
    assert lazy.missing() == []
    tokens = np.arange(doc2.passages.start[3], doc2.passages.end[3])
    needed = lazy.segments_of(tokens)
    reading, local = lazy.subset(tokens)
    assert lazy.stats.loaded == len(needed) < doc2.segments and lazy.stats.read == 0
    assert reading.length == len(tokens)  # just the tokens asked for
    whole = reader.readings.lazy(doc).whole()
    for layer in range(len(whole.keys)):
        torch.testing.assert_close(reading.keys[layer][:, :, local], whole.keys[layer][:, :, tokens])
    torch.testing.assert_close(reading.positions[local], whole.positions[tokens])
    again = asker.ask(doc2, QUESTION)
    assert again.generated == first.generated and again.evidence[0].page == first.evidence[0].page
    assert 0 < again.timings["segments_loaded"] + again.timings["segments_in_memory"] < doc2.segments
    # Evict the segment that holds the best passage: a third engine reads that segment again, and only it
    target = lazy.segments_of(np.arange(doc2.passages.start[3], doc2.passages.start[3] + 1))[0]
    cache = asker.state_cache
    cache.db.execute("DELETE FROM chunks WHERE state_id = (SELECT id FROM states WHERE key = ?)",
                     [lazy._key(target).digest()])
    cache.db.execute("DELETE FROM states WHERE key = ?", [lazy._key(target).digest()])
    third = make_engine(small_model_dir, tmp_path)
    doc3 = third.open_document(path)
    lazy3 = third.readings.lazy(doc3)
    assert lazy3.missing() == [target]
    seen = []
    reading3, local3 = lazy3.subset(tokens, progress=lambda done, total: seen.append((done, total)))
    assert lazy3.stats.read == 1 and lazy3.stats.loaded == len(needed) - 1
    assert seen and seen[-1][0] == seen[-1][1] == lazy3.segments[target][1] - lazy3.segments[target][0]
    for layer in range(len(whole.keys)):
        torch.testing.assert_close(reading3.keys[layer][:, :, local3], whole.keys[layer][:, :, tokens])
    assert lazy3.missing() == [target]  # stored again as the part the question used, not whole
    assert set(tokens - lazy3.segments[target][0]) & set(lazy3._kept[target])


def library_folder(tmp_path):
    folder = tmp_path / "shelf"
    folder.mkdir()
    long_pdf(folder / "manual.pdf", fact_at=None, extra=" The harbour ferry leaves at nine.")
    pdfs.fact_pdf(folder / "notes.pdf")
    long_pdf(folder / "report.pdf", fact_at=None, extra=" The lighthouse keeper was Margaret Olsen.")
    (folder / "readme.xyz").write_text("not a document")
    return folder


def test_library_add_read_ask_and_remove(small_model_dir, tmp_path):
    engine = make_engine(small_model_dir, tmp_path)
    folder = library_folder(tmp_path)
    ids = engine.library_add([folder])
    assert len(ids) == 3 and [d["state"] for d in engine.library_documents()] == ["queued"] * 3
    assert engine.library_add([folder / "notes.pdf"]) == [ids[1]]  # the same file is not queued twice
    read = engine.library_read_all()
    assert [d["state"] for d in read] == ["ready"] * 3
    docs = {Path(d["path"]).stem: d for d in engine.library_documents()}
    assert docs["manual"]["tokens"] > 500 and docs["notes"]["pages"] == 3 and docs["manual"]["pages"] == 6
    answer = engine.ask_library(QUESTION)
    notes = docs["notes"]
    top = answer.evidence[0]
    assert top.document == {"sha256": notes["sha256"], "path": notes["path"], "title": "Observatory notes"}
    assert top.page == 2 and "4417" in top.text
    assert answer.citations and all(c.document and c.document["sha256"] for c in answer.citations)
    assert answer.document["library"] and answer.document["documents"] == 3
    other = engine.ask_library("When does the harbour ferry leave?")
    assert other.evidence[0].document["sha256"] == docs["manual"]["sha256"] and other.evidence[0].page == 1
    assert other.attention["attended_tokens"] <= 64 + 96
    removed = engine.library_remove(str(folder / "notes.pdf"))
    assert removed["id"] == ids[1] and len(engine.library_documents()) == 2
    after = engine.ask_library(QUESTION)
    assert all(e.document["sha256"] != notes["sha256"] for e in after.evidence)


def test_adding_reads_nothing_unless_reading_ahead(small_model_dir, tmp_path):
    """A library document is ready once ingested and indexed: no segment is read until a question needs it."""
    folder = library_folder(tmp_path)
    engine = make_engine(small_model_dir, tmp_path)
    engine.library_add([folder / "manual.pdf"])
    item = engine.library_read_next()
    assert item["state"] == "ready" and engine.state_cache.entries() == []
    answer = engine.ask_library("When does the harbour ferry leave?")
    assert answer.timings["segments_read"] >= 1 and len(engine.state_cache.entries()) >= 1


def test_the_queue_resumes_after_a_restart(small_model_dir, tmp_path):
    """With reading ahead, an interrupted reading resumes after a restart without reading stored segments."""
    folder = library_folder(tmp_path)
    engine = make_engine(small_model_dir, tmp_path)
    engine.settings = engine.settings.changed(reading={"ahead": True})
    engine.library_add([folder / "manual.pdf", folder / "notes.pdf"])
    calls = []
    with pytest.raises(CancelledError):  # stopped while reading the manual's segments
        engine.library_read_next(lambda stage, done, total: calls.append((stage, done, total)),
                                 should_stop=lambda: sum(stage == "Reading the document" for stage, _, _ in calls) > 6)
    assert [d["state"] for d in engine.library_documents()] == ["queued", "queued"]
    # A crash leaves an item "reading": after the restart it is taken first, and what was stored is not read again
    engine.library_queue.set_state(engine.library_documents()[0]["id"], "reading")
    restarted = make_engine(small_model_dir, tmp_path)
    restarted.settings = restarted.settings.changed(reading={"ahead": True})
    seen = []
    item = restarted.library_read_next(lambda stage, done, total: seen.append((stage, done, total)))
    assert Path(item["path"]).stem == "manual" and item["state"] == "ready"
    reading = [(done, total) for stage, done, total in seen if stage == "Reading the document"]
    assert reading and 0 < reading[-1][1] < item["tokens"]  # only the segments not stored before the stop
    assert Path(restarted.library_read_next()["path"]).stem == "notes"
    assert restarted.library_read_next() is None


def test_a_changed_file_is_read_again(small_model_dir, tmp_path):
    folder = library_folder(tmp_path)
    engine = make_engine(small_model_dir, tmp_path)
    engine.library_add([folder / "notes.pdf"])
    engine.library_read_all()
    before = engine.library_documents()[0]
    pdfs.paragraphs_pdf(folder / "notes.pdf", ["The secret launch code of the observatory is now 9921."])
    assert engine.library_refresh() == [before["id"]]
    changed = engine.library_documents()[0]
    assert changed["state"] == "queued" and changed["sha256"] != before["sha256"]
    assert engine.library_read_next()["state"] == "ready"
    answer = engine.ask_library(QUESTION)
    assert "9921" in answer.evidence[0].text and answer.evidence[0].document["sha256"] == changed["sha256"]
    assert before["sha256"] not in engine.passage_index.documents(engine.index_key)  # the old index is gone
    assert engine.library_refresh() == []


def test_a_file_that_cannot_be_read_fails_with_its_reason(small_model_dir, tmp_path):
    engine = make_engine(small_model_dir, tmp_path)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    engine.library_add([bad])
    item = engine.library_read_next()
    assert item["state"] == "failed" and item["reason"]
    with pytest.raises(Exception, match="no document ready"):
        engine.ask_library(QUESTION)
