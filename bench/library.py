"""Asking a library, and a long document again: the passage index + lazy segments.

The library: R manuals from Debian's r-doc-pdf plus generated documents of manual prose, each holding one needle
(bench/needles.py kinds; short ones fit the window, long ones are read in segments). Measured, on the bundled
model, in one process:

- **Needles across the library**: for each needle, the answer from the whole library by the index (BM25 over
  every passage, only the needed segments loaded): evidence document+page hit@1 / hit@3, accuracy (an accepted
  answer is in the answer), first-token time (from the question to the first token). (The last round compared
  this with running the question after every segment; the index won, and that method is gone.)
- **The long manual in a new process** (R-intro in the full run, R-data in the quick one): one question in a
  fresh process per run (bench/library_probe.py).
- **Index size** per token against the fp16 state; **adding one document** (time, peak memory, seconds per
  segment); **question time as the library grows** (scopes of increasing size, the same needles).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import timing
from bench.common import contains_answer, fill_pages, prose, r_manual, text_pdf, to_paragraphs
from bench.library_probe import library_engine
from bench.needles import needle_case, needle_pdf

QUICK = {"manuals": ["R-data.pdf"], "short": 4, "long": 2, "short_tokens": 2500, "long_tokens": 10000,
         "probe": "R-data.pdf", "rounds": 2, "scopes": [30_000], "added_tokens": 6000}
FULL = {"manuals": ["R-intro.pdf", "R-data.pdf"] + os.environ.get("DOCFOCUS_BENCH_LIBRARY_MANUALS", "").split(),
        "short": 14, "long": 6,
        "short_tokens": 2500, "long_tokens": 12000, "probe": "R-intro.pdf", "rounds": 2,
        "scopes": [100_000, 300_000], "added_tokens": 12000}
PROBE_QUESTION = "How do you read data from a file into a data frame?"


def needle_cases(count: int) -> list[tuple[str, str, list[str]]]:
    """``count`` needles whose questions are all different (a library must not ask one question twice)."""
    cases, seen, index = [], set(), 100
    while len(cases) < count:
        case = needle_case(index)
        index += 1
        if case[1] not in seen:
            seen.add(case[1])
            cases.append(case)
    return cases


def sentence_pool() -> list[str]:
    """Prose for the generated documents: R's "Writing R Extensions" and "R Internals" (258K tokens, neither
    in the library), so no two generated documents share text."""
    import re

    import pymupdf

    text = ""
    for name in ("R-exts.pdf", "R-ints.pdf"):
        with pymupdf.open(r_manual(name)) as pdf:
            text += " ".join(page.get_text() for page in pdf)
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s.strip()) <= 300]


def needle_documents(engine, config: dict, folder: Path) -> tuple[list[dict], int]:
    """Generated documents, each with one needle at a depth spread over 0-100%, each from its own stretch of
    manual prose; returns the cases (question, answers, path, page) and the first prose sentence not used."""
    sentences = sentence_pool()
    sizes = [config["short_tokens"]] * config["short"] + [config["long_tokens"]] * config["long"]
    cases, start = [], 200
    for number, ((needle, question, answers), tokens) in enumerate(zip(needle_cases(len(sizes)), sizes)):
        chosen = prose(engine, sentences, tokens, start)
        start += len(chosen)
        pages = fill_pages(to_paragraphs(chosen))
        kind = "long" if tokens > 8000 else "short"
        path = folder / f"needle-{kind}-{number}.pdf"
        with tempfile.TemporaryDirectory() as scratch:  # a PDF written again has a new SHA-256 (its dates):
            made, page = needle_pdf(Path(scratch) / path.name, pages, needle, number / max(1, len(sizes) - 1))
            if not (path.exists() and _texts(path) == _texts(made)):  # the same text: keep the one already read
                shutil.copyfile(made, path)
        cases.append({"id": f"{kind}-{number}", "kind": kind, "question": question, "answer_any": answers,
                      "path": str(path.resolve()), "page": page, "needle": needle})
    return cases, start


def _texts(path: Path) -> list[str]:
    import pymupdf

    with pymupdf.open(path) as pdf:
        return [page.get_text() for page in pdf]


def sync_library(engine, paths: list[Path]) -> list[dict]:
    """Make the library hold exactly ``paths`` and read what is not read yet (kept between runs)."""
    wanted = {str(Path(p).resolve()) for p in paths}
    for item in engine.library_documents():
        if item["path"] not in wanted:
            engine.library_remove(item["id"])
    engine.library_add(paths)
    reads = []
    for item in engine.library_read_all(progress=_reading_printer()):
        reads.append(item)
        print(f"  read {Path(item['path']).name}: {item['state']} {item['tokens']} tokens", flush=True)
    return reads


def _reading_printer():
    last = [0.0]

    def report(stage, done, total):
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"    {stage}: {done}/{total}", flush=True)
    return report


def ask(engine, case: dict, documents=None) -> dict:
    answer = engine.ask_library(case["question"], documents=documents)
    found = [(e.document["path"], e.page) for e in answer.evidence]
    target = (case["path"], case["page"])
    return {"first_token_s": answer.timings["first_token_s"], "hit1": found[:1] == [target],
            "hit3": target in found[:3], "correct": contains_answer(answer.answer, case["answer_any"]),
            "answer": answer.answer[:160], "evidence": [f"{Path(p).name} p.{g}" for p, g in found[:3]],
            "segments_loaded": answer.timings.get("segments_loaded"),
            "segments_read": answer.timings.get("segments_read")}


def needles(engine, cases: list[dict], config: dict) -> dict:
    """Every case by the passage index."""
    ask(engine, {**cases[0], "question": "Which manual explains data import?"})  # warm-up
    rows = []
    for case in cases:
        row = {"id": case["id"], "kind": case["kind"], "question": case["question"], "index": ask(engine, case)}
        rows.append(row)
        print(f"  {case['id']}: {row['index']['first_token_s']:.1f}s hit3={row['index']['hit3']} "
              f"ok={row['index']['correct']}", flush=True)
    return {"cases": rows, "summary": {"index": summary([r["index"] for r in rows])}}


def summary(results: list[dict]) -> dict:
    if not results:
        return {}
    first = timing.Spread([r["first_token_s"] for r in results])
    return {"n": len(results), "hit1": round(np.mean([r["hit1"] for r in results]), 3),
            "hit3": round(np.mean([r["hit3"] for r in results]), 3),
            "accuracy": round(np.mean([r["correct"] for r in results]), 3), "first_token_s": first.summary(digits=2)}


def new_process(config: dict) -> dict:
    """The long manual's second question in a new process (its segments stored already)."""
    path = str(r_manual(config["probe"]))
    samples = []
    for _ in range(config["rounds"]):
        run = subprocess.run([sys.executable, "-m", "bench.library_probe", path, PROBE_QUESTION],
                             capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=900)
        if run.returncode != 0:
            raise RuntimeError(run.stderr[-2000:])
        samples.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(f"  new process: {samples[-1]['first_token_s']} s", flush=True)
    return {"document": config["probe"], "question": PROBE_QUESTION, "samples": samples,
            "first_token_s": timing.Spread([s["first_token_s"] for s in samples]).summary(digits=2)}


