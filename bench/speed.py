"""Decode speed, dense against DGA, measured as bench/timing.py says (one process, same state, warm-up,
interleaved rounds, min / median / max):

- decode ms per token through the engine's own path (the document read by ``Engine.read``, the attention run
  from the strategy registry, ``generation.prefill`` of the question and ``generation.decode``) for three
  methods: plain SDPA (no run: what transformers does, no relevance recorded; the simplest baseline), the
  product's dense mode (SDPA plus the relevance it records every ``reselect_every`` steps) and DGA;
- the share of a decode step spent in attention (every attention call of the step timed by
  ``timing.AttentionTimer``), which says where DGA's gain comes from and where it ends: DGA can only shrink the
  attention part;
- the attention step alone, one layer of the model's shape and one query, at 8K-128K keys: dense SDPA over every
  key, a DGA step (re-opening amortised at its real rate, one in ``reselect_every`` steps), one SDPA call over
  the keys DGA keeps (its floor: what attending that many keys costs with no selection at all), and the
  question-time selection (once per answer).

Every decode step is teacher-forced to the same token sequence (distinct random tokens), so every method does
the same work and no answer stops early or loops. bench/gpu.py reuses these functions on CUDA.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench import timing
from bench.common import haystack_pdf, haystack_sentences, make_engine

STEPS = 16  # timed decode steps per sample: a multiple of reselect_every (4), so re-opening is amortised exactly
SKIP = 4  # decode steps run before the timed ones
ANSWER_TOKENS = 64  # the answer length over which the question-time selection is amortised in the micro table
METHODS = ("sdpa", "dense", "dga")


class Forced:
    """A logits adjuster (``generation.decode(adjust=...)``) that forces a fixed token sequence."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens

    def __call__(self, logits: torch.Tensor, produced: list[int]) -> torch.Tensor:
        forced = torch.zeros_like(logits)
        forced[self.tokens[len(produced) % len(self.tokens)]] = 1.0
        return forced


def forced_tokens(vocab: int, count: int = SKIP + STEPS, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randperm(vocab - 2000, generator=generator)[:count] + 1000).tolist()


def make_run(mode: str, settings, doc_start: int, doc_end: int):
    """The attention run of an answer in ``mode`` ("sdpa": none), as engine/answer/pipeline.py makes it."""
    from engine.attention import strategies

    return None if mode == "sdpa" else strategies.get(mode).make_run(settings.attention, doc_start, doc_end)


def decode_sample(model, cache, prefix_len: int, q_ids: list[int], run, forced: Forced, device,
                  timer: timing.AttentionTimer | None = None) -> tuple[float, float | None]:
    """Seconds per decode step over STEPS steps after SKIP, and the share of them spent in attention (with a
    ``timer`` wrapping ``run``); the question is prefilled first (not timed) and the cache cropped back after."""
    from engine.model import generation

    run = timer or run
    try:
        logits = generation.prefill(model, q_ids, cache, run=run, phase="question")
        tokens = generation.decode(model, cache, logits, SKIP + STEPS, set(), run=run, adjust=forced)
        for _ in range(SKIP + 1):  # the first token comes from the question's logits, without a decode step
            next(tokens)
        attention_before = timer.seconds() if timer else 0.0
        timing.synchronize(device)
        started = time.perf_counter()
        for _ in tokens:  # STEPS forward passes: STEPS - 1 more tokens, then the step after the last one
            pass
        timing.synchronize(device)
        seconds = time.perf_counter() - started
    finally:
        generation.crop_cache(cache, prefix_len)
    share = (timer.seconds() - attention_before) / seconds if timer else None
    return seconds / STEPS, share


