"""Every popular open family works in every context, past the window included (issue 25).

For a tiny random model of each family (tests/families.py), on the CPU:

1. DocFocus's attention with nothing dropped (dense, and DGA with groups of one token) gives the model's own
   logits (eager attention, one pass) on an input longer than the sliding window;
2. keys moved from position p to q are the keys the model computes at q, in every layer (each its own
   rotation: Gemma 3's two bases, llama3 scaling, Phi's partial rotary, SmolLM3's layers without RoPE);
3. passages answered from a segmented reading equal the same passages answered from a whole reading of what
   their segment saw (and, where every layer slides, of the whole document);
4. the state cache restores each family's reading exactly, and the Engine answers in both contexts, within
   the window and past it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from families import ALL_SLIDING, FAMILIES, SLIDING, make_family_model

from engine.api import Engine, EngineSettings
from engine.attention import compaction, contract
from engine.attention.dga import DgaRun, DgaSettings
from engine.library.documents import Library
from engine.model import generation
from engine.model.positions import rotary_positions
from engine.reading import segments
from engine.reading.lazy import LazyReading

import pdfs

WINDOW = 1024  # small enough that tests/pdfs long documents are read in segments
ATOL = 2e-4


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_dir(request, tmp_path_factory, bundled_dir):
    return request.param, make_family_model(request.param, tmp_path_factory.mktemp(request.param), bundled_dir,
                                            window=WINDOW)


@pytest.fixture()
def model(family_dir):
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(family_dir[1], dtype=torch.float32).eval()
    contract.enable(loaded)
    return loaded


def _ids(model, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1000, model.config.vocab_size - 1, (1, length), generator=generator)


def _keys_at(model, ids: torch.Tensor, first: int) -> list[torch.Tensor]:
    """Every layer's keys (1, H_kv, N, D) for ``ids`` read at positions first, first + 1, ..."""
    cache = generation.new_cache(model.config)
    position_ids = first + torch.arange(ids.shape[1])[None]
    with torch.no_grad():
        model(input_ids=ids, position_ids=position_ids, use_cache=True, **{generation._cache_kwarg(model): cache})
    return [layer.keys.clone() for layer in cache.layers]


# ---------------------------------------------------------------- 1. nothing dropped = the model's own attention


@pytest.mark.parametrize("how", ["dense", "groups of one"])
def test_custom_attention_with_nothing_dropped_is_the_models_own(model, family_dir, how):
    ids = _ids(model, 120)
    head, doc_end, question_end = 6, 96, 104  # the document is three sliding windows long
    assert doc_end > 2 * SLIDING
    model.set_attn_implementation("eager")
    with torch.no_grad():
        want = model(input_ids=ids).logits[0]  # (T, V): the model's own attention, one pass
    contract.enable(model)
    cache = generation.new_cache(model.config)
    generation.prefill(model, ids[0, :doc_end], cache, chunk_size=16)  # chunks cross the sliding windows
    settings = (DgaSettings(gamma=1.0) if how == "dense" else
                DgaSettings(gamma=0.0, min_focal=0, group_size=1, sinks=0, reselect_every=2, expand=2))
    run = DgaRun(settings, head, doc_end)
    got = [generation.prefill(model, ids[0, doc_end:question_end], cache, run=run, phase="question")]
    for step in range(question_end, ids.shape[1]):
        got.append(generation.forward_logits(model, ids[:, step:step + 1], cache, run))
    torch.testing.assert_close(torch.stack(got), want[question_end - 1:], rtol=1e-4, atol=ATOL)
    if how == "groups of one":  # the layers that see the whole document did go through DGA's decode buffer
        compressed = [layer for layer, state in run.layers.items() if state.buffer is not None]
        assert compressed == ([] if family_dir[0] in ALL_SLIDING else [1] if family_dir[0].startswith("gemma")
                              else [0, 1])


# ---------------------------------------------------------------- 2. moved keys = the model's keys there


