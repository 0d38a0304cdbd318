"""Prefill-time DGA (engine/attention/dga_prefill.py): exact where it must be, bounded where it compresses."""
from __future__ import annotations

import copy

import pytest
import torch

from engine.attention import contract as attention
from engine.attention.dga_prefill import PrefillRun, PrefillSettings, prefill_dga
from engine.errors import CancelledError
from engine.model import generation

HEAD = 6  # pretend chat head before the document
SMALL = dict(chunk=64, window=64, group_size=8, sinks=4, score_queries=8)


@pytest.fixture(scope="module")
def tiny(tiny_engine):
    model = copy.deepcopy(tiny_engine.loaded.model)
    attention.enable(model)
    return model


def _ids(count: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(100, 5000, (count,), generator=generator).tolist()


def _dense(model, ids, chunk):
    cache = generation.new_cache(model.config)
    logits = generation.prefill(model, ids, cache, chunk_size=chunk)
    return logits, cache


def _dga(model, ids, **options):
    settings = PrefillSettings(**{**SMALL, **options})
    run = PrefillRun(settings, doc_start=HEAD)
    cache = generation.new_cache(model.config)
    logits = prefill_dga(model, ids, cache, settings, doc_start=HEAD, run=run)
    return logits, cache, run


def _assert_same_cache(cache, other, tolerance):
    assert cache.get_seq_length() == other.get_seq_length()
    for mine, theirs in zip(cache.layers, other.layers):
        torch.testing.assert_close(mine.keys, theirs.keys, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(mine.values, theirs.values, rtol=tolerance, atol=tolerance)


def test_gamma_one_equals_dense(tiny):
    ids = _ids(600)
    dense_logits, dense_cache = _dense(tiny, ids, 64)
    logits, cache, run = _dga(tiny, ids, gamma=1.0)
    assert run.compressed_calls > 0  # the old region really went through the DGA path
    torch.testing.assert_close(logits, dense_logits, rtol=1e-4, atol=1e-4)
    _assert_same_cache(cache, dense_cache, 1e-4)
    assert run.attended_fraction() == 1.0


def test_short_cache_is_plain_sdpa(tiny):
    settings = PrefillSettings(**SMALL)
    ids = _ids(settings.window + settings.chunk)  # the last chunk has no whole block before its window
    dense_logits, dense_cache = _dense(tiny, ids, settings.chunk)
    logits, cache, run = _dga(tiny, ids)
    assert run.calls > 0 and run.compressed_calls == 0
    torch.testing.assert_close(logits, dense_logits, rtol=0, atol=0)
    _assert_same_cache(cache, dense_cache, 0)


def test_compression_changes_the_cache_and_shapes_hold(tiny):
    ids = _ids(600)
    dense_logits, dense_cache = _dense(tiny, ids, 64)
    logits, cache, run = _dga(tiny, ids)
    assert logits.shape == dense_logits.shape == (tiny.config.vocab_size,)
    assert logits.dtype == dense_logits.dtype and torch.isfinite(logits).all()
    assert cache.get_seq_length() == 600
    layer = cache.layers[1]  # layer 0's keys do not depend on attention; layer 1's do
    assert layer.keys.shape == dense_cache.layers[1].keys.shape
    assert layer.keys.shape[1] == tiny.config.num_key_value_heads < tiny.config.num_attention_heads  # GQA
    # The first window + chunk positions are computed exactly, later ones from a compressed view.
    exact = HEAD + SMALL["sinks"] + SMALL["window"] + SMALL["chunk"]
    torch.testing.assert_close(layer.keys[:, :, :exact - SMALL["chunk"]],
                               dense_cache.layers[1].keys[:, :, :exact - SMALL["chunk"]])
    assert not torch.allclose(layer.values[:, :, -64:], dense_cache.layers[1].values[:, :, -64:], atol=1e-5)
    assert 0 < run.attended_fraction() < 1


def test_attended_keys_are_bounded(tiny):
    total = 1200
    _, _, run = _dga(tiny, _ids(total), gamma=0.1)
    s = SMALL
    old = total - s["chunk"] - s["window"] - HEAD - s["sinks"]  # largest old region, whole chunks
    bound = HEAD + s["sinks"] + (s["window"] + s["group_size"] - 1) + s["chunk"] \
        + -(-old // 10) + old // s["group_size"] + 1
    assert run.max_keys <= bound
    assert run.max_keys < total / 2  # far fewer than the ~1200 a dense last chunk sees
    assert run.attended_fraction() < 0.5


def test_cancel_raises(tiny):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        prefill_dga(tiny, _ids(600), generation.new_cache(tiny.config), PrefillSettings(**SMALL), doc_start=HEAD,
                    should_stop=stop)


def test_run_only_acts_while_reading_and_settings():
    run = PrefillRun(PrefillSettings(), doc_start=3)
    assert run.attend(None, None, None, None, None, 1.0, "question") is None and run.calls == 0
    assert PrefillSettings().tag() != PrefillSettings(window=256).tag()
    with pytest.raises(ValueError):
        PrefillSettings(gamma=1.5)
    sinks_end, old_end, blocks = run.regions(total=4096, chunk=512)
    assert sinks_end == 7 and (old_end - sinks_end) == blocks * 16
    assert 4096 - 512 - old_end >= PrefillSettings().window > 4096 - 512 - old_end - 16


def test_half_precision_runs(tiny):
    model = copy.deepcopy(tiny).to(torch.bfloat16)
    logits, cache, run = _dga(model, _ids(400))
    assert run.compressed_calls > 0
    assert cache.layers[0].keys.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