def decode_methods(model, cache, doc_start: int, prefix_len: int, q_ids: list[int], settings, device,
                   shares: dict[str, list[float]]) -> dict:
    """Callables for ``timing.interleaved``: each method plain, and dense and DGA once more with their attention
    timed (their shares go to ``shares``; the plain samples give the ms/token)."""
    forced = Forced(forced_tokens(model.config.vocab_size))

    def plain(mode):
        return lambda: decode_sample(model, cache, prefix_len, q_ids, make_run(mode, settings, doc_start,
                                                                               prefix_len), forced, device)[0]

    def with_timer(mode):
        def sample():
            timer = timing.AttentionTimer(make_run(mode, settings, doc_start, prefix_len), device)
            seconds, share = decode_sample(model, cache, prefix_len, q_ids, None, forced, device, timer)
            shares.setdefault(mode, []).append(share)
            return seconds
        return sample

    methods = {mode: plain(mode) for mode in METHODS}
    methods.update({f"{mode} (attention timed)": with_timer(mode) for mode in ("dense", "dga")})
    return methods


def decode_row(spreads: dict, shares: dict, tokens: int, fraction: float) -> dict:
    """One table row: ms/token spreads, per-round speed-ups and attention shares."""
    row = {"tokens": tokens, "attended_fraction": fraction}
    for mode in METHODS:
        row[f"{mode}_ms"] = spreads[mode].summary(1000)
    row["dga_vs_dense"] = timing.ratios(spreads["dense"], spreads["dga"]).summary(digits=2)
    row["dga_vs_sdpa"] = timing.ratios(spreads["sdpa"], spreads["dga"]).summary(digits=2)
    for mode, values in shares.items():
        row[f"{mode}_attention_share"] = timing.Spread(values).summary(digits=3)
    return row


def attended_fraction(model, cache, doc_start: int, prefix_len: int, q_ids, settings) -> float:
    """The share of the document's keys DGA decoding attends to (one question's selection)."""
    from engine.model import generation

    run = make_run("dga", settings, doc_start, prefix_len)
    try:
        generation.prefill(model, q_ids, cache, run=run, phase="question")
    finally:
        generation.crop_cache(cache, prefix_len)
    return run.attended_fraction()


# ---- the attention step alone


class _Layer:
    layer_idx = 0


