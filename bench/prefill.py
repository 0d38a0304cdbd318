"""Prefill-time DGA (engine/attention/dga_prefill.py) against dense chunked prefill, in one run on the bundled model:

(a) reading cost, dense and DGA interleaved (bench/timing.py: warm-up on 1,024 tokens, ABBA rounds, spread):
    tokens/s and peak memory of whole reads at 8K tokens, and at 32K and 64K depth the marginal cost of reading
    two more chunks after a cache of that depth (positions past the model's 8K window are fine for timing: the
    cache before them is the 8K document's, tiled, and attention cost does not depend on what the keys say);
(b) quality: needle accuracy within the window (4K and 7K tokens) when the engine reads the document densely
    or with DGA prefill (``EngineSettings.prefill``), both answered the same way (the whole document, dense
    attention), the two readings of a case one after the other.

Memory: on the CPU, "peak RSS" is the process's resident size sampled every 10 ms during the read minus the
size before it (it includes the KV cache the read fills); the attention temporaries of one layer call are also
given analytically. On CUDA it is torch.cuda.max_memory_allocated. DOCFOCUS_BENCH_THREADS=1 pins torch to one
thread: on a 2-core machine that other work keeps busy, two threads per process make every run several times
slower (dense 4K: 12 s with one thread, 65 s with two, measured at load 4).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench import timing
from bench.common import contains_answer, haystack_sentences, make_engine
from engine.attention import ops
from engine.attention.contract import AttentionRun

COST_LENGTH = 8192
DEPTHS = (32768, 65536)
NEEDLE_LENGTHS = (4096, 7168)
MODES = ("dense", "dga")


def text_ids(tokenizer, sentences: list[str], count: int) -> list[int]:
    """``count`` token ids of manual prose (cycling through the sentences if there are too few)."""
    ids: list[int] = []
    index = 0
    while len(ids) < count:
        ids += tokenizer(" " + " ".join(sentences[index:index + 200]), add_special_tokens=False)["input_ids"]
        index = (index + 200) % max(1, len(sentences) - 200)
    return ids[:count]


def attention_temporaries_mb(config, length: int, chunk: int, settings) -> dict:
    """Analytic size (MiB, float32) of the attention temporaries of one layer call for the LAST chunk of a
    ``length``-token prefill: dense = keys/values repeated for GQA + the boolean mask; DGA = gathered keys/values
    + the float mask + the scoring logits."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    dense = (2 * heads * length * dim * 4 + chunk * length) / 2**20
    old = max(0, length - chunk - settings.window - settings.sinks)
    keys = settings.sinks + settings.window + settings.group_size + chunk + old // 10 + old // settings.group_size
    dga = (2 * kv_heads * keys * dim + heads * chunk * keys + heads * settings.score_queries * length) * 4 / 2**20
    return {"dense_mb": round(dense, 1), "dga_mb": round(dga, 1), "dga_keys": keys}


class StackedRead(AttentionRun):
    """Dense causal attention for a chunk read after a cache, with the queries of a KV head stacked and one boolean
    mask shared by the layers, instead of transformers' SDPA call, which repeats every key and value for
    grouped-query attention when a mask is needed (any chunk after the first). A candidate for the product's dense
    read, timed by bench/gpu.py; exact (same kernels on the CPU: the logits match bit for bit there)."""

    def __init__(self) -> None:
        self._masks: dict = {}

    def attend(self, module, query, key, value, attention_mask, scaling, phase):
        length, total = query.shape[2], key.shape[2]
        if phase != "prefill" or length == 1 or length == total:  # nothing to repeat, or plain causal
            return None
        kv_heads, n_rep = key.shape[1], query.shape[1] // key.shape[1]
        shape = (length, total, n_rep, key.device)
        if shape not in self._masks:
            self._masks = {shape: ~ops.future_mask(length, total, n_rep, key.device)}  # True: may attend
        out = F.scaled_dot_product_attention(ops.stack_queries(query, kv_heads), key, value,
                                             attn_mask=self._masks[shape], scale=scaling)
        return ops.unstack_output(out, query.shape[1])


def read(model, ids: list[int], cache, mode: str, settings, run=None):
    """Feed ``ids`` into ``cache`` densely ("dense"), with prefill-time DGA ("dga", ``run`` a PrefillRun), or
    densely with ``StackedRead`` ("dense, stacked")."""
    from engine.attention.dga_prefill import prefill_dga
    from engine.model import generation

    if mode == "dga":
        return prefill_dga(model, ids, cache, settings, doc_start=0, run=run)
    run = StackedRead() if mode == "dense, stacked" else None
    return generation.prefill(model, ids, cache, run=run, chunk_size=settings.chunk)