def index_size(engine) -> dict:
    """The library's passage index rebuilt alone in a fresh SQLite file: bytes per token, against the fp16 state."""
    from engine.library.documents import Library
    from engine.retrieval.index import PassageIndex

    config = engine.loaded.model.config
    heads = getattr(config, "num_key_value_heads", config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    fp16 = config.num_hidden_layers * 2 * heads * head_dim * 2
    with tempfile.TemporaryDirectory() as folder:
        library = Library(Path(folder) / "index.sqlite")
        index, tokens, passages = PassageIndex(library.db), 0, 0
        for item in engine.library_documents():
            doc = engine.library_handle(item["sha256"])
            index.add(doc.ingested, doc.passages, "bench", doc.total_tokens)
            tokens, passages = tokens + doc.total_tokens, passages + len(doc.passages)
        library.db.execute("VACUUM")
        library.db.conn.close()
        size = (Path(folder) / "index.sqlite").stat().st_size
    stored = engine.state_cache.db.execute("SELECT COALESCE(SUM(stored_bytes), 0), COUNT(*) FROM states "
                                           "WHERE sha256 LIKE 'segment:%'").fetchone()
    return {"tokens": tokens, "passages": passages, "index_bytes": size, "index_bytes_per_token": round(size / tokens, 1),
            "fp16_state_bytes_per_token": fp16, "index_share_of_fp16_state": round(size / tokens / fp16, 5),
            "stored_segments": stored[1], "stored_segment_bytes": stored[0]}


def add_one(engine, config: dict, folder: Path, start: int) -> dict:
    """Time and peak memory to add (read, store, index) one new document; every page carries this run's stamp,
    so no segment is in the cache yet. It is removed again afterwards."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    chosen = prose(engine, sentence_pool(), config["added_tokens"], start)
    pages = [[f"Reading run {stamp}, page {n + 1}."] + page for n, page in enumerate(fill_pages(to_paragraphs(chosen)))]
    path = text_pdf(folder / f"added-{stamp}.pdf", [" ".join(page) for page in pages], words_per_page=1)
    engine.library_add([path])
    with timing.PeakMemory(engine.loaded.device) as memory:
        started = time.perf_counter()
        item = engine.library_read_next()
        seconds = time.perf_counter() - started
    doc = engine.library_handle(item["sha256"])
    engine.library_remove(item["id"])
    return {"tokens": item["tokens"], "pages": item["pages"], "segments": doc.segments, "seconds": round(seconds, 1),
            "seconds_per_segment": round(seconds / max(1, doc.segments), 2),
            "tokens_per_s": round(item["tokens"] / seconds, 1), "peak_extra_mb": memory.extra_mb}


def growth(engine, cases: list[dict], config: dict) -> list[dict]:
    """First-token time of the same needles as the scope grows (documents in the order added), the index on
    up to three needles of the smallest scope, scopes interleaved (ABBA)."""
    items = engine.library_documents()
    scopes, size, docs, targets = [], 0, [], list(config["scopes"])
    for item in items:
        docs.append(item["sha256"])
        size += item["tokens"] or 0
        while targets and size >= targets[0]:
            targets.pop(0)
            if not scopes or scopes[-1]["tokens"] != size:
                scopes.append({"tokens": size, "documents": list(docs)})
    if not scopes or scopes[-1]["tokens"] != size:
        scopes.append({"tokens": size, "documents": list(docs)})
    first = {item["path"] for item in items if item["sha256"] in scopes[0]["documents"]}
    probes = [c for c in cases if c["path"] in first][:3] or cases[:1]  # needles in every scope
    samples = {s["tokens"]: [] for s in scopes}
    for number in range(2):
        for scope in (scopes if number % 2 == 0 else scopes[::-1]):
            for case in probes:
                samples[scope["tokens"]].append(ask(engine, case, scope["documents"]))
            print(f"  scope {scope['tokens']} tokens done", flush=True)
    return [{"tokens": s["tokens"], "documents": len(s["documents"]), "index": summary(samples[s["tokens"]])}
            for s in scopes]


def run(quick: bool, out_dir: Path) -> dict:
    config = QUICK if quick else FULL
    engine = library_engine()
    folder = out_dir / "library-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    cases, unused = needle_documents(engine, config, folder)
    paths = [Path(c["path"]) for c in cases] + [r_manual(name) for name in config["manuals"]]
    started = time.perf_counter()
    reads = sync_library(engine, paths)
    result = {"library": [{k: i[k] for k in ("path", "title", "pages", "tokens", "state")}
                          for i in engine.library_documents()], "read_now": len(reads),
              "read_s": round(time.perf_counter() - started, 1)}
    result["library_tokens"] = sum(i["tokens"] or 0 for i in engine.library_documents())
    print(f"  library: {len(result['library'])} documents, {result['library_tokens']} tokens", flush=True)
    phases = {"index": lambda: index_size(engine), "needles": lambda: needles(engine, cases, config),
              "growth": lambda: growth(engine, cases, config), "add_one": lambda: add_one(engine, config, folder, unused),
              "new_process": lambda: new_process(config)}
    for name, phase in phases.items():
        result[name] = phase()
        (out_dir / "library.partial.json").write_text(json.dumps(result, indent=1, default=str))
    result["load_average"] = timing.load_average()
    from bench.library_report import markdown

    result["markdown"] = markdown(result)
    return result
