"""Documents longer than the window (engine/longdoc.py) with the bundled 8K-window model.

Needles at 16K, 32K and 64K tokens (20 cases per length, depths spread 0-100%, one haystack of real manual
prose per length): whole-document reading with question-time selection (focal + groups, and focal only)
against plain truncation to the window. Also the cost of reading: seconds and tokens/s of segment reading at
each length from scratch, and the state's size.

Truncation answers from the first ~7.5K tokens only; a case whose needle lies past that point is scored as a
miss without running the model (it cannot have seen a random 4-5 digit code). Haystack segments are read once
and reused across cases (``Engine.segment_memo``): a case re-reads only the segments its needle changed, which
gives the same tensors as reading it from scratch (tests/test_longdoc.py checks this).
"""
from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from bench.common import contains_answer, fill_pages, haystack_sentences, make_engine, prose, text_pdf, to_paragraphs
from bench.needle import evidence_hit, needle_case

START = 400  # first haystack sentence (R-intro's prose, after its front matter)
CONFIGS = {"select (focal + groups)": {"groups": True}, "select (focal only)": {"groups": False}}


class _Memo(dict):
    """Segment memo that stops taking new entries once frozen (per-case segments are not kept)."""

    frozen = False

    def __setitem__(self, key, value):
        if not self.frozen:
            super().__setitem__(key, value)


def haystack_pages(engine, sentences: list[str], tokens: int) -> list[list[str]]:
    """Pages (lists of paragraphs) of manual prose from ``sentences[START:]``, ~``tokens`` long. A needle is
    inserted into one page without re-flowing the others, so the other pages' text, and the segments read from
    it, are the same in every case."""
    return fill_pages(to_paragraphs(prose(engine, sentences, tokens, START)))


def needle_pdf(path: Path, pages: list[list[str]], needle: str | None, depth: float) -> Path:
    """The pages as a PDF, with ``needle`` as a paragraph at ``depth`` (0-1) of the text."""
    pages = [list(page) for page in pages]
    if needle:
        spots = [(p, i) for p, page in enumerate(pages) for i in range(len(page) + 1)]
        page, index = spots[min(len(spots) - 1, round(depth * (len(spots) - 1)))]
        pages[page].insert(index, needle)
    return text_pdf(path, [" ".join(page) for page in pages], words_per_page=1)


def needle_token(doc, needle: str) -> int:
    char = doc.ingested.text.find(" ".join(needle.split()[:4]))
    return int(np.searchsorted(doc.layout.doc_offsets[:, 0], max(char, 0)))


