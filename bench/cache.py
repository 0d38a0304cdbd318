"""State cache benchmark: cold vs warm time to first token in a new process, bytes per token per
storage format, and what 8-bit storage does to needle answers.

- Cold: a fresh process and an empty cache asks one question (prefill + store + answer).
- Warm: another fresh process asks a second question about the same PDF (restore + answer).
  Both report the engine's ``first_token_s`` (from ask() to the first answer token, model load
  excluded) and the whole process's wall time.
- Bytes per token: one state stored in each format; key/value bytes only (the stored last-position
  logits, 4 bytes x vocabulary, are reported apart).
- Needle: each case's state is computed once, stored in every format, and each format's restored
  state answers the question; accuracy per format and agreement with the exact (``model``) answers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common, timing
from bench.common import contains_answer, haystack_sentences, make_engine
from bench.speed import cell

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("model", "fp16", "int8")
QUESTIONS = ("What does this manual describe?", "What is the access code for the copper vault?")
NEEDLE = "The access code for the copper vault is 5831-22."


def haystack_pdf(engine, sentences: list[str], folder: Path, tokens: int, seed: int = 0,
                 needle: str | None = None, depth: float = 0.5) -> Path:
    """A PDF of real manual prose of about ``tokens`` document tokens, with ``needle`` at ``depth``."""
    start = (seed * 997) % max(1, len(sentences) - 2000)
    return common.haystack_pdf(engine, sentences, folder / f"haystack-{tokens}-{seed}.pdf", tokens, start, needle,
                               depth)


def worker(pdf: str, library: str, question: str, cache_format: str) -> None:
    """One question in this (new) process; prints the answer's JSON on the last line."""
    started = time.perf_counter()
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(device=os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")).changed(answer={"max_new_tokens": 24}, store={"cache_format": cache_format}), library=Library(library))
    engine.load()
    doc = engine.open_document(pdf)
    answer = engine.ask(doc, question).to_json()
    answer["process_s"] = round(time.perf_counter() - started, 2)
    answer["doc_tokens"] = doc.used_tokens
    print(json.dumps(answer))


def run_worker(pdf: Path, library: Path, question: str, cache_format: str = "model") -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench.cache", "--worker", str(pdf), str(library), question,
                             cache_format], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"worker failed: {result.stderr[-2000:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    answer["wall_s"] = round(time.perf_counter() - started, 2)
    return answer


def cold_and_warm(engine, sentences, folder: Path, tokens: int) -> dict:
    pdf = haystack_pdf(engine, sentences, folder, tokens, seed=tokens, needle=NEEDLE)
    library = folder / f"lib-{tokens}" / "library.sqlite"
    library.parent.mkdir()
    cold = run_worker(pdf, library, QUESTIONS[0])
    warm = run_worker(pdf, library, QUESTIONS[1])
    assert not cold["cache_hit"] and warm["cache_hit"], (cold["timings"], warm["timings"])
    return {
        "doc_tokens": cold["doc_tokens"],
        "cold_first_token_s": cold["timings"]["first_token_s"], "cold_prefill_s": cold["timings"]["prefill_s"],
        "cold_store_s": cold["timings"].get("store_s"), "cold_process_s": cold["process_s"],
        "warm_first_token_s": warm["timings"]["first_token_s"], "warm_restore_s": warm["timings"]["restore_s"],
        "warm_process_s": warm["process_s"], "load_s": warm["timings"]["load_s"],
        "warm_over_cold": round(warm["timings"]["first_token_s"] / cold["timings"]["first_token_s"], 4),
        "warm_answer": warm["answer"],
    }


