"""Engine API with a tiny random model: prefill, question reuse, windows, errors."""
from __future__ import annotations

import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.errors import CancelledError, ModelLoadError, OutOfMemoryError, QuestionError
from engine.model import generation
from engine.settings import SettingsError

import pdfs


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


def test_chunked_prefill_matches_one_pass(tiny_engine, fact_pdf):
    from transformers import DynamicCache

    model = tiny_engine.loaded.model
    ids = tiny_engine.open_document(fact_pdf).prefix_ids()
    cache = DynamicCache(config=model.config)
    chunked = generation.prefill(model, ids, cache, chunk_size=37)
    assert cache.get_seq_length() == len(ids)
    torch.testing.assert_close(chunked, _logits(model, ids), rtol=1e-4, atol=1e-4)


def test_questions_reuse_what_was_read(tiny_engine, fact_pdf):
    """Opening reads nothing; the first question reads the segments it needs, the same question again none."""
    tiny_engine.state_cache.clear()
    doc = tiny_engine.open_document(fact_pdf)
    tiny_engine.forget(doc)
    first = tiny_engine.ask(doc, "What is the launch code?")
    second = tiny_engine.ask(doc, "What is the launch code?")
    assert first.timings["segments_read"] >= 1 and not first.cache_hit
    assert second.timings["segments_read"] == 0 and second.cache_hit
    assert first.answer == second.answer  # greedy, and the same keys
    assert second.document == first.document and first.document["tokens"] == doc.total_tokens


@pytest.mark.model
def test_streamed_pieces_are_the_answer(bundled_engine):
    from conftest import ROOT

    doc = bundled_engine.open_document(ROOT / "resources" / "sample.pdf")
    pieces: list[str] = []
    answer = bundled_engine.ask(doc, "How tall is the tower?", on_text=pieces.append)
    assert answer.supported and "38" in answer.answer
    assert "".join(pieces).strip() == answer.answer  # a supported answer is shown as it was streamed


def test_stop_request_ends_generation(tiny_engine, fact_pdf):
    doc = tiny_engine.open_document(fact_pdf)
    tiny_engine.read(doc)
    calls: list[int] = []

    def stop_after_a_few_tokens() -> bool:
        calls.append(1)
        return len(calls) > 3

    answer = tiny_engine.ask(doc, "Anything?", should_stop=stop_after_a_few_tokens, max_new_tokens=50)
    assert answer.stopped and answer.finish == "stopped" and answer.timings["generated_tokens"] <= 3


def test_cancel_while_reading(tiny_model_dir, library, fact_pdf):
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu"), library=library)
    with pytest.raises(CancelledError):
        engine.ask(engine.open_document(fact_pdf), "q", should_stop=lambda: True)


def test_document_longer_than_window_is_truncated_and_said(tmp_path, bundled_dir, library):
    from conftest import make_tiny_model

    small = make_tiny_model(tmp_path / "small", bundled_dir, window=700)
    engine = Engine(EngineSettings(model=str(small), device="cpu").changed(answer={"max_new_tokens": 4}, reading={"long_documents": "truncate"}),
                    library=library)
    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 6] * 5)
    doc = engine.open_document(path)
    assert doc.truncated and doc.total_tokens > 700
    assert doc.used_tokens + len(doc.layout.head_ids) + 512 <= 700
    notice = doc.notice()
    assert "(5 pages)" in notice and f"pages 1-{doc.pages_used} only" in notice
    answer = engine.ask(doc, "What happened?")
    assert answer.notices == [notice] and answer.document["tokens_used"] == doc.used_tokens


def test_empty_question_is_refused(tiny_engine, fact_pdf):
    with pytest.raises(QuestionError):
        tiny_engine.ask(tiny_engine.open_document(fact_pdf), "   ")


def test_out_of_memory_while_reading_is_explained(tiny_model_dir, library, fact_pdf, monkeypatch):
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"model_check": False}),
                    library=library)  # the check of the passages runs out of memory first: tests/test_model_check.py
    engine.load()

    def exhausted(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.loaded.model, "forward", exhausted)
    with pytest.raises(OutOfMemoryError) as caught:
        engine.ask(engine.open_document(fact_pdf), "q")
    assert "--device cpu" in caught.value.user_message()


@pytest.mark.parametrize("model", ["/no/such/model", "./missing-folder"])
def test_missing_model_path(model):
    with pytest.raises(ModelLoadError, match="not found"):
        Engine(EngineSettings(model=model)).load()


