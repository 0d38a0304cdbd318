"""Checks that need a CUDA GPU: bf16 DGA against dense, restored states on the model's device, bf16 in the state
cache. Skipped without CUDA. DOCFOCUS_TEST_GPU_DEVICE=cpu runs the same checks on the CPU (how they were written
and checked: no GPU was available to this project)."""
from __future__ import annotations

import os

import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.attention import dga
from engine.library.documents import Library
from engine.model import generation
from engine.store import state_cache as sc

import pdfs

DEVICE = torch.device(os.environ.get("DOCFOCUS_TEST_GPU_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU")
PREFIX, QUESTION = list(range(1000, 4000)), [17, 29, 31, 45, 12, 99, 7, 300]


@pytest.fixture(scope="module")
def model():
    """A random bf16 model with a real head size (128) and grouped-query attention (4 query heads per KV head)."""
    from bench.gpu import build_model

    return build_model("llama", dict(hidden_size=1024, intermediate_size=2048, num_hidden_layers=2,
                                     num_attention_heads=8, num_key_value_heads=2, head_dim=128, vocab_size=8192,
                                     max_position_embeddings=8192), DEVICE, torch.bfloat16)


def _logits(model, settings, steps=8):
    """The question's logits and ``steps`` teacher-forced decode steps' (re-opening every 2 steps)."""
    cache = generation.new_cache(model.config)
    generation.prefill(model, PREFIX, cache)
    run = dga.DgaRun(settings, doc_start=4, doc_end=len(PREFIX)) if settings else None
    outputs = [generation.prefill(model, QUESTION, cache, run=run, phase="question")]
    for token in range(500, 500 + steps):
        outputs.append(generation.forward_logits(model, torch.tensor([[token]], device=DEVICE), cache, run, "decode"))
    return torch.stack(outputs).float(), run


def _assert_bf16_close(actual, expected):
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=3e-2, atol=3e-2 * scale)


def test_gamma_one_equals_dense_logits_in_bf16(model):
    dense, _ = _logits(model, None)
    full, run = _logits(model, dga.DgaSettings(gamma=1.0, reselect_every=2))
    assert dense.dtype == torch.float32 and next(model.parameters()).dtype == torch.bfloat16
    _assert_bf16_close(full, dense)
    assert run.attended_fraction() == 1.0


def test_dga_buffer_path_equals_dense_logits_in_bf16(model):
    """m = 1, gamma = 0: every document token is its own group, so the decode buffer (its additive bias, its
    re-opened blocks) must give dense attention's logits, in bf16, through DGA's own SDPA call."""
    dense, _ = _logits(model, None)
    grouped, run = _logits(model, dga.DgaSettings(gamma=0.0, group_size=1, sinks=0, min_focal=0, reselect_every=2))
    assert run.layers[0].buffer is not None and run.layers[0].buffer.keys.dtype == torch.bfloat16
    _assert_bf16_close(grouped, dense)
    compressed, _ = _logits(model, dga.DgaSettings(min_focal=0))  # the comparison can fail: DGA does change them
    assert float((compressed[1:] - dense[1:]).abs().max()) > float((grouped - dense).abs().max())
    assert run.answer_mass is not None and run.answer_mass.device.type == "cpu"


def _engine(model_dir, folder, **parts) -> Engine:
    parts["answer"] = {"max_new_tokens": 4, **parts.get("answer", {})}
    engine = Engine(EngineSettings(model=str(model_dir), device=DEVICE.type).changed(**parts),
                    library=Library(folder / "library.sqlite"))
    engine.load()
    return engine


def _on_model_device(engine, tensors) -> bool:
    return all(t.device.type == DEVICE.type and t.dtype == engine.loaded.dtype for t in tensors)


def test_restored_state_lands_on_the_models_device(tiny_model_dir, tmp_path, fact_pdf):
    whole = {"answer": {"context": "document"}}  # the whole document's reading is stored and restored
    first = _engine(tiny_model_dir, tmp_path, **whole)
    first.ask(first.open_document(fact_pdf), "Which code?")  # reads the document and stores its state
    engine = _engine(tiny_model_dir, tmp_path, **whole)
    state, _ = engine.readings.whole(engine.open_document(fact_pdf))
    assert state.source == "disk"
    assert _on_model_device(engine, [t for layer in state.cache.layers for t in (layer.keys, layer.values)])
    assert state.last_logits.device.type == DEVICE.type
    answer = engine.ask(engine.open_document(fact_pdf), "Which code?")  # and the model answers from it there
    assert answer.cache_hit and answer.model["device"].startswith(DEVICE.type)


def test_restored_long_document_reading_lands_on_the_models_device(tmp_path_factory, bundled_dir, tmp_path):
    from conftest import make_tiny_model

    small = make_tiny_model(tmp_path_factory.mktemp("gpu-small-window"), bundled_dir, window=1024)
    paragraphs = [pdfs.FILLER * 3 + f" Section {n} is about item number {n * 7}." for n in range(6)]
    pdf = pdfs.paragraphs_pdf(tmp_path / "long.pdf", paragraphs)
    options = {"reading": {"segment": 96, "overlap": 16}}
    first = _engine(small, tmp_path, **options)
    first.read(first.open_document(pdf))
    engine = _engine(small, tmp_path, **options)
    doc = engine.open_document(pdf)
    lazy = engine.readings.lazy(doc)
    assert doc.method == "select" and lazy.missing() == []
    reading = lazy.whole()
    assert _on_model_device(engine, reading.head_keys + reading.head_values + reading.keys + reading.values)


@pytest.mark.parametrize("storage, tolerance", [("model", 0.0), ("fp16", 1e-2), ("int8", 5e-2)])
def test_state_cache_stores_and_restores_bf16(tmp_path, storage, tolerance):
    generator = torch.Generator().manual_seed(0)
    layers = [tuple(torch.randn(1, 2, 300, 128, generator=generator).to(DEVICE, torch.bfloat16) for _ in range(2))
              for _ in range(3)]
    key = sc.StateKey("a" * 64, "m", "r", "bfloat16", 300, "h", storage, "prefill=dense")
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(key, layers, torch.zeros(5, device=DEVICE))
    restored = cache.load(key, torch.bfloat16, [DEVICE] * len(layers))
    for (keys, values), (got_keys, got_values) in zip(layers, restored.layers):
        for original, got in ((keys, got_keys), (values, got_values)):
            assert got.dtype == torch.bfloat16 and got.device.type == DEVICE.type
            torch.testing.assert_close(got.float(), original.float(), rtol=tolerance, atol=tolerance * 4)
    assert restored.last_logits.device.type == DEVICE.type