@pytest.mark.parametrize("source, target", [(0, 300), (300, 7), (40, 41)])
def test_keys_moved_from_p_to_q_are_the_keys_the_model_computes_at_q(model, source, target):
    ids = _ids(model, 20, seed=1)  # shorter than the sliding window: every key is kept
    at_source, at_target = _keys_at(model, ids, source), _keys_at(model, ids, target)
    positions = rotary_positions(model)
    moved = positions.move_layers(at_source, source + torch.arange(20), target + torch.arange(20))
    for layer, (got, want) in enumerate(zip(moved, at_target)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=ATOL, msg=f"layer {layer}")
    assert positions.layers == model.config.num_hidden_layers


def test_each_layer_is_moved_with_its_own_rotation(model, family_dir):
    family = family_dir[0]
    kinds = rotary_positions(model).layer_kinds
    if family in ("gemma2", "gemma3"):
        assert kinds == (["sliding_attention", "full_attention"] if family == "gemma3" else ["default"] * 2)
    elif family == "smollm3":
        assert kinds == ["default", None]  # its second layer has no RoPE: its keys never move
    else:
        assert kinds == ["default", "default"]


# ---------------------------------------------------------------- 3. segments + passages = a whole reading


def _answer_logits(model, reading, token_index, q_ids, steps: int = 3) -> torch.Tensor:
    """Logits (steps + 1, V) of the question and a few greedy steps over the placed passages."""
    compacted = compaction.compact(model, reading, token_index)
    cache = compaction.cache_of(model, compacted)
    run = compaction.PassageRun(reading.head_len, compacted.items)
    logits = [generation.prefill(model, q_ids, cache, run=run, phase="question")]
    for _ in range(steps):
        token = torch.argmax(logits[-1]).view(1, 1)
        logits.append(generation.forward_logits(model, token, cache, run))
    return torch.stack(logits)


def _whole_reading(model, head_ids, doc_ids) -> segments.Reading:
    cache = generation.new_cache(model.config)
    generation.prefill(model, list(head_ids) + list(doc_ids), cache)
    return segments.Reading.of_cache(cache, len(head_ids), len(doc_ids))


def test_passages_from_segments_answer_like_a_whole_reading(model, family_dir):
    ids = _ids(model, 400, seed=2)[0].numpy()
    head_ids, doc_ids, q_ids = ids[:5].tolist(), ids[5:390], ids[390:].tolist()
    cut = segments.Segmenting(segment=96, overlap=SLIDING + 8)
    lazy = LazyReading.in_memory(model, head_ids, doc_ids, cut)
    number = 2
    start, end = lazy.segments[number]
    context = max(0, start - cut.overlap)
    chosen = np.concatenate([np.arange(start + 30, start + 50), np.arange(start + 5, start + 20)])  # rank order
    reading, local = lazy.subset(chosen)
    got = _answer_logits(model, reading, local, q_ids)
    # What segment 2 saw, read whole: the same keys at the same positions.
    seen = _whole_reading(model, head_ids, doc_ids[context:end])
    torch.testing.assert_close(got, _answer_logits(model, seen, chosen - context, q_ids), rtol=1e-4, atol=ATOL)
    if family_dir[0] in ALL_SLIDING:  # every layer slides: the whole document's keys are the segment's, moved
        whole = _whole_reading(model, head_ids, doc_ids)
        assert int(whole.positions[chosen[0]]) != int(reading.positions[local[0]])
        torch.testing.assert_close(got, _answer_logits(model, whole, chosen, q_ids), rtol=1e-4, atol=ATOL)


# ---------------------------------------------------------------- 4. the state cache and the Engine, every context


def _engine(model_dir, library: Library, context: str) -> Engine:
    settings = EngineSettings(model=str(model_dir), device="cpu").changed(  # stored exactly: states are compared
        answer={"max_new_tokens": 4, "context": context, "focal_tokens": 64}, reading={"segment": 192, "overlap": 16},
        store={"cache_format": "model"})
    return Engine(settings, library=library)


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory):
    paragraphs = [pdfs.FILLER * 3 + f" Section {n} is about item number {n * 7}." for n in range(6)]
    paragraphs[4] += " " + pdfs.FACT
    return pdfs.paragraphs_pdf(tmp_path_factory.mktemp("long") / "long.pdf", paragraphs)


