"""Reading (engine/reading/segments.py) and placing passages (engine/attention/compaction.py): re-positioning, segments, the
Engine path for documents longer than the window."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.attention import compaction
from engine.errors import CancelledError
from engine.library.documents import Library
from engine.model import generation, positions
from engine.model.positions import rotary_positions
from engine.reading import segments
from engine.reading.lazy import LazyReading

import pdfs

LONG = {"segment": 96, "overlap": 16}


def _read(model, doc, segmenting: segments.Segmenting) -> segments.Reading:
    """Every segment of ``doc`` read in memory."""
    return LazyReading.in_memory(model, doc.layout.head_ids, doc.layout.doc_ids, segmenting).whole()


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory, bundled_dir):
    from conftest import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("small-window"), bundled_dir, window=1024)


@pytest.fixture()
def long_engine(small_model_dir, library):
    engine = Engine(EngineSettings(model=str(small_model_dir), device="cpu").changed(answer={"max_new_tokens": 6, "focal_tokens": 64}, reading=LONG), library=library)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory):
    paragraphs = [pdfs.FILLER * 3 + f" Section {n} is about item number {n * 7}." for n in range(6)]
    paragraphs[4] += " " + pdfs.FACT
    return pdfs.paragraphs_pdf(tmp_path_factory.mktemp("long") / "long.pdf", paragraphs)


def test_rotating_a_key_moves_it_to_another_position(tiny_engine):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model = tiny_engine.loaded.model
    rotary = model.get_decoder().rotary_emb
    raw = torch.randn(1, 2, 5, 16)
    at = torch.tensor([[3, 10, 40, 41, 700]])
    to = torch.tensor([[0, 11, 5, 41, 1200]])

    def placed(positions):
        cos, sin = rotary(raw, positions)
        return apply_rotary_pos_emb(raw, raw, cos, sin)[1]

    moved = rotary_positions(model).move(0, placed(at), at[0], to[0])
    torch.testing.assert_close(moved, placed(to), rtol=1e-4, atol=1e-4)


def test_segments_cover_the_document_and_resynchronise_after_an_edit():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50000, 20000)
    bounds = segments.segment_bounds(ids, 512)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(ids)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(256 <= end - start <= 768 for start, end in bounds[:-1])
    edited = np.concatenate([ids[:5000], rng.integers(0, 50000, 37), ids[5000:]])
    after = {(s - 37, e - 37) for s, e in segments.segment_bounds(edited, 512) if s > 6000}
    shared = [b for b in bounds if b[0] > 6000]
    assert sum(b in after for b in shared) >= len(shared) - 2  # only boundaries near the edit move


def test_one_segment_reads_like_a_dense_prefill(tiny_engine, fact_pdf):
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(fact_pdf)
    settings = segments.Segmenting(segment=4096)
    state = _read(model, doc, settings)
    cache = generation.new_cache(model.config)
    generation.prefill(model, doc.prefix_ids(), cache)
    head = len(doc.layout.head_ids)
    for layer, (keys, values) in enumerate(zip(state.keys, state.values)):
        torch.testing.assert_close(keys, cache.layers[layer].keys[:, :, head:], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(values, cache.layers[layer].values[:, :, head:], rtol=1e-4, atol=1e-4)
    assert state.positions.tolist() == list(range(head, head + doc.total_tokens))


def test_a_long_document_is_read_in_segments_that_never_leave_one_segment_of_positions(tiny_engine, long_pdf):
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(long_pdf)
    state = _read(model, doc, segments.Segmenting(**LONG))
    assert len(state.segments) > 3 and state.length == doc.total_tokens
    assert int(state.positions.max()) < len(doc.layout.head_ids) + 96 * 3 // 2 + 16  # never past one segment


def test_placing_every_token_answers_like_dense(tiny_engine, fact_pdf):
    """With every token placed in order and one segment, the compacted document is the dense cache."""
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(fact_pdf)
    state = _read(model, doc, segments.Segmenting(segment=4096))
    compacted = compaction.compact(model, state, np.arange(doc.total_tokens))
    assert compacted.items == doc.total_tokens
    from engine.model.prompt import question_ids

    q_ids = question_ids(tiny_engine.loaded.tokenizer, doc.layout, "What is the code?")
    run = compaction.PassageRun(state.head_len, compacted.items)
    got = generation.prefill(model, q_ids, compaction.cache_of(model, compacted), run=run, phase="question")
    dense = generation.new_cache(model.config)
    generation.prefill(model, doc.prefix_ids(), dense)
    want = generation.prefill(model, q_ids, dense)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert run.question_mass.shape == (doc.total_tokens,) and float(run.question_mass.sum()) > 0
    assert float(run.answer_mass.sum()) == 0  # nothing decoded yet


def test_placed_passages_sit_right_after_the_head(tiny_engine, long_pdf):
    """A later passage placed first attends like the same text read at the start of the document."""
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(long_pdf)
    state = _read(model, doc, segments.Segmenting(**LONG))
    order = np.arange(200, 232)
    compacted = compaction.compact(model, state, order)
    head = state.head_len
    for layer in range(len(state.keys)):
        moved = rotary_positions(model).move(layer, state.keys[layer][:, :, order], state.positions[order],
                                             head + torch.arange(32))
        torch.testing.assert_close(compacted.keys[layer][:, :, head:].float(), moved, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(compacted.keys[layer][:, :, :head], state.head_keys[layer])


def _story(answer) -> tuple:
    return (answer.answer, [(c.page, c.boxes) for c in answer.citations],
            [(h.page, h.box, h.weight) for h in answer.highlights], [e.page for e in answer.evidence])


def test_a_question_reads_only_its_segments_and_answers_as_after_a_full_reading(long_engine, long_pdf, tmp_path,
                                                                                 small_model_dir):
    """A segment's keys and values depend only on the chat head, its overlap and its own tokens: reading only
    the segments a question needs gives the answer, citations and highlights a full reading gives."""
    doc = long_engine.open_document(long_pdf)
    assert doc.method == "select" and doc.total_tokens + len(doc.layout.head_ids) + 512 > 1024
    assert doc.used_tokens == doc.total_tokens and doc.segments > 3
    assert "reads the parts each question needs" in doc.notice() and "tokens" not in doc.notice()  # plain words
    seen = []
    answer = long_engine.ask(doc, "What is the code?", progress=lambda stage, done, total: seen.append(stage))
    assert "Reading the parts the question needs" in seen and "Finding the passages" not in seen
    assert 1 <= answer.timings["segments_read"] < doc.segments and not answer.cache_hit
    assert answer.attention["context"] == "passages" and answer.attention["attended_tokens"] <= 64 + 96
    assert answer.document["method"] == "select" and answer.notices == [doc.notice()]
    assert answer.evidence and answer.token_scores.shape == (doc.total_tokens,)
    # Another engine, with its own state cache, reads the whole document first, then answers.
    settings = EngineSettings(model=str(small_model_dir), device="cpu").changed(
        answer={"max_new_tokens": 6, "focal_tokens": 64}, reading=LONG)
    (tmp_path / "full").mkdir()
    full = Engine(settings, library=Library(tmp_path / "full" / "library.sqlite"))
    whole = full.open_document(long_pdf)
    assert full.read(whole) > 0
    after = full.ask(whole, "What is the code?")
    assert after.timings["segments_read"] == 0 and after.cache_hit
    assert _story(after) == _story(answer) and after.generated == answer.generated
    # A new engine on the first library restores just those segments from the state cache (in half precision:
    # the same answer and citations, the highlights' weights within a rounding).
    again = Engine(settings, library=long_engine.library)
    restored = again.ask(again.open_document(long_pdf), "What is the code?")
    assert restored.cache_hit and restored.timings["segments_loaded"] >= 1
    assert _story(restored)[::3] == _story(answer)[::3] and _story(restored)[1] == _story(answer)[1]
    assert [(h.page, h.box) for h in restored.highlights] == [(h.page, h.box) for h in answer.highlights]
    assert all(abs(a.weight - b.weight) < 0.02 for a, b in zip(restored.highlights, answer.highlights))


def _parts(engine) -> dict[str, int]:
    """The stored segment entries by kind ("segment" whole, "part"): their count."""
    kinds: dict[str, int] = {}
    for entry in engine.state_cache.entries():
        kind = entry["sha256"].split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def test_a_question_stores_only_the_tokens_it_used(long_engine, long_pdf, small_model_dir):
    """What a question reads is stored as the part of each segment the answer was given; a new process answers
    the same question from those parts without reading, another question of the same segments reads them again
    and widens the parts, and reading the whole document replaces the parts with whole segments."""
    doc = long_engine.open_document(long_pdf)
    first = long_engine.ask(doc, "What is the code?")
    read = first.timings["segments_read"]
    assert read >= 1 and _parts(long_engine).get("segment", 0) == 0 and _parts(long_engine)["part"] == read
    lazy = long_engine.readings.lazy(doc)
    held = {n: tokens for n, tokens in lazy._kept.items()}
    assert all(0 < len(tokens) <= lazy.segments[n][1] - lazy.segments[n][0] for n, tokens in held.items())
    assert sum(len(t) for t in held.values()) < 0.7 * sum(lazy.segments[n][1] - lazy.segments[n][0] for n in held)
    # a new process: the same question is answered from the parts, nothing read, the same answer
    settings = long_engine.settings
    again = Engine(settings, library=long_engine.library)
    doc2 = again.open_document(long_pdf)
    repeat = again.ask(doc2, "What is the code?")
    assert repeat.timings["segments_read"] == 0 and repeat.timings["segments_loaded"] >= 1
    assert repeat.generated == first.generated and _story(repeat)[::3] == _story(first)[::3]
    # tokens a part lacks: that segment is read again (once), and its part now holds both
    lazy2 = again.readings.lazy(doc2)
    number = sorted(held)[0]
    start, end = lazy2.segments[number]
    other = np.setdiff1d(np.arange(end - start), held[number])[:5] + start
    reading, local = lazy2.subset(other)
    assert lazy2.stats.read == 1 and reading.length == len(other)
    assert set(held[number]) < set(lazy2._kept[number]) and set(other - start) <= set(lazy2._kept[number])
    whole_segment = lazy2.segment(number)[0]  # the segment as it was just read again
    for layer in range(len(whole_segment)):
        torch.testing.assert_close(reading.keys[layer][:, :, local], whole_segment[layer][:, :, other - start])
    assert lazy2.missing()  # parts are not the whole reading
    # reading the whole document stores whole segments, which replace the parts
    assert again.read(doc2) > 0 and lazy2.missing() == []
    assert _parts(again) == {"segment": doc2.segments, "head": 1}


def test_truncation_stays_available(small_model_dir, library, long_pdf):
    engine = Engine(EngineSettings(model=str(small_model_dir), device="cpu").changed(answer={"max_new_tokens": 4}, reading={"long_documents": "truncate", **LONG}), library=library)
    doc = engine.open_document(long_pdf)
    assert doc.method == "truncate" and doc.truncated and "answers use pages 1-" in doc.notice()
    answer = engine.ask(doc, "What is the code?")
    last_word = doc.ingested.words_for_span(0, int(doc.layout.doc_offsets[doc.used_tokens - 1, 1])).stop
    assert answer.evidence and all(item.words[1] <= last_word for item in answer.evidence)  # only what was read


def test_reading_a_long_document_can_be_cancelled(long_engine, long_pdf):
    doc = long_engine.open_document(long_pdf)
    calls = []
    with pytest.raises(CancelledError):
        long_engine.read(doc, progress=lambda *a: calls.append(a), should_stop=lambda: len(calls) >= 2)


def test_a_model_without_rope_falls_back_to_truncation(long_engine, long_pdf, monkeypatch):
    from engine.errors import DocFocusError

    def refuse(model):
        raise DocFocusError("no RoPE")

    monkeypatch.setattr(positions, "rotary_positions", refuse)
    assert long_engine.open_document(long_pdf).method == "truncate"