def reading_methods(model, ids: list[int], settings, device, memory: dict, runs: dict, modes=MODES,
                    base=None) -> dict:
    """Callables for ``timing.interleaved``: each reads ``ids`` into a fresh cache, or after ``base`` (a cache,
    cropped back after the read); returns the read's seconds. Peak memory above the start goes to
    ``memory[mode]``, the last DGA run to ``runs``."""
    from engine.attention.dga_prefill import PrefillRun
    from engine.model import generation

    def method(mode):
        def sample() -> float:
            cache = base if base is not None else generation.new_cache(model.config)
            depth = cache.get_seq_length()
            run = PrefillRun(settings, doc_start=0) if mode == "dga" else None
            try:
                with timing.PeakMemory(device) as peak:
                    started = time.perf_counter()
                    read(model, ids, cache, mode, settings, run=run)
                    timing.synchronize(device)
                    seconds = time.perf_counter() - started
            finally:
                generation.crop_cache(cache, depth)
            memory[mode] = max(memory.get(mode, 0.0), peak.extra_mb)
            runs[mode] = run
            return seconds
        return sample
    return {mode: method(mode) for mode in modes}


def reading_row(spreads: dict, memory: dict, runs: dict, tokens: int, **extra) -> dict:
    row = {"tokens": tokens, **extra}
    for mode, spread in spreads.items():
        row[mode] = {"seconds": spread.summary(digits=2), "tokens_per_s": timing.Spread(
            [tokens / s for s in spread.samples]).summary(digits=1), "peak_extra_mb": memory.get(mode),
                     "attended_fraction": runs[mode].attended_fraction() if runs.get(mode) else 1.0}
        if mode != "dense":
            row[mode]["speedup"] = timing.ratios(spreads["dense"], spread).summary(digits=2)
    return row