def test_folder_that_is_not_a_causal_lm(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    with pytest.raises(ModelLoadError):
        Engine(EngineSettings(model=str(tmp_path))).load()


def test_library_reopens_without_parsing(tiny_engine, fact_pdf, monkeypatch):
    tiny_engine.open_document(fact_pdf)
    import engine.api as api

    monkeypatch.setattr(api, "ingest_pdf", lambda *a, **k: pytest.fail("parsed the PDF again"))
    again = tiny_engine.open_document(fact_pdf)
    assert pdfs.FACT in " ".join(again.ingested.text.split())


def test_growable_cache_matches_dynamic_cache(tiny_engine, fact_pdf):
    """The in-place cache gives the same logits as transformers' DynamicCache, also after crop and regrowth."""
    from transformers import DynamicCache

    model = tiny_engine.loaded.model
    ids = tiny_engine.open_document(fact_pdf).prefix_ids()
    growable, dynamic = generation.new_cache(model.config), DynamicCache(config=model.config)
    assert type(growable.layers[0]).__name__ == "GrowableLayer"
    for cache in (growable, dynamic):
        generation.prefill(model, ids, cache, chunk_size=64)
    for round_ in range(2):  # a question, cropped back, then another one that grows past the spare room
        steps = [list(generation.decode(model, cache, _logits(model, ids), 300 if round_ else 20, set()))
                 for cache in (growable, dynamic)]
        assert steps[0] == steps[1]
        torch.testing.assert_close(growable.layers[0].keys, dynamic.layers[0].keys)
        for cache in (growable, dynamic):
            generation.crop_cache(cache, len(ids))
        assert growable.get_seq_length() == dynamic.get_seq_length() == len(ids)


def test_dga_prefill_is_a_setting_with_its_own_cache_key(tiny_model_dir, library, tmp_path):
    """prefill="dga" reads through engine/attention/dga_prefill.py; its states never mix with dense ones in the cache."""
    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 3, pdfs.FILLER * 2 + pdfs.FACT, pdfs.FILLER * 3])
    options = {"chunk": 64, "window": 32, "group_size": 8}
    dense = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 4}), library=library)
    sparse = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 4}, reading={"prefill": "dga", "prefill_dga": options}), library=library)
    doc = sparse.open_document(path)
    assert doc.fits and doc.total_tokens > 200
    assert sparse.state_key(doc).variant != dense.state_key(dense.open_document(path)).variant
    state, _ = sparse.readings.whole(doc)
    reference = generation.new_cache(sparse.loaded.model.config)
    generation.prefill(sparse.loaded.model, doc.prefix_ids(), reference)
    # Later chunks saw older text through focal and group tokens only: the state differs from dense prefill.
    assert not torch.allclose(state.cache.layers[-1].keys, reference.layers[-1].keys, atol=1e-4)
    assert sparse.ask(doc, "What is the code?").answer is not None
    with pytest.raises(SettingsError, match="'fast' is not one of dense, dga"):
        EngineSettings(model=str(tiny_model_dir), device="cpu").changed(reading={"prefill": "fast"})


@pytest.mark.parametrize("context, options", [("passages", {}), ("document", {}),
                                              ("document", {"attention": {"dga": {"group_size": 4096}}})])
def test_a_one_sentence_document_is_answered(tiny_model_dir, library, tmp_path, context, options):
    """14 tokens: fewer than one DGA group, one passage (a crash in the first release)."""
    path = pdfs.text_pdf(tmp_path / "one.pdf", [[(72, 100, "The tower is 38 meters tall.")]])
    settings = EngineSettings(model=str(tiny_model_dir), device="cpu").changed(
        answer={"max_new_tokens": 4, "context": context}, **options)
    engine = Engine(settings, library=library)
    doc = engine.open_document(path)
    assert doc.total_tokens < 16
    answer = engine.ask(doc, "How tall is the tower?")
    assert answer.evidence and answer.evidence[0].page == 1 and answer.citations[0].page == 1


@pytest.mark.parametrize("context", ["passages", "document"])
def test_a_question_longer_than_a_prefill_chunk_is_answered(tiny_model_dir, library, fact_pdf, context):
    """Over 512 tokens the question is fed in several chunks; DGA must not take the second for decoding. Within
    the question limit (1,000 characters) digits, one token each, still make a question that long."""
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 4, "context": context}, attention={"mode": "dga", "dga": {"min_focal": 16}}), library=library)
    question = "1234567890" * 97 + " What is the launch code?"
    doc = engine.open_document(fact_pdf)
    assert len(engine.loaded.tokenizer(question)["input_ids"]) > generation.PREFILL_CHUNK
    answer = engine.ask(doc, question)
    assert answer.timings["generated_tokens"] >= 1 and answer.evidence


def test_no_question_reads_every_segment(tiny_model_dir, library, tmp_path, monkeypatch):
    """The ranking needs no model: a question reads only the segments of the passages it answers from, also
    when no word of it is in the document (it once ran the question over every segment)."""
    from engine.attention import scoring

    calls = []
    monkeypatch.setattr(scoring, "over_segments", lambda *a, **k: calls.append(1))
    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 4 + f" Item {n} costs {n * 3} pounds."
                                                       for n in range(12)])
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(
        answer={"max_new_tokens": 4, "focal_tokens": 64}, reading={"segment": 128, "overlap": 16}), library=library)
    doc = engine.open_document(path)
    assert doc.segments > 6
    for question in ("What does item 7 cost?", "Qwzx blorft vrrm?"):
        answer = engine.ask(doc, question)
        assert 1 <= answer.timings["segments_read"] + answer.timings["segments_in_memory"] <= 3, question
    assert calls == [] and "words" in engine.ask(doc, "What does item 7 cost?").attention["ranking"]


def test_the_models_focus_over_a_shortlist_reads_only_the_shortlist(tiny_model_dir, library, tmp_path):
    """attention_weight > 0: the question's attention over the best-matching passages (a shortlist, read and
    placed) is weighed in; only the shortlist's segments are read, and the answer says which signals ranked."""
    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 4 + f" Item {n} costs {n * 3} pounds."
                                                       for n in range(12)])
    settings = EngineSettings(model=str(tiny_model_dir), device="cpu").changed(
        answer={"max_new_tokens": 4, "focal_tokens": 64, "attention_weight": 1.0, "shortlist_tokens": 192},
        reading={"segment": 128, "overlap": 16})
    engine = Engine(settings, library=library)
    doc = engine.open_document(path)
    answer = engine.ask(doc, "What does item 7 cost?")
    assert answer.attention["ranking"] == ["words", "meaning", "model", "attention"]
    assert answer.timings["shortlist"] >= 2
    assert 1 <= answer.timings["focus_segments_read"] < doc.segments and answer.evidence
    with pytest.raises(SettingsError, match="shortlist at least the budget"):
        settings.changed(answer={"shortlist_tokens": 32})
