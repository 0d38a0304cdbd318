"""The benchmark's timing helpers (bench/timing.py) and the decode measurement built on them (bench/speed.py),
on the tiny random model: interleaving, spreads, the attention timer, teacher-forced decoding."""
from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import speed, timing
from engine.attention import contract as attention
from engine.model import generation
from engine.settings import EngineSettings

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_interleaved_warms_up_then_alternates_the_order():
    calls = []
    methods = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    spreads = timing.interleaved(methods, rounds=3, warmup=1)
    assert calls == list("ABC") + list("ABC") + list("CBA") + list("ABC")
    assert {name: len(spread.samples) for name, spread in spreads.items()} == {"A": 3, "B": 3, "C": 3}


def test_a_method_that_measures_itself_is_taken_at_its_word():
    spreads = timing.interleaved({"own": lambda: 0.25, "wall": lambda: None}, rounds=2, warmup=0)
    assert spreads["own"].samples == [0.25, 0.25]
    assert all(0 <= s < 0.25 for s in spreads["wall"].samples)


def test_spread_and_per_round_ratios():
    slow, fast = timing.Spread([4.0, 6.0, 5.0]), timing.Spread([2.0, 2.0, 1.0])
    assert slow.summary(1000) == {"min": 4000.0, "median": 5000.0, "max": 6000.0, "n": 3}
    assert timing.ratios(slow, fast).samples == [2.0, 3.0, 5.0]  # round by round, not median over median
    assert slow.cell() == "5.0 (4.0-6.0)"


def test_peak_memory_sees_an_allocation_on_the_cpu():
    # In a fresh process: here the allocator may hand back pages earlier tests freed, and RSS would not move.
    script = ("import torch, time; from bench.timing import PeakMemory\n"
              "with PeakMemory('cpu') as memory:\n"
              "    block = torch.ones(64 * 2**20 // 4); block += 1; time.sleep(0.05); del block\n"
              "print(memory.extra_mb)")
    done = subprocess.run([sys.executable, "-c", script], cwd=BENCH.parent, capture_output=True, text=True,
                          timeout=120)
    assert 48 <= float(done.stdout.strip().splitlines()[-1]) < 1024, done.stderr[-1000:]


def test_no_benchmark_reaches_into_the_engine_privately():
    """bench/ uses the engine's public names only (a private name it needs becomes a small public method)."""
    offenders = []
    for path in sorted(BENCH.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            private_attribute = (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                                 and not node.attr.startswith("__")
                                 and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")))
            private_import = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine") and any(
                alias.name.startswith("_") for alias in node.names)
            if private_attribute or private_import:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.fixture(scope="module")
def tiny(tiny_engine):
    model = copy.deepcopy(tiny_engine.loaded.model)
    attention.enable(model)
    return model


def _document_cache(model, length=600):
    cache = generation.new_cache(model.config)
    generation.prefill(model, list(range(100, 100 + length)), cache)
    return cache, length


def test_timed_attention_leaves_the_logits_unchanged_and_is_part_of_the_step(tiny):
    cache, prefix = _document_cache(tiny)
    question, step = list(range(20, 40)), torch.tensor([[77]])

    def logits_of(run):
        try:
            generation.prefill(tiny, question, cache, run=run, phase="question")
            return torch.stack([generation.forward_logits(tiny, step, cache, run, "decode") for _ in range(5)])
        finally:
            generation.crop_cache(cache, prefix)

    settings = EngineSettings()
    for mode in ("sdpa", "dga"):
        plain = logits_of(speed.make_run(mode, settings, 2, prefix))
        timer = timing.AttentionTimer(speed.make_run(mode, settings, 2, prefix), "cpu")
        torch.testing.assert_close(logits_of(timer), plain, rtol=0, atol=0)
        assert timer.seconds() > 0


def test_decode_sample_is_teacher_forced_and_crops_the_cache_back(tiny):
    cache, prefix = _document_cache(tiny)
    forced = speed.Forced(speed.forced_tokens(tiny.config.vocab_size))
    produced = []

    def recording(logits, so_far):
        produced[:] = so_far
        return forced(logits, so_far)

    run = speed.make_run("dga", EngineSettings(), 2, prefix)
    timer = timing.AttentionTimer(run, "cpu")
    seconds, share = speed.decode_sample(tiny, cache, prefix, list(range(20, 40)), None, recording, "cpu", timer)
    assert cache.get_seq_length() == prefix
    assert produced == forced.tokens[:speed.SKIP + speed.STEPS - 1]  # the forced tokens, none repeated
    assert len(set(forced.tokens)) == len(forced.tokens)
    assert seconds > 0 and 0 < share < 1
    assert run.attended_fraction() < 1  # the DGA run really compressed the 598-token document


def test_timed_decode_compares_the_three_methods_on_one_cache(tiny):
    cache, prefix = _document_cache(tiny)
    row = speed.timed_decode(tiny, cache, 2, prefix, list(range(20, 40)), EngineSettings(), "cpu", rounds=2)
    assert row["tokens"] == prefix - 2
    for mode in speed.METHODS:
        assert row[f"{mode}_ms"]["n"] == 2 and row[f"{mode}_ms"]["min"] > 0
    assert row["dga_vs_dense"]["n"] == 2
    assert row["dense_attention_share"]["n"] == 2 and 0 < row["dga_attention_share"]["median"] < 1
    assert row["attended_fraction"] < 1
    assert "| 598 |" in speed.decode_markdown([row], {"model": "tiny", "dtype": "float32", "device": "cpu",
                                                      "threads": 1, "load_average": [0.1, 0.2], "rounds": 2})


def test_attention_step_measures_dga_against_its_floor():
    row = speed.attention_step(2048, 4, 2, 16, EngineSettings().attention.dga, torch.device("cpu"),
                               torch.float32, rounds=3)
    assert row["kept_keys"] < 2048 * 0.3 and row["attended_fraction"] < 0.3
    for name in ("dense_ms", "dense_stacked_ms", "dga_ms", "floor_ms", "dga_question_ms", "dense_question_ms",
                 "dga_amortised_ms", "dense_amortised_ms"):
        assert row[name]["n"] == 3 and row[name]["min"] > 0, name
    assert row["dga_amortised_ms"]["min"] > row["dga_ms"]["min"]  # the question's work is spread over the answer
    assert "| 2,048 |" in speed.step_markdown([row])
