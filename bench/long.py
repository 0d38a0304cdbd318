"""The cost of reading a document longer than the window (engine/reading/segments.py), with the bundled 8K-window model.

Haystacks of real manual prose of about 16K, 32K and 64K tokens are read from scratch by the engine
(``Engine.read``: segments of ~2K tokens, each after the chat head and the 256 tokens before it), in rounds whose
order alternates (16K 32K 64K, then 64K 32K 16K), after a warm-up read of a short document. Reported per
length: seconds and tokens/s (median (min-max) over the rounds), the state's size and the peak resident memory
above the start of each read (sampled every 10 ms). Reading cost should grow linearly with length: each segment
attends to at most the head, the overlap and itself.

Answers beyond the window (needles, the R manuals) are measured in bench/answers.py.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from bench import timing
from bench.common import fill_pages, haystack_sentences, make_engine, prose, text_pdf, to_paragraphs

START = 400  # first haystack sentence (R-intro's prose, after its front matter)
LENGTHS = (16384, 32768, 65536)


def haystack(engine, sentences: list[str], folder: Path, tokens: int) -> Path:
    pages = fill_pages(to_paragraphs(prose(engine, sentences, tokens, START)))
    return text_pdf(folder / f"haystack-{tokens}.pdf", [" ".join(page) for page in pages], words_per_page=1)


def read_once(engine, doc) -> dict:
    """Read ``doc`` from scratch (no state cache, nothing kept from an earlier read)."""
    engine.forget(doc)
    with timing.PeakMemory(engine.loaded.device) as memory:
        started = time.perf_counter()
        engine.read(doc)
        reading = engine.readings.lazy(doc).whole()  # every segment, as one reading
        seconds = time.perf_counter() - started
    state_bytes = sum(t.numel() * t.element_size() for t in reading.head_keys + reading.head_values +
                      reading.keys + reading.values)
    engine.forget(doc)
    return {"seconds": seconds, "segments": len(reading.segments), "state_mb": round(state_bytes / 2**20, 1),
            "peak_extra_mb": memory.extra_mb, "load_average": timing.load_average()}


def run(quick: bool, out_dir: Path) -> dict:
    engine = make_engine(store={"use_cache": False})
    engine.settings = engine.settings.changed(reading={"long_documents": "select"})
    lengths = [int(n) for n in os.environ.get("DOCFOCUS_BENCH_LONG_LENGTHS", " ".join(map(str, LENGTHS))).split()]
    rounds = 2 if quick else 3
    sentences = haystack_sentences()
    folder = out_dir / "long-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    docs = {length: engine.open_document(haystack(engine, sentences, folder, length)) for length in lengths}
    read_once(engine, engine.open_document(haystack(engine, sentences, folder, 9000)))  # warm-up
    samples: dict[int, list[dict]] = {length: [] for length in lengths}
    load = [timing.load_average()]
    for number in range(rounds):
        for length in (lengths if number % 2 == 0 else lengths[::-1]):
            samples[length].append(read_once(engine, docs[length]))
            print(f"  read {docs[length].total_tokens} tokens: {samples[length][-1]['seconds']:.1f} s "
                  f"(load {samples[length][-1]['load_average']})", flush=True)
    load.append(timing.load_average())
    rows = [row(docs[length], samples[length]) for length in lengths]
    return {"rounds": rounds, "threads": torch.get_num_threads(), "load_average": load, "reading": rows,
            "markdown": markdown(rows, rounds, load)}


def row(doc, samples: list[dict]) -> dict:
    seconds = timing.Spread([s["seconds"] for s in samples])
    return {"tokens": doc.total_tokens, "segments": samples[0]["segments"], "seconds": seconds.summary(digits=1),
            "tokens_per_s": timing.Spread([doc.total_tokens / s for s in seconds.samples]).summary(digits=1),
            "state_mb": samples[0]["state_mb"], "bytes_per_token": round(samples[0]["state_mb"] * 2**20 /
                                                                         doc.total_tokens),
            "peak_extra_mb": max(s["peak_extra_mb"] for s in samples),
            "load_average": [s["load_average"] for s in samples]}


def markdown(rows: list[dict], rounds: int, load: list[float]) -> str:
    from bench.speed import cell

    text = (f"Reading from scratch (segments of ~2K tokens, 256 tokens of overlap), {torch.get_num_threads()} torch "
            f"thread(s), load average {load[0]} at the start and {load[-1]} at the end; median (min-max) of "
            f"{rounds} rounds in alternating order:\n\n| tokens | segments | seconds | tokens/s | state MB | "
            "bytes/token | peak RSS +MB | load per round |\n|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        text += (f"| {r['tokens']:,} | {r['segments']} | {cell(r['seconds'])} | {cell(r['tokens_per_s'])} | "
                 f"{r['state_mb']} | {r['bytes_per_token']:,} | {r['peak_extra_mb']} | "
                 f"{', '.join(map(str, r['load_average']))} |\n")
    return text
