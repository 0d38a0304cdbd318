"""Decode speed, dense vs DGA in one run: end-to-end ms per generated token with the bundled model at several
document lengths, and an attention-only microbenchmark (one layer's shapes, one query) at 8K-128K keys."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common import haystack_pdf, haystack_sentences, make_engine

DECODE_STEPS = 24
WARMUP_STEPS = 4


def decode_ms_per_token(engine, doc, mode: str, steps: int = DECODE_STEPS) -> float:
    """Median ms per decode step over ``steps`` forced steps (EOS ignored) after a question."""
    from engine import dga, generation
    from engine.api import _DgaHooks

    loaded = engine.loaded
    engine.settings.attention_mode = mode
    state, _ = engine.read(doc)
    question = loaded.tokenizer("\nQuestion: What does this say?\n",
                                                 add_special_tokens=False)["input_ids"]
    run = dga.DgaRun(engine.dga_settings(), doc.layout.doc_start, state.prefix_len)
    hooks = _DgaHooks(run) if mode == "dga" else generation.StepHooks()  # dense: plain SDPA, no scoring
    times = []
    try:
        logits = generation.prefill(loaded.model, question, state.cache, hooks=hooks, phase="question")
        tokens = generation.decode(loaded.model, state.cache, logits, steps + WARMUP_STEPS, set(), hooks=hooks)
        last = time.perf_counter()
        for _ in tokens:
            now = time.perf_counter()
            times.append(now - last)
            last = now
    finally:
        generation.crop_cache(state.cache, state.prefix_len)
    return 1000 * statistics.median(times[WARMUP_STEPS:])


def document(engine, folder: Path, length: int):
    return engine.open_document(haystack_pdf(engine, haystack_sentences(), folder / f"speed-{length}.pdf", length))


def attention_micro(keys: int, reselect_every: int, repeats: int, device: str, dtype) -> dict:
    """One layer (9 query heads, 3 KV heads, head size 64), one query: dense SDPA vs a DGA step, amortizing
    one reselection every ``reselect_every`` steps."""
    from engine import dga

    torch.manual_seed(0)
    heads, kv_heads, dim = 9, 3, 64
    key = torch.randn(1, kv_heads, keys, dim, device=device, dtype=dtype)
    value = torch.randn_like(key)
    query = torch.randn(1, kv_heads, heads // kv_heads, dim, device=device, dtype=dtype)
    settings = dga.DgaSettings(reselect_every=reselect_every)
    run = dga.DgaRun(settings, doc_start=4, doc_end=keys - 32)

    class Layer:
        layer_idx = 0

    def dense():
        return F.scaled_dot_product_attention(query, key, value, scale=dim ** -0.5)

    # The question (32 queries at the end of the cache) selects once, as in an answer; then decode steps.
    question = torch.randn(1, heads, 32, dim, device=device, dtype=dtype)
    run.attend(Layer, question, key, value, None, dim ** -0.5)
    run.phase = "decode"

    def step():
        return run.attend(Layer, query.reshape(1, heads, 1, dim), key, value, None, dim ** -0.5)

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    dense_s = timed(dense)
    # Run whole reselection cycles so the cost of reselecting is included at its real rate.
    cycle = max(1, reselect_every)
    dga_s = timed(lambda: [step() for _ in range(cycle)]) / cycle
    return {"keys": keys, "dense_ms": round(dense_s * 1000, 4), "dga_ms": round(dga_s * 1000, 4),
            "speedup": round(dense_s / dga_s, 2), "attended_fraction": run.attended_fraction()}


def run(quick: bool, out_dir: Path) -> dict:
    engine = make_engine()
    device = str(engine.loaded.device)
    lengths = [2048, 7168] if quick else [2048, 4096, 7168]
    folder = out_dir / "needle-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    end_to_end = []
    for length in lengths:
        doc = document(engine, folder, length)
        dense = decode_ms_per_token(engine, doc, "dense")
        sparse = decode_ms_per_token(engine, doc, "dga")
        dense_again = decode_ms_per_token(engine, doc, "dense")  # interleaved: load drifts cancel out
        dense = min(dense, dense_again)
        end_to_end.append({"tokens": doc.total_tokens, "dense_ms_per_token": round(dense, 1),
                           "dga_ms_per_token": round(sparse, 1), "speedup": round(dense / sparse, 2)})
        engine.forget(doc)
        print(f"  {doc.total_tokens} tokens: dense {dense:.1f} ms/token, DGA {sparse:.1f} ms/token", flush=True)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    micro = [attention_micro(n, engine.dga_settings().reselect_every, 20 if quick else 50,
                             "cuda" if device.startswith("cuda") else "cpu", dtype)
             for n in (8192, 32768, 131072)]
    for row in micro:
        print(f"  micro {row['keys']} keys: dense {row['dense_ms']} ms, DGA {row['dga_ms']} ms", flush=True)
    return {"device": device, "end_to_end": end_to_end, "attention_micro": micro,
            "markdown": markdown(end_to_end, micro, device)}


def markdown(end_to_end, micro, device) -> str:
    text = f"Device: {device}\n\n| document tokens | dense ms/token | DGA ms/token | speedup |\n|---|---|---|---|\n"
    for row in end_to_end:
        text += f"| {row['tokens']} | {row['dense_ms_per_token']} | {row['dga_ms_per_token']} | {row['speedup']}x |\n"
    text += "\n| keys (1 layer, 9/3 heads, d 64) | dense ms | DGA ms (incl. reselection) | speedup |\n|---|---|---|---|\n"
    for row in micro:
        text += f"| {row['keys']} | {row['dense_ms']} | {row['dga_ms']} | {row['speedup']}x |\n"
    return text