def bytes_per_token(engine, sentences, folder: Path, tokens: int, rounds: int) -> dict:
    """Each format stored and loaded back, the formats interleaved over ``rounds`` rounds (bench/timing.py)."""
    from engine.store.state_cache import StateCache

    doc = engine.open_document(haystack_pdf(engine, sentences, folder, tokens, seed=99))
    state, _ = engine.readings.whole(doc)
    layers = [(layer.keys, layer.values) for layer in state.cache.layers]
    cache = StateCache(folder / "formats.sqlite", cap_bytes=1 << 40)
    logits_bytes = state.last_logits.numel() * 4
    result = {"prefix_tokens": state.prefix_len, "logits_bytes": logits_bytes}
    keys = {}
    for storage in FORMATS:
        engine.settings = engine.settings.changed(store={"cache_format": storage})
        keys[storage] = engine.state_key(doc)
    engine.settings = engine.settings.changed(store={"cache_format": "model"})
    stored = {}

    def store(storage):
        def sample():
            stored[storage] = cache.store(keys[storage], layers, state.last_logits)
        return sample

    def load(storage):
        return lambda: cache.load(keys[storage], engine.loaded.dtype)

    methods = {f"store {s}": store(s) for s in FORMATS}
    methods.update({f"load {s}": load(s) for s in FORMATS})
    spreads = timing.interleaved(methods, rounds, warmup=1)
    for storage in FORMATS:
        result[storage] = {"bytes_per_token": round((stored[storage] - logits_bytes) / state.prefix_len, 1),
                           "state_mb": round(stored[storage] / 1024**2, 2),
                           "store_s": spreads[f"store {storage}"].summary(digits=3),
                           "load_s": spreads[f"load {storage}"].summary(digits=3)}
    engine.forget(doc)
    return result


def needle_formats(engine, sentences, folder: Path, cases: int, tokens: int) -> dict:
    """Each case: prefill once, store every format, answer from each restored format (dense and DGA);
    also the KL divergence of the first answer token's distribution from the exact state's."""
    import torch

    from bench.needle import needle_case
    from engine.model import generation
    from engine.model.prompt import question_ids

    modes = ("dense", "dga")
    kept = engine.settings
    engine.settings = kept.changed(answer={"context": "document"})  # the attention mode applies
    answers = {f"{mode}/{storage}": [] for mode in modes for storage in FORMATS}
    kl = {storage: [] for storage in FORMATS}
    top1 = {storage: 0 for storage in FORMATS}
    for index in range(cases):
        needle, question, code = needle_case(index)
        doc = engine.open_document(haystack_pdf(engine, sentences, folder, tokens, seed=500 + index, needle=needle,
                                                depth=(index + 0.5) / cases))
        use(engine, cache_format="model")
        state, _ = engine.readings.whole(doc)  # prefill, stored in the model format
        layers = [(layer.keys, layer.values) for layer in state.cache.layers]
        for storage in ("fp16", "int8"):
            use(engine, cache_format=storage)
            engine.state_cache.store(engine.state_key(doc), layers, state.last_logits)
        reference = None
        for storage in FORMATS:
            use(engine, cache_format=storage)
            engine.forget(doc)  # force a restore from this format
            restored, _ = engine.readings.whole(doc)
            assert restored.source == "disk", restored.source
            q_ids = question_ids(engine.loaded.tokenizer, doc.layout, question)
            logits = generation.prefill(engine.loaded.model, q_ids, restored.cache, phase="question").float()
            generation.crop_cache(restored.cache, restored.prefix_len)
            log_p = torch.log_softmax(logits, -1)
            reference = log_p if reference is None else reference
            kl[storage].append(float(torch.sum(reference.exp() * (reference - log_p))))
            top1[storage] += int(torch.argmax(log_p) == torch.argmax(reference))
            for mode in (modes if index % 2 == 0 else modes[::-1]):
                use(engine, attention_mode=mode)
                answer = engine.ask(doc, question, max_new_tokens=16)
                answers[f"{mode}/{storage}"].append(answer.answer)
        engine.forget(doc)
    engine.settings = kept
    codes = [needle_case(index)[2] for index in range(cases)]
    return {"cases": cases, "doc_tokens": tokens, "codes": codes,
            "accuracy": {name: round(sum(contains_answer(a, [c]) for a, c in zip(got, codes)) / cases, 3)
                         for name, got in answers.items()},
            "same_answer_as_model": {name: round(sum(a == b for a, b in zip(got, answers[name.split("/")[0] + "/model"]))
                                                 / cases, 3) for name, got in answers.items()},
            "first_token_kl": {storage: float(f"{max(values):.3g}") for storage, values in kl.items()},
            "first_token_top1_agreement": {storage: round(top1[storage] / cases, 3) for storage in FORMATS},
            "answers": answers}