def test_the_engine_answers_in_both_contexts_past_the_window_and_restores_exactly(family_dir, tmp_path, fact_pdf,
                                                                                  long_pdf):
    library = Library(tmp_path / "library.sqlite")
    engine = _engine(family_dir[1], library, "passages")
    doc = engine.open_document(fact_pdf)
    for context in ("passages", "document"):
        engine.settings = engine.settings.changed(answer={"context": context})
        answer = engine.ask(doc, "What is the launch code?")
        assert answer.generated and answer.attention["context"] == context and answer.notice is None
    computed, _ = engine.readings.whole(doc)
    other = _engine(family_dir[1], library, "document")  # as after a restart: the state cache
    restored, _ = other.readings.whole(other.open_document(fact_pdf))
    assert restored.source == "disk"
    for mine, theirs in zip(computed.cache.layers, restored.cache.layers):  # sliding layers too: every position
        assert mine.keys.shape[2] == computed.prefix_len
        assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)
    assert torch.equal(computed.last_logits, restored.last_logits)

    long_doc = engine.open_document(long_pdf)
    assert long_doc.method == "select" and long_doc.segments > 3  # read past the window, in segments
    past = engine.ask(long_doc, "What is the launch code?")
    assert past.generated and past.attention["context"] == "passages" and "reads the parts each question needs" in past.notice
    again = other.ask(other.open_document(long_pdf), "What is the launch code?")  # its segments from the cache
    assert again.generated == past.generated and again.cache_hit


# ---------------------------------------------------------------- a model whose positions cannot move; base models


def test_a_model_whose_positions_cannot_move_answers_from_what_it_read(tmp_path, bundled_dir, fact_pdf, long_pdf):
    from families import make_gpt2_model

    from engine.api import FIXED_POSITIONS

    folder = make_gpt2_model(tmp_path / "gpt2", bundled_dir, window=WINDOW)
    engine = _engine(folder, Library(tmp_path / "library.sqlite"), "passages")
    answer = engine.ask(engine.open_document(fact_pdf), "What is the launch code?")
    assert answer.generated and answer.attention["context"] == "document" and answer.notice == FIXED_POSITIONS
    doc = engine.open_document(long_pdf)
    assert doc.method == "truncate"  # the part that fits, said plainly
    answer = engine.ask(doc, "What is the launch code?")
    assert answer.generated and "answers use pages 1-" in answer.notice and FIXED_POSITIONS in answer.notice


def test_a_base_model_gets_a_plain_document_and_question_prompt(bundled_dir):
    from transformers import AutoTokenizer

    from engine.model.prompt import BASE_STOPS, chat_ids, stop_texts

    tokenizer = AutoTokenizer.from_pretrained(bundled_dir)
    assert stop_texts(tokenizer) == ()  # a chat model ends with its end-of-turn token
    tokenizer.chat_template = None  # as a base model's tokenizer (Gemma 3 270M)
    prompt = tokenizer.decode(chat_ids(tokenizer, "The tower is 38 meters tall.", "How tall is it?"))
    assert prompt == "Document:\nThe tower is 38 meters tall.\n\nQuestion: How tall is it?\nAnswer:"
    assert stop_texts(tokenizer) == BASE_STOPS


@pytest.mark.parametrize("continuation, answer", [
    (" The tower is 38 meters tall. Question: How many steps are there?", "The tower is 38 meters tall."),
    (" 38 meters.\nQuestion: How many steps?\nAnswer: 300", "38 meters."),
    (" 38 meters.\n\nThe tower was built in 1900.", "38 meters."),
    ("\n\n38 meters, with 300 steps.", "38 meters, with 300 steps."),  # a blank line before any answer is no end
])
def test_a_base_models_answer_stops_where_it_ends(bundled_dir, continuation, answer):
    from transformers import AutoTokenizer

    from engine.model.prompt import BASE_STOPS

    tokenizer = AutoTokenizer.from_pretrained(bundled_dir)
    stream = generation.TextStream(tokenizer, BASE_STOPS)
    shown = []
    for token in tokenizer(continuation, add_special_tokens=False)["input_ids"]:
        shown.append(stream.push(token))
        if stream.stopped:
            break
    shown.append(stream.flush())
    assert stream.stopped == (answer != continuation.strip())
    assert stream.text.strip() == answer and "".join(shown) == stream.text  # nothing past the end was streamed