def attention_step(keys: int, heads: int, kv_heads: int, dim: int, settings, device, dtype, rounds: int,
                   question: int = 32) -> dict:
    """One layer, one query: dense SDPA over ``keys`` keys against a DGA decode step (``settings``), its floor
    (SDPA over the keys DGA's buffer holds) and its question-time selection (``question`` queries)."""
    from engine.attention import dga

    torch.manual_seed(0)
    scale = dim ** -0.5
    key = torch.randn(1, kv_heads, keys, dim, device=device, dtype=dtype)  # (B, H_kv, N, D)
    value = torch.randn_like(key)
    query = torch.randn(1, heads, 1, dim, device=device, dtype=dtype)
    asked = torch.randn(1, heads, question, dim, device=device, dtype=dtype)
    doc_end = keys - question

    def select(compress: bool):
        run = dga.DgaRun(settings.replace(compress=compress), doc_start=4, doc_end=doc_end)
        run.attend(_Layer, asked, key, value, None, scale, "question")
        return run

    run = select(True)
    cycle = max(1, settings.reselect_every)
    buffer = run.layers[0].buffer
    kept = buffer.base + buffer.tail
    floor_keys, floor_values = buffer.keys[:, :, :kept].contiguous(), buffer.values[:, :, :kept].contiguous()
    stacked = query.reshape(1, kv_heads, heads // kv_heads, dim)

    def dga_cycle():  # whole re-selection cycles: one re-opening in every `cycle` steps, as in an answer
        timing.synchronize(device)
        started = time.perf_counter()
        for _ in range(cycle):
            run.attend(_Layer, query, key, value, None, scale, "decode")
        timing.synchronize(device)
        return (time.perf_counter() - started) / cycle

    methods = {  # dense as transformers calls it at batch 1 (enable_gqa), and with the queries stacked as DGA does
        "dense": lambda: F.scaled_dot_product_attention(query, key, value, scale=scale, enable_gqa=True),
        "dense stacked": lambda: F.scaled_dot_product_attention(stacked, key, value, scale=scale),
        "dga": dga_cycle,
        "floor": lambda: F.scaled_dot_product_attention(stacked, floor_keys, floor_values, scale=scale),
        "dga question": lambda: select(True),  # the question's attention mass, and DGA's selection
        "dense question": lambda: select(False),  # the question's attention mass only (the dense mode's relevance)
    }
    spreads = timing.interleaved(methods, rounds, warmup=2, device=device)
    amortised = {mode: timing.Spread([step + question / ANSWER_TOKENS for step, question in zip(
        spreads[mode].samples, spreads[f"{mode} question"].samples)]) for mode in ("dense", "dga")}
    return {"keys": keys, "shape": f"{heads}/{kv_heads} heads, d {dim}", "kept_keys": kept,
            "attended_fraction": run.attended_fraction(),
            **{f"{name.replace(' ', '_')}_ms": spread.summary(1000, 4) for name, spread in spreads.items()},
            **{f"{mode}_amortised_ms": spread.summary(1000, 4) for mode, spread in amortised.items()},
            "dga_vs_dense": timing.ratios(spreads["dense"], spreads["dga"]).summary(digits=2),
            "dga_vs_dense_stacked": timing.ratios(spreads["dense stacked"], spreads["dga"]).summary(digits=2),
            "amortised_dga_vs_dense": timing.ratios(amortised["dense"], amortised["dga"]).summary(digits=2),
            "dga_over_floor": timing.ratios(spreads["dga"], spreads["floor"]).summary(digits=2)}


# ---- the section


def document(engine, folder: Path, length: int):
    return engine.open_document(haystack_pdf(engine, haystack_sentences(), folder / f"speed-{length}.pdf", length))


def end_to_end(engine, folder: Path, length: int, rounds: int) -> dict:
    from engine.model.prompt import question_ids

    model, device = engine.loaded.model, engine.loaded.device
    doc = document(engine, folder, length)
    state, _ = engine.readings.whole(doc)
    q_ids = question_ids(engine.loaded.tokenizer, doc.layout, "What does this section say about data frames?")
    row = timed_decode(model, state.cache, doc.layout.doc_start, state.prefix_len, q_ids, engine.settings, device,
                       rounds)
    engine.forget(doc)
    return row


def timed_decode(model, cache, doc_start: int, prefix_len: int, q_ids: list[int], settings, device,
                 rounds: int) -> dict:
    """Every decode method interleaved on this cache; returns a table row (bench/gpu.py calls this too)."""
    shares: dict[str, list[float]] = {}
    methods = decode_methods(model, cache, doc_start, prefix_len, q_ids, settings, device, shares)
    spreads = timing.interleaved(methods, rounds, warmup=1, device=device)
    shares = {mode: values[1:] for mode, values in shares.items()}  # the warm-up sample is not one of the rounds
    fraction = attended_fraction(model, cache, doc_start, prefix_len, q_ids, settings)
    return decode_row(spreads, shares, prefix_len - doc_start, fraction)


def run(quick: bool, out_dir: Path) -> dict:
    engine = make_engine()
    device = engine.loaded.device
    rounds = 5 if quick else 9
    folder = out_dir / "needle-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    load = [timing.load_average()]
    decode = []
    for length in (2048, 4096, 7168):
        decode.append(end_to_end(engine, folder, length, rounds))
        print("  " + decode_line(decode[-1]), flush=True)
    config = engine.loaded.model.config
    from engine.attention.ops import head_dim

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    micro = []
    for keys in (8192, 32768, 131072):
        micro.append(attention_step(keys, config.num_attention_heads, config.num_key_value_heads, head_dim(config),
                                    engine.settings.dga_settings(), device, dtype, 2 * rounds + 1))
        print(f"  attention step, {keys} keys: dense {micro[-1]['dense_ms']['median']} ms, DGA "
              f"{micro[-1]['dga_ms']['median']} ms, floor {micro[-1]['floor_ms']['median']} ms", flush=True)
    load.append(timing.load_average())
    context = {"device": str(device), "model": engine.loaded.id, "dtype": str(engine.loaded.dtype),
               "threads": torch.get_num_threads(), "load_average": load, "rounds": rounds,
               "dga_settings": engine.settings.dga_settings().to_dict(), "cpus": os.cpu_count()}
    return {**context, "decode": decode, "attention_step": micro,
            "markdown": decode_markdown(decode, context) + "\n" + step_markdown(micro)}


def decode_line(row: dict) -> str:
    return (f"{row['tokens']} tokens: SDPA {row['sdpa_ms']['median']}, dense {row['dense_ms']['median']}, "
            f"DGA {row['dga_ms']['median']} ms/token")


def cell(summary: dict, digits: int = 1) -> str:
    """"median (min-max)" of a Spread.summary() dict."""
    return f"{summary['median']:.{digits}f} ({summary['min']:.{digits}f}-{summary['max']:.{digits}f})"


def share_cell(summary: dict | None) -> str:
    return "-" if not summary else f"{100 * summary['median']:.0f}% ({100 * summary['min']:.0f}-" \
                                   f"{100 * summary['max']:.0f}%)"


def decode_markdown(rows: list[dict], context: dict) -> str:
    text = (f"Decode, {context['model']} ({context['dtype'].replace('torch.', '')}) on {context['device']}, "
            f"{context['threads']} torch thread(s), load average {context['load_average'][0]} at the start and "
            f"{context['load_average'][-1]} at the end; ms per token over {STEPS} teacher-forced steps, median "
            f"(min-max) of {context['rounds']} interleaved rounds; speed-ups per round:\n\n"
            "| document tokens | plain SDPA ms | dense ms | DGA ms | DGA vs dense | DGA vs plain SDPA | "
            "attention share, dense | attention share, DGA | keys attended |\n|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        times, shares = decode_cells(r)
        text += (f"| {r['tokens']:,} | {times} | {cell(r['dga_vs_sdpa'], 2)}x | {shares.replace(' / ', ' | ')} | "
                 f"{r['attended_fraction']:.3f} |\n")
    return text


def decode_cells(row: dict, digits: int = 1) -> tuple[str, str]:
    """("plain SDPA | dense | DGA | DGA vs dense" cells, "share dense / share DGA") of a decode row."""
    times = " | ".join(cell(row[f"{mode}_ms"], digits) for mode in METHODS)
    shares = f"{share_cell(row.get('dense_attention_share'))} / {share_cell(row.get('dga_attention_share'))}"
    return f"{times} | {cell(row['dga_vs_dense'], 2)}x", shares


def step_markdown(rows: list[dict]) -> str:
    shape = rows[0]["shape"] if rows else ""
    text = (f"Attention step alone (one layer, {shape}, one query; ms, median (min-max) of interleaved rounds; "
            "dense as transformers calls SDPA at batch 1 (enable_gqa), and with the queries of a KV head stacked "
            "as DGA does; DGA's re-opening amortised over its cycle; floor = one SDPA call over the keys DGA keeps; "
            "question = once per answer: the question's attention over every key (both modes record it for the "
            f"relevance) and DGA's selection; \"with the question\" spreads it over a {ANSWER_TOKENS}-token "
            "answer):\n\n"
            "| keys | dense | dense, stacked | DGA step | floor | DGA / floor | question: dense / DGA | "
            "DGA vs dense | vs dense, stacked | with the question | keys kept |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        text += (f"| {r['keys']:,} | {cell(r['dense_ms'], 3)} | {cell(r['dense_stacked_ms'], 3)} | "
                 f"{cell(r['dga_ms'], 3)} | {cell(r['floor_ms'], 3)} | {cell(r['dga_over_floor'], 2)}x | "
                 f"{r['dense_question_ms']['median']:.1f} / {r['dga_question_ms']['median']:.1f} | "
                 f"{cell(r['dga_vs_dense'], 2)}x | {cell(r['dga_vs_dense_stacked'], 2)}x | "
                 f"{cell(r['amortised_dga_vs_dense'], 2)}x | {r['kept_keys']:,} ({r['attended_fraction']:.3f}) |\n")
    return text