def run(quick: bool, out_dir: Path) -> dict:
    engine = make_engine(max_new_tokens=24, use_cache=False, attention_mode="dense")
    lengths = [int(n) for n in os.environ.get("DOCFOCUS_BENCH_LONG_LENGTHS", "16384 32768 65536").split()]
    cases = int(os.environ.get("DOCFOCUS_BENCH_LONG_CASES", 20))
    sentences = haystack_sentences()
    folder = out_dir / "long-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    memo = _Memo()
    reading, rows = [], []
    for length in lengths:
        engine.settings.long_documents = "select"
        pages = haystack_pages(engine, sentences, length)
        path = needle_pdf(folder / f"haystack-{length}.pdf", pages, None, 0)
        doc = engine.open_document(path)
        fresh: dict = {}
        engine.segment_memo = fresh
        started = time.perf_counter()
        state, _ = engine.read(doc)
        seconds = time.perf_counter() - started
        state_bytes = sum(t.numel() * t.element_size() for t in state.long.keys + state.long.values)
        reading.append({"length": length, "tokens": doc.total_tokens, "segments": len(state.long.segments),
                        "read_s": round(seconds, 1), "tokens_per_s": round(doc.total_tokens / seconds, 1),
                        "state_mb": round(state_bytes / 2**20, 1),
                        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
        print(f"  read {doc.total_tokens} tokens in {seconds:.1f}s ({reading[-1]['tokens_per_s']} tok/s)", flush=True)
        engine.forget(doc)
        memo.frozen = False
        memo.update(fresh)
        memo.frozen = True
        engine.segment_memo = memo
        for index in range(cases):
            depth = index / max(1, cases - 1)
            needle, question, code = needle_case(index)
            path = needle_pdf(folder / f"long-{length}-{index}.pdf", pages, needle, depth)
            started = time.perf_counter()
            engine.settings.long_documents = "select"
            doc = engine.open_document(path)
            at = needle_token(doc, needle)
            for name, options in CONFIGS.items():
                engine.settings.long_options = dict(options)
                answer = engine.ask(doc, question)
                rows.append({"length": length, "case": index, "depth": round(depth, 2), "config": name,
                             "tokens": doc.total_tokens, "needle_token": at,
                             "correct": contains_answer(answer.answer, [code]),
                             "evidence_hit": evidence_hit(answer, needle, doc), "answer": answer.answer[:100],
                             "attended_fraction": answer.attention["attended_fraction"],
                             "answer_s": answer.timings["total_s"]})
            engine.forget(doc)
            engine.settings.long_options = {}
            engine.settings.long_documents = "truncate"
            doc = engine.open_document(path)
            row = {"length": length, "case": index, "depth": round(depth, 2), "config": "truncate",
                   "tokens": doc.total_tokens, "needle_token": at, "attended_fraction": 1.0}
            if at < doc.used_tokens:
                answer = engine.ask(doc, question)
                row.update(correct=contains_answer(answer.answer, [code]), evidence_hit=evidence_hit(answer, needle, doc),
                           answer=answer.answer[:100], run=True,
                           attended_fraction=round(doc.used_tokens / doc.total_tokens, 4))
            else:
                row.update(correct=False, evidence_hit=False, answer="", run=False,
                           attended_fraction=round(doc.used_tokens / doc.total_tokens, 4))
            rows.append(row)
            engine.forget(doc)
            print(f"  {length} case {index} depth {depth:.2f}: {time.perf_counter() - started:.0f}s "
                  + " ".join(f"{r['config'].split()[-1]}={'Y' if r['correct'] else '-'}{'E' if r['evidence_hit'] else ''}"
                             for r in rows if r["length"] == length and r["case"] == index), flush=True)
            (out_dir / "long-cases.json").write_text(json.dumps({"reading": reading, "rows": rows}, indent=1))
    engine.segment_memo = None
    return report(rows, lengths, reading, cases)


def report(rows: list[dict], lengths: list[int], reading: list[dict], cases: int) -> dict:
    """Summary and Markdown from the per-case rows (also usable on a partial long-cases.json)."""
    summary = {}
    for name in [*CONFIGS, "truncate"]:
        summary[name] = {}
        for length in lengths:
            mine = [r for r in rows if r["config"] == name and r["length"] == length]
            if not mine:
                summary[name][str(length)] = None
                continue
            summary[name][str(length)] = {
                "accuracy": round(sum(r["correct"] for r in mine) / len(mine), 3),
                "evidence_hit": round(sum(r["evidence_hit"] for r in mine) / len(mine), 3),
                "attended_fraction": round(sum(r["attended_fraction"] for r in mine) / len(mine), 4)}
    return {"lengths": lengths, "cases_per_length": cases, "summary": summary, "reading": reading,
            "markdown": markdown(summary, lengths, reading, cases)}


def markdown(summary, lengths, reading, cases) -> str:
    text = (f"Needles ({cases} per length), accuracy / evidence hit@3 (share of the document attended):\n\n"
            "| method | " + " | ".join(f"{n // 1024}K" for n in lengths) + " |\n" + "|---" * (len(lengths) + 1) + "|\n")
    for name, entry in summary.items():
        cells = [f"{e['accuracy']:.2f} / {e['evidence_hit']:.2f} ({e['attended_fraction']:.3f})" if e else "not run"
                 for e in (entry[str(n)] for n in lengths)]
        text += f"| {name} | " + " | ".join(cells) + " |\n"
    text += ("\nReading from scratch (segments of ~2K tokens, 256 tokens of overlap):\n\n"
             "| tokens | segments | seconds | tokens/s | state (MB) | max RSS (MB) |\n|---|---|---|---|---|---|\n")
    for row in reading:
        text += (f"| {row['tokens']:,} | {row['segments']} | {row['read_s']} | {row['tokens_per_s']} | "
                 f"{row['state_mb']} | {row['max_rss_mb']} |\n")
    return text
