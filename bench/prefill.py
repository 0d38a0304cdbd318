"""Prefill-time DGA (engine/dga_prefill.py) vs dense chunked prefill, in one run on the bundled model:

(a) reading cost: wall time, tokens/s and peak memory of the prefill at 8K tokens (dense and DGA, twice each in
    ABBA order, the faster of the two kept: other work on the machine distorts single runs); at 32K and
    64K (cost only: positions past the model's 8K window are fine for timing) the marginal cost of reading two
    more chunks at that depth, dense and DGA (the cache before them is the 8K document's, tiled: attention cost
    does not depend on what the keys say); the full run also times whole DGA prefills of 32K and 64K tokens
    (about 9 minutes for 32K on a loaded 2-core CPU, so not in the quick run);
(b) quality: needle accuracy within the window (4K and 7K tokens) when the document is read densely vs with
    DGA prefill, both answered the same way (Engine.ask, attention_mode dense, on the state we built).

Memory: CPU has no allocator counter for torch, so "peak RSS" is the process's resident size sampled every
10 ms during the prefill minus the size before it (it includes the KV cache the prefill fills); the attention
temporaries per layer call are also given analytically. On CUDA it is torch.cuda.max_memory_allocated.
DOCFOCUS_BENCH_THREADS=1 pins torch to one thread: on a 2-core machine that other work keeps busy, two threads
per process make every run several times slower (dense 4K: 12 s with one thread, 65 s with two, measured at
load 4) and hit DGA's many small operations hardest.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import torch

from bench.common import contains_answer, make_engine, haystack_sentences
from bench.needle import build_case, evidence_hit

COST_LENGTHS = (8192, 32768, 65536)
NEEDLE_LENGTHS = (4096, 7168)


class PeakMemory:
    """Peak extra memory during a block: CUDA allocator peak, or sampled process RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        import psutil

        self._process = psutil.Process()
        self.base = self._process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def extra_mb(self) -> float:
        return round((self.peak - self.base) / 2**20, 1)


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


