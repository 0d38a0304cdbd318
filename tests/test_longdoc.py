"""Documents longer than the window (engine/longdoc.py): re-positioning, segments, compaction, the Engine path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pdfs
from engine import generation, longdoc
from engine.api import Engine, EngineSettings
from engine.errors import CancelledError

LONG = {"segment": 96, "overlap": 16, "focal": 64, "span": 16}


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory, bundled_dir):
    from conftest import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("small-window"), bundled_dir, window=1024)


@pytest.fixture()
def long_engine(small_model_dir, library):
    engine = Engine(EngineSettings(model=str(small_model_dir), device="cpu", max_new_tokens=6, long_options=LONG),
                    library=library)
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

    moved = longdoc.rotate(placed(at), (to - at)[0], longdoc.rotary_frequencies(model))
    torch.testing.assert_close(moved, placed(to), rtol=1e-4, atol=1e-4)


def test_segments_cover_the_document_and_resynchronise_after_an_edit():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50000, 20000)
    bounds = longdoc.segment_bounds(ids, 512)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(ids)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(256 <= end - start <= 768 for start, end in bounds[:-1])
    edited = np.concatenate([ids[:5000], rng.integers(0, 50000, 37), ids[5000:]])
    after = {(s - 37, e - 37) for s, e in longdoc.segment_bounds(edited, 512) if s > 6000}
    shared = [b for b in bounds if b[0] > 6000]
    assert sum(b in after for b in shared) >= len(shared) - 2  # only boundaries near the edit move


def test_one_segment_reads_like_a_dense_prefill(tiny_engine, fact_pdf):
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(fact_pdf)
    settings = longdoc.LongSettings(segment=4096)
    state = longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, settings)
    cache = generation.new_cache(model.config)
    generation.prefill(model, doc.prefix_ids(), cache)
    head = len(doc.layout.head_ids)
    for layer, (keys, values) in enumerate(zip(state.keys, state.values)):
        torch.testing.assert_close(keys, cache.layers[layer].keys[:, :, head:], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(values, cache.layers[layer].values[:, :, head:], rtol=1e-4, atol=1e-4)
    assert state.positions.tolist() == list(range(head, head + doc.total_tokens))


def test_segment_memo_gives_the_same_state(tiny_engine, long_pdf):
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(long_pdf)
    settings = longdoc.LongSettings(**LONG)
    fresh = longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, settings)
    memo: dict = {}
    longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, settings, memo=memo)
    assert len(fresh.segments) > 3 and 0 < len(memo) <= len(fresh.segments)  # repeated text: repeated segments
    reused = longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, settings, memo=memo)
    for a, b in zip(fresh.keys + fresh.values, reused.keys + reused.values):
        torch.testing.assert_close(a, b)
    assert int(fresh.positions.max()) < len(doc.layout.head_ids) + 96 * 3 // 2 + 16  # never past one segment


def test_all_focal_compaction_answers_like_dense(tiny_engine, fact_pdf):
    """With every token focal and one segment, the compacted document is the dense cache and the answer matches."""
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(fact_pdf)
    state = longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, longdoc.LongSettings(segment=4096))
    focal = np.ones(doc.total_tokens, dtype=bool)
    queries = [torch.randn(2, 16) for _ in state.keys]
    compacted = longdoc.compact(model, state, focal, queries, group_size=8)
    assert compacted.items == doc.total_tokens and all(float(b.abs().max()) == 0 for b in compacted.bias)
    from engine.prompt import question_ids

    q_ids = question_ids(tiny_engine.loaded.tokenizer, doc.layout, "What is the code?")
    run = longdoc.BiasRun(compacted, state.head_len)
    cache = longdoc.cache_with(model, compacted.keys, compacted.values)
    got = generation.prefill(model, q_ids, cache, hooks=longdoc.Hooks(run))
    dense = generation.new_cache(model.config)
    generation.prefill(model, doc.prefix_ids(), dense)
    want = generation.prefill(model, q_ids, dense)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert run.item_mass is not None and run.item_mass.shape == (doc.total_tokens,)


def test_groups_fold_the_rest_with_a_log_sum_exp_bias(tiny_engine, long_pdf):
    model = tiny_engine.loaded.model
    doc = tiny_engine.open_document(long_pdf)
    state = longdoc.read(model, doc.layout.head_ids, doc.layout.doc_ids, longdoc.LongSettings(**LONG))
    focal = np.zeros(doc.total_tokens, dtype=bool)
    focal[100:140] = True
    items = longdoc.group_items(focal, 16)
    assert items[-1] + 1 == 40 + int(np.ceil(100 / 16)) + int(np.ceil((doc.total_tokens - 140) / 16))
    query = [torch.randn(2, 16) for _ in state.keys]
    compacted = longdoc.compact(model, state, focal, query, 16, group_bias="lse")
    head = state.head_len
    layer, kv_head, group = 0, 1, 0  # the first group: document tokens 0-15
    members = longdoc.rotate(state.keys[layer][0, kv_head, :16], torch.full((16,), head) - state.positions[:16],
                             longdoc.rotary_frequencies(model))
    scaling = 16 ** -0.5
    logits = members @ query[layer][kv_head] * scaling
    expected = torch.softmax(logits, 0) @ members
    torch.testing.assert_close(compacted.keys[layer][0, kv_head, head + group], expected, rtol=1e-4, atol=1e-4)
    bias = compacted.bias[layer][kv_head, head + group]
    torch.testing.assert_close(bias + expected @ query[layer][kv_head] * scaling, torch.logsumexp(logits, 0),
                               rtol=1e-4, atol=1e-4)
    assert float(compacted.bias[layer][:, head + 7 + 5].abs().max()) == 0  # a focal token: no bias


def test_engine_reads_past_the_window_and_says_so(long_engine, long_pdf, library, small_model_dir):
    doc = long_engine.open_document(long_pdf)
    assert doc.method == "select" and doc.total_tokens + len(doc.layout.head_ids) + 512 > 1024
    assert doc.used_tokens == doc.total_tokens
    notice = doc.notice()
    assert f"{doc.total_tokens:,} tokens" in notice and "1,024" in notice and f"{doc.segments} segments" in notice
    seen = []
    answer = long_engine.ask(doc, "What is the code?", progress=lambda stage, done, total: seen.append((done, total)))
    assert seen and seen[-1] == (doc.total_tokens, doc.total_tokens)
    assert answer.attention["mode"] == "dga-select" and answer.attention["attended_tokens"] < long_engine.loaded.window
    assert answer.document["method"] == "select" and answer.notice == notice
    assert answer.evidence and answer.token_scores.shape == (doc.total_tokens,)
    assert answer.timings["prefill_s"] > 0 and not answer.cache_hit
    # A second engine restores the whole state from the state cache and answers the same.
    other = Engine(EngineSettings(model=str(small_model_dir), device="cpu", max_new_tokens=6, long_options=LONG),
                   library=library)
    again = other.ask(other.open_document(long_pdf), "What is the code?")
    assert again.cache_hit and again.timings["state_from"] == "disk" and again.answer == answer.answer


def test_truncation_stays_available(small_model_dir, library, long_pdf):
    engine = Engine(EngineSettings(model=str(small_model_dir), device="cpu", max_new_tokens=4,
                                   long_documents="truncate", long_options=LONG), library=library)
    doc = engine.open_document(long_pdf)
    assert doc.method == "truncate" and doc.truncated and "answers use pages 1-" in doc.notice()


def test_reading_a_long_document_can_be_cancelled(long_engine, long_pdf):
    doc = long_engine.open_document(long_pdf)
    calls = []
    with pytest.raises(CancelledError):
        long_engine.read(doc, progress=lambda *a: calls.append(a), should_stop=lambda: len(calls) >= 2)


def test_a_model_without_rope_falls_back_to_truncation(long_engine, long_pdf, monkeypatch):
    from engine.errors import DocFocusError

    def refuse(model):
        raise DocFocusError("no RoPE")

    monkeypatch.setattr(longdoc, "rotary_frequencies", refuse)
    assert long_engine.open_document(long_pdf).method == "truncate"