def tiled_cache(model, base, length: int):
    """A cache of ``length`` positions: ``base``'s keys/values repeated (attention cost ignores their content)."""
    from engine.model import generation

    cache = generation.new_cache(model.config)
    for index, layer in enumerate(base.layers):
        repeat = -(-length // layer.keys.shape[2])
        cache.update(layer.keys.repeat(1, 1, repeat, 1)[:, :, :length],
                     layer.values.repeat(1, 1, repeat, 1)[:, :, :length], index)
    return cache


def cost(engine, settings, rounds: int) -> tuple[dict, list[dict]]:
    """Whole 8K reads, and two more chunks at each depth, dense and DGA interleaved."""
    from engine.model import generation

    model, device = engine.loaded.model, engine.loaded.device
    sentences = haystack_sentences()
    ids = text_ids(engine.loaded.tokenizer, sentences, COST_LENGTH)
    memory, runs = {}, {}
    for sample in reading_methods(model, ids[:1024], settings, device, {}, {}).values():  # warm-up
        sample()
    spreads = timing.interleaved(reading_methods(model, ids, settings, device, memory, runs), rounds, warmup=0,
                                 device=device)
    whole = reading_row(spreads, memory, runs, len(ids), load_average=timing.load_average(),
                        **attention_temporaries_mb(model.config, len(ids), settings.chunk, settings))
    print(f"  read {len(ids)} tokens: " + ", ".join(f"{m} {whole[m]['tokens_per_s']['median']} tok/s"
                                                    for m in MODES), flush=True)
    base = generation.new_cache(model.config)
    generation.prefill(model, ids, base, chunk_size=settings.chunk)
    deep = []
    extra = 2 * settings.chunk
    for depth in DEPTHS:
        cache = tiled_cache(model, base, depth - extra)
        memory, runs = {}, {}
        spreads = timing.interleaved(reading_methods(model, ids[:extra], settings, device, memory, runs,
                                                     base=cache), rounds, warmup=0, device=device)
        deep.append(reading_row(spreads, memory, runs, extra, depth=depth, load_average=timing.load_average(),
                                **attention_temporaries_mb(model.config, depth, settings.chunk, settings)))
        del cache
        print(f"  at depth {depth}: " + ", ".join(f"{m} {deep[-1][m]['tokens_per_s']['median']} tok/s"
                                                  for m in MODES), flush=True)
    return whole, deep


def answer_with(engine, base, doc, question: str, mode: str):
    """Read ``doc`` densely or with DGA prefill (the engine's own read), answer from the whole document with dense
    attention; returns (answer, seconds spent reading)."""
    engine.settings = base.changed(reading={"prefill": mode})
    engine.forget(doc)
    try:
        _, seconds = engine.readings.whole(doc)
        return engine.ask(doc, question), seconds
    finally:
        engine.forget(doc)
        engine.settings = base


def needles(engine, quick: bool, folder: Path) -> list[dict]:
    from bench.needle import build_case, evidence_hit  # imported here: it registers the baseline strategies

    sentences = haystack_sentences()
    cases = 6 if quick else 20
    base = engine.settings.changed(answer={"context": "document"}, attention={"mode": "dense"}, store={"use_cache": False})
    rows = []
    for length in NEEDLE_LENGTHS:
        for index in range(cases):
            depth = index / max(1, cases - 1)
            path, needle, question, code = build_case(engine, sentences, folder, length, depth, index)
            doc = engine.open_document(path)
            marks = []
            for mode in (MODES if index % 2 == 0 else MODES[::-1]):  # the order alternates from case to case
                answer, seconds = answer_with(engine, base, doc, question, mode)
                correct = contains_answer(answer.answer, [code])
                rows.append({"length": length, "case": index, "depth": round(depth, 2), "prefill": mode,
                             "tokens": doc.total_tokens, "correct": correct,
                             "evidence_hit": evidence_hit(answer, needle, doc), "answer": answer.answer[:120],
                             "prefill_s": round(seconds, 2)})
                marks.append(f"{mode}={'Y' if correct else '-'} {seconds:.0f}s")
            print(f"  needle {length} case {index}: " + " ".join(marks), flush=True)
    return rows


def summarize_needles(rows) -> dict:
    summary = {}
    for length in NEEDLE_LENGTHS:
        entry = {}
        for mode in MODES:
            mine = sorted((r for r in rows if r["length"] == length and r["prefill"] == mode), key=lambda r: r["case"])
            entry[mode] = {"accuracy": round(sum(r["correct"] for r in mine) / len(mine), 3),
                           "evidence_hit": round(sum(r["evidence_hit"] for r in mine) / len(mine), 3),
                           "prefill_s": round(sum(r["prefill_s"] for r in mine) / len(mine), 2)}
            entry[f"{mode}_rows"] = mine
        pairs = list(zip(entry.pop("dense_rows"), entry.pop("dga_rows")))
        entry["difference_points"] = round(100 * (entry["dga"]["accuracy"] - entry["dense"]["accuracy"]), 1)
        entry["agreement"] = round(sum(a["correct"] == b["correct"] for a, b in pairs) / len(pairs), 3)
        summary[str(length)] = entry
    return summary


def cost_markdown(settings, whole: dict, deep: list[dict], context: str) -> str:
    text = (f"Prefill-time DGA (chunk {settings.chunk}, window {settings.window}, gamma {settings.gamma}, "
            f"m {settings.group_size}, sinks {settings.sinks}, {settings.score_queries} scoring queries); "
            f"{context}; median (min-max) of the interleaved rounds, speed-ups per round:\n\n"
            "| tokens | read | tokens/s | speed-up | peak +MiB | attn temp. MiB (analytic) | keys attended | load |\n"
            "|---|---|---|---|---|---|---|---|\n")
    for mode in MODES:
        text += reading_line(f"{whole['tokens']:,}", whole, mode, whole["dense_mb" if mode == "dense" else "dga_mb"])
    text += ("\nReading at depth (two more chunks after a cache of depth - 1,024 positions; peak beyond the cache):"
             "\n\n| depth | read | tokens/s | speed-up | peak +MiB | attn temp. MiB (analytic) | keys attended | "
             "load |\n|---|---|---|---|---|---|---|---|\n")
    for row in deep:
        for mode in MODES:
            text += reading_line(f"{row['depth']:,}", row, mode, row["dense_mb" if mode == "dense" else "dga_mb"])
    return text


def reading_line(label: str, row: dict, mode: str, analytic) -> str:
    from bench.speed import cell

    entry = row[mode]
    speedup = f"{cell(entry['speedup'], 2)}x" if "speedup" in entry else "-"
    return (f"| {label} | {mode} | {cell(entry['tokens_per_s'])} | {speedup} | {entry['peak_extra_mb']} | "
            f"{analytic if analytic is not None else '-'} | {entry['attended_fraction']:.3f} | "
            f"{row.get('load_average', '-')} |\n")


def needle_markdown(summary: dict, cases: int) -> str:
    text = (f"\nNeedle accuracy, {cases} cases per length, the engine's read (dense or DGA prefill), answered from "
            "the whole document with dense attention:\n\n| tokens | dense prefill acc / evidence@3 | DGA prefill acc "
            "/ evidence@3 | difference (points) | same verdict |\n|---|---|---|---|---|\n")
    for length, entry in summary.items():
        text += (f"| {int(length):,} | {entry['dense']['accuracy']:.2f} / {entry['dense']['evidence_hit']:.2f} | "
                 f"{entry['dga']['accuracy']:.2f} / {entry['dga']['evidence_hit']:.2f} | "
                 f"{entry['difference_points']:+.1f} | {entry['agreement']:.2f} |\n")
    return text


def run(quick: bool, out_dir: Path) -> dict:
    from engine.attention.dga_prefill import PrefillSettings

    engine = make_engine(answer={"max_new_tokens": 24}, attention={"mode": "dense"}, store={"use_cache": False})
    settings = PrefillSettings()
    folder = out_dir / "needle-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    load = [timing.load_average()]
    whole, deep = cost(engine, settings, 2 if quick else 3)
    load.append(timing.load_average())
    context = (f"{engine.loaded.id} on {engine.loaded.device}, {torch.get_num_threads()} torch thread(s), load "
               f"average {load[0]} at the start and {load[1]} after the timings (per row in the last column)")
    cases = 6 if quick else 20
    rows = needles(engine, quick, folder)
    summary = summarize_needles(rows)
    (out_dir / "prefill-cases.json").write_text(json.dumps(rows, indent=1))
    return {"settings": settings.to_dict(), "threads": torch.get_num_threads(), "load_average": load,
            "cost": whole, "at_depth": deep, "needle": summary, "cases_per_length": cases,
            "markdown": cost_markdown(settings, whole, deep, context) + needle_markdown(summary, cases)}
