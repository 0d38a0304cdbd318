"""The model's check of the shortlist (engine/retrieval/likelihood.py): the question's likelihood after each of the
best passages, batched so that one forward pass serves them all, bounded to SHORTLIST passages, and the
bundled model moving a passage that answers a plainly worded question above one that only shares its words."""
from __future__ import annotations

import numpy as np
import pytest

from engine.api import Engine, EngineSettings
from engine.retrieval import likelihood

import pdfs

QUESTION = "How do I read a fixed-width format file?"
BAIT = ("Old survey programs stored their records in a self-describing fixed-width text format of their own, with "
        "a header that describes each format; such format files keep the layout of the survey form.")
ANSWER = ("Some data files have no separators between fields, which sit in columns given in advance. Function "
          "read.fwf reads such files into a data frame, given a vector of field widths.")
FILLER = [f"In {1900 + n} the harbour master counted {n * 7} ships, {n + 3} storms and one whale near the pier."
          for n in range(8)]


def test_one_batch_scores_each_passage_as_alone(tiny_engine):
    """Left padding and positions make the batched score the passage's own, whatever the other passages' lengths."""
    model, tokenizer = tiny_engine.loaded.model, tiny_engine.loaded.tokenizer
    texts = [BAIT, ANSWER, "A short one.", FILLER[0]]
    together = likelihood.question_likelihood(model, tokenizer, texts, QUESTION)
    alone = np.array([likelihood.question_likelihood(model, tokenizer, [text], QUESTION)[0] for text in texts])
    assert together.shape == (4,) and np.all(np.isfinite(together)) and np.all(together < 0)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_the_check_reads_only_the_shortlist_in_one_pass(tiny_engine, tmp_path, monkeypatch):
    doc = tiny_engine.open_document(pdfs.paragraphs_pdf(tmp_path / "m.pdf", [BAIT, ANSWER, *FILLER * 2]))
    seen = []
    real = likelihood.question_likelihood
    monkeypatch.setattr(likelihood, "question_likelihood",
                        lambda model, tokenizer, texts, question: seen.append(len(texts)) or real(
                            model, tokenizer, texts, question))
    kept = tiny_engine.settings
    tiny_engine.settings = kept.changed(answer={"model_check": True})
    try:
        ranked = tiny_engine.rank(doc, QUESTION)
    finally:
        tiny_engine.settings = kept
    assert seen == [likelihood.SHORTLIST] and ranked.signals[-1] == "model"
    best = ranked.order()[:likelihood.SHORTLIST]
    assert np.all(ranked.parts["model"][best] < 0)  # the shortlist's scores; the rest keep their order below
    assert np.all(ranked.score[best].min() > np.delete(ranked.score, best)[np.isfinite(np.delete(ranked.score,
                                                                                                  best))])


def test_out_of_memory_in_the_check_is_explained_and_other_failures_leave_the_ranking(tiny_model_dir, library,
                                                                                      tmp_path, monkeypatch):
    from engine.errors import OutOfMemoryError

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu"), library=library)
    engine.load()
    doc = engine.open_document(pdfs.paragraphs_pdf(tmp_path / "m.pdf", [BAIT, ANSWER, *FILLER]))

    def fails(message):
        def forward(*args, **kwargs):
            raise RuntimeError(message)
        return forward

    monkeypatch.setattr(engine.loaded.model, "forward", fails("CUDA out of memory. Tried to allocate 2.00 GiB"))
    with pytest.raises(OutOfMemoryError) as caught:
        engine.rank(doc, QUESTION)
    assert "checking the best passages" in str(caught.value) and "--device cpu" in caught.value.user_message()
    monkeypatch.setattr(engine.loaded.model, "forward", fails("an architecture that refuses position_ids"))
    assert "model" not in engine.rank(doc, QUESTION).signals  # ranked without the check, and logged


@pytest.mark.model
def test_the_bundled_model_finds_the_passage_that_answers(bundled_dir, library, tmp_path):
    """Words (and meaning) prefer the passage that repeats "fixed-width format"; the model's check prefers the one
    that answers."""
    engine = Engine(EngineSettings(device="cpu").changed(answer={"max_new_tokens": 8}), library=library)
    doc = engine.open_document(pdfs.paragraphs_pdf(tmp_path / "manual.pdf", [BAIT, ANSWER, *FILLER]))
    checked = engine.rank(doc, QUESTION)
    engine.settings = engine.settings.changed(answer={"model_check": False})
    unchecked = engine.rank(doc, QUESTION)
    assert checked.signals[-1] == "model" and "model" not in unchecked.signals
    assert int(doc.passages.page[unchecked.order()[0]]) == 0
    assert int(doc.passages.page[checked.order()[0]]) == 1