def measure(model, ids, mode: str, settings) -> dict:
    from engine import generation
    from engine.dga_prefill import PrefillRun, prefill_dga

    device = next(model.parameters()).device
    cache = generation.new_cache(model.config)
    run = PrefillRun(settings, doc_start=0)
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        if mode == "dense":
            generation.prefill(model, ids, cache, chunk_size=settings.chunk)
        else:
            prefill_dga(model, ids, cache, settings, doc_start=0, run=run)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    del cache
    return {"mode": mode, "tokens": len(ids), "seconds": round(seconds, 2),
            "tokens_per_s": round(len(ids) / seconds, 1), "peak_extra_mb": memory.extra_mb,
            "attended_fraction": run.attended_fraction() if mode == "dga" else 1.0,
            "max_keys": run.max_keys if mode == "dga" else len(ids),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def cost(engine, settings, quick: bool) -> tuple[list[dict], list[dict]]:
    """Whole prefills (8K dense and DGA; full run: DGA at 32K and 64K too) and marginal reading cost at depth."""
    model, tokenizer = engine.loaded.model, engine.loaded.tokenizer
    sentences = haystack_sentences()
    rows, marginal = [], []
    warm = text_ids(tokenizer, sentences, 1024)
    measure(model, warm, "dense", settings)  # first-call costs out of the way
    lengths = COST_LENGTHS[:1] if quick else COST_LENGTHS
    for length in lengths:
        ids = text_ids(tokenizer, sentences, length)
        modes = ["dense", "dga", "dga", "dense"] if length <= engine.loaded.window else ["dga"]
        for mode in modes:  # within the window: twice each, ABBA order, the faster kept
            row = measure(model, ids, mode, settings)
            earlier = next((r for r in rows if r["tokens"] == length and r["mode"] == mode), None)
            print(f"  cost {length} {mode}: {row['seconds']}s (load {row['load_avg_1m']})", flush=True)
            if earlier is not None:
                if earlier["seconds"] <= row["seconds"]:
                    continue
                rows.remove(earlier)
            row.update(attention_temporaries_mb(model.config, length, settings.chunk, settings))
            rows.append(row)
    from engine import generation

    ids = text_ids(tokenizer, sentences, COST_LENGTHS[0])
    base = generation.new_cache(model.config)
    generation.prefill(model, ids, base, chunk_size=settings.chunk)
    for depth in COST_LENGTHS[1:]:
        for mode in ("dense", "dga"):
            row = measure_at_depth(model, base, ids, depth, mode, settings)
            row.update(attention_temporaries_mb(model.config, depth, settings.chunk, settings))
            marginal.append(row)
            print(f"  at depth {depth} {mode}: {row['tokens_per_s']} tok/s peak +{row['peak_extra_mb']} MiB "
                  f"(load {row['load_avg_1m']})", flush=True)
    return rows, marginal


def measure_at_depth(model, base, ids: list[int], depth: int, mode: str, settings, chunks: int = 2) -> dict:
    """Reading ``chunks`` more chunks after a cache of ``depth - chunks*chunk`` positions: ``base`` (the cache of a
    dense prefill of ``ids``) tiled to that length; the chunks are ``ids``' first tokens again."""
    from engine import generation
    from engine.dga_prefill import PrefillRun, prefill_dga

    device = next(model.parameters()).device
    extra = chunks * settings.chunk
    cache = generation.new_cache(model.config)
    for index, layer in enumerate(base.layers):
        repeat = -(-(depth - extra) // layer.keys.shape[2])
        cache.update(layer.keys.repeat(1, 1, repeat, 1)[:, :, :depth - extra],
                     layer.values.repeat(1, 1, repeat, 1)[:, :, :depth - extra], index)
    run = PrefillRun(settings, doc_start=0)
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        if mode == "dense":
            generation.prefill(model, ids[:extra], cache, chunk_size=settings.chunk)
        else:
            prefill_dga(model, ids[:extra], cache, settings, doc_start=0, run=run)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    del cache
    return {"mode": mode, "depth": depth, "tokens": extra, "seconds": round(seconds, 2),
            "tokens_per_s": round(extra / seconds, 1), "peak_extra_mb": memory.extra_mb,
            "attended_fraction": run.attended_fraction() if mode == "dga" else 1.0,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def answer_from(engine, doc, question: str, mode: str, settings):
    """Read ``doc`` densely or with DGA prefill, hand that state to the engine, answer with dense attention."""
    from engine import generation
    from engine.api import DocumentState
    from engine.dga_prefill import PrefillRun, prefill_dga

    model = engine.loaded.model
    ids = doc.prefix_ids()
    cache = generation.new_cache(model.config)
    started = time.perf_counter()
    if mode == "dense":
        logits = generation.prefill(model, ids, cache, chunk_size=settings.chunk)
        fraction = 1.0
    else:
        run = PrefillRun(settings, doc_start=doc.layout.doc_start)
        logits = prefill_dga(model, ids, cache, settings, doc_start=doc.layout.doc_start, run=run)
        fraction = run.attended_fraction()
    seconds = time.perf_counter() - started
    engine.forget(doc)
    engine._states[f"{doc.sha256}:{doc.method}"] = DocumentState(doc.sha256, cache, len(ids), logits)
    try:
        answer = engine.ask(doc, question)
    finally:
        engine.forget(doc)
    return answer, seconds, fraction


def needles(engine, settings, quick: bool, folder: Path) -> list[dict]:
    sentences = haystack_sentences()
    cases = 6 if quick else 20
    rows = []
    for length in NEEDLE_LENGTHS:
        for index in range(cases):
            depth = index / max(1, cases - 1)
            path, needle, question, code = build_case(engine, sentences, folder, length, depth, index)
            doc = engine.open_document(path)
            marks = []
            for mode in ("dense", "dga"):
                answer, seconds, fraction = answer_from(engine, doc, question, mode, settings)
                correct = contains_answer(answer.answer, [code])
                rows.append({"length": length, "case": index, "depth": round(depth, 2), "prefill": mode,
                             "tokens": doc.total_tokens, "correct": correct,
                             "evidence_hit": evidence_hit(answer, needle, doc), "answer": answer.answer[:120],
                             "prefill_s": round(seconds, 2), "attended_fraction": fraction})
                marks.append(f"{mode}={'Y' if correct else '-'} {seconds:.0f}s")
            print(f"  needle {length} case {index}: " + " ".join(marks), flush=True)
    return rows


def summarize_needles(rows) -> dict:
    summary = {}
    for length in NEEDLE_LENGTHS:
        entry = {}
        for mode in ("dense", "dga"):
            mine = [r for r in rows if r["length"] == length and r["prefill"] == mode]
            entry[mode] = {"accuracy": round(sum(r["correct"] for r in mine) / len(mine), 3),
                           "evidence_hit": round(sum(r["evidence_hit"] for r in mine) / len(mine), 3),
                           "prefill_s": round(sum(r["prefill_s"] for r in mine) / len(mine), 2),
                           "attended_fraction": round(sum(r["attended_fraction"] for r in mine) / len(mine), 3)}
        entry["difference_points"] = round(100 * (entry["dga"]["accuracy"] - entry["dense"]["accuracy"]), 1)
        dense = [r for r in rows if r["length"] == length and r["prefill"] == "dense"]
        sparse = [r for r in rows if r["length"] == length and r["prefill"] == "dga"]
        entry["agreement"] = round(sum(a["correct"] == b["correct"] for a, b in zip(dense, sparse)) / len(dense), 3)
        summary[str(length)] = entry
    return summary


def markdown(settings, costs, marginal, summary, cases: int) -> str:
    text = (f"Prefill-time DGA (chunk {settings.chunk}, window {settings.window}, gamma {settings.gamma}, "
            f"m {settings.group_size}, sinks {settings.sinks}, {settings.score_queries} {settings.score_spread} "
            f"scoring queries); {torch.get_num_threads()} torch thread(s), load average in the last column\n\n")
    text += "| tokens | prefill | seconds | tokens/s | speedup | peak RSS +MiB | attn temp. MiB (analytic) | " \
            "keys attended | load |\n|---|---|---|---|---|---|---|---|---|\n"
    dense_s = {r["tokens"]: r["seconds"] for r in costs if r["mode"] == "dense"}
    for r in costs:
        speedup = f"{dense_s[r['tokens']] / r['seconds']:.2f}x" if r["mode"] == "dga" and r["tokens"] in dense_s \
            else "-"
        temp = r["dense_mb"] if r["mode"] == "dense" else r["dga_mb"]
        text += (f"| {r['tokens']:,} | {r['mode']} | {r['seconds']} | {r['tokens_per_s']} | {speedup} | "
                 f"{r['peak_extra_mb']} | {temp} | {r['attended_fraction']:.3f} | {r['load_avg_1m']} |\n")
    text += ("\nReading at depth (two more chunks after a cache of depth - 1,024 positions; peak RSS beyond "
             "the cache):\n\n| depth | prefill | tokens/s | speedup | peak RSS +MiB | attn temp. MiB (analytic) | "
             "keys attended | load |\n|---|---|---|---|---|---|---|---|\n")
    dense_at = {r["depth"]: r["seconds"] for r in marginal if r["mode"] == "dense"}
    for r in marginal:
        speedup = f"{dense_at[r['depth']] / r['seconds']:.2f}x" if r["mode"] == "dga" else "-"
        temp = r["dense_mb"] if r["mode"] == "dense" else r["dga_mb"]
        text += (f"| {r['depth']:,} | {r['mode']} | {r['tokens_per_s']} | {speedup} | {r['peak_extra_mb']} | "
                 f"{temp} | {r['attended_fraction']:.3f} | {r['load_avg_1m']} |\n")
    text += f"\nNeedle accuracy, {cases} cases per length, answered with dense attention:\n\n"
    text += "| tokens | dense prefill acc / evidence@3 | DGA prefill acc / evidence@3 | difference (points) | " \
            "same verdict |\n|---|---|---|---|---|\n"
    for length, entry in summary.items():
        text += (f"| {int(length):,} | {entry['dense']['accuracy']:.2f} / {entry['dense']['evidence_hit']:.2f} | "
                 f"{entry['dga']['accuracy']:.2f} / {entry['dga']['evidence_hit']:.2f} | "
                 f"{entry['difference_points']:+.1f} | {entry['agreement']:.2f} |\n")
    return text


def run(quick: bool, out_dir: Path) -> dict:
    from engine.dga_prefill import PrefillSettings

    threads = os.environ.get("DOCFOCUS_BENCH_THREADS")  # e.g. 1 on a machine other work keeps busy: two
    if threads:  # threads fighting other processes for two cores make every run several times slower
        torch.set_num_threads(int(threads))
    engine = make_engine(max_new_tokens=24, attention_mode="dense", use_cache=False)
    settings = PrefillSettings()
    folder = out_dir / "needle-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    costs, marginal = cost(engine, settings, quick)
    rows = needles(engine, settings, quick, folder)
    summary = summarize_needles(rows)
    (out_dir / "prefill-cases.json").write_text(json.dumps(rows, indent=1))
    by = {(r["tokens"], r["mode"]): r for r in costs}
    first = COST_LENGTHS[0]
    figures = {"speedup_8k": round(by[(first, "dense")]["seconds"] / by[(first, "dga")]["seconds"], 2),
               "tokens_per_s": {f"{n}_{mode}": by[(n, mode)]["tokens_per_s"] for n, mode in by},
               "tokens_per_s_at_depth": {f"{r['depth']}_{r['mode']}": r["tokens_per_s"] for r in marginal}}
    return {"settings": settings.to_dict(), "threads": torch.get_num_threads(), "cost": costs, "at_depth": marginal,
            "needle": summary, "cases_per_length": 6 if quick else 20, **figures,
            "markdown": markdown(settings, costs, marginal, summary, 6 if quick else 20)}