def use(engine, **changes) -> None:
    """Change some of the engine's store or attention settings (validated, as the settings dialog would)."""
    store = {k: v for k, v in changes.items() if k in ("cache_format", "use_cache", "cache_cap_bytes")}
    attention = {"mode": changes["attention_mode"]} if "attention_mode" in changes else {}
    engine.settings = engine.settings.changed(store=store, attention=attention)


def run(quick: bool, out_dir: Path) -> dict:
    engine = make_engine(answer={"max_new_tokens": 24})
    sentences = haystack_sentences()
    folder = Path(tempfile.mkdtemp(prefix="docfocus-bench-cache-"))
    lengths = (2000, 7000)
    timing = {str(tokens): cold_and_warm(engine, sentences, folder, tokens) for tokens in lengths}
    sizes = bytes_per_token(engine, sentences, folder, 1000, rounds=3 if quick else 7)
    needle = needle_formats(engine, sentences, folder, cases=4 if quick else 12, tokens=1200 if quick else 3000)
    rows = [f"| {t['doc_tokens']:,} | {t['cold_first_token_s']:.2f} s (prefill {t['cold_prefill_s']:.2f}, store "
            f"{t['cold_store_s']:.2f}) | {t['warm_first_token_s']:.2f} s (restore {t['warm_restore_s']:.2f}) | "
            f"{100 * t['warm_over_cold']:.1f}% | {t['cold_process_s']:.1f} / {t['warm_process_s']:.1f} s |"
            for t in timing.values()]
    acc, same = needle["accuracy"], needle["same_answer_as_model"]
    fmt_rows = [f"| {s} | {sizes[s]['bytes_per_token']:,.0f} | {cell(sizes[s]['store_s'], 3)} | "
                f"{cell(sizes[s]['load_s'], 3)} | "
                f"{acc['dense/' + s]:.2f} / {acc['dga/' + s]:.2f} | {same['dense/' + s]:.2f} / {same['dga/' + s]:.2f} | "
                f"{needle['first_token_kl'][s]:.2g} |" for s in FORMATS]
    markdown = "\n".join([
        "### State cache: time to first token in a new process (model load excluded)", "",
        "| doc tokens | cold (1st question) | warm (2nd question, restored) | warm / cold | process wall cold / warm |",
        "|---|---|---|---|---|", *rows, "",
        f"### Storage formats ({engine.loaded.id}, {engine.loaded.dtype}, state of {sizes['prefix_tokens']} tokens; "
        f"needle: {needle['cases']} cases at ~{needle['doc_tokens']} tokens)", "",
        "| format | K/V bytes per token | store s (median (min-max), formats interleaved) | load s | "
        "needle accuracy dense / DGA (whole document) | "
        "same answer as exact dense / DGA | max KL of 1st answer token vs exact |",
        "|---|---|---|---|---|---|---|", *fmt_rows, "",
        f"Every stored state also holds the last position's logits ({sizes['logits_bytes'] / 1024:.0f} KB).", ""])
    return {"timing": timing, "formats": sizes, "needle": needle, "markdown": markdown}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="internal: one benchmark question in a new process")
    parser.add_argument("--worker", nargs=4, metavar=("PDF", "LIBRARY", "QUESTION", "FORMAT"), required=True)
    worker(*parser.parse_args().worker)
