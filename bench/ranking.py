"""Which levers find the passage a person means: the page the ranking puts first, per lever, on every dev set.

Levers (issue "Understand the question"), alone and together, on the same documents in one process:

- **words**: BM25 over passages with the question's content terms, as shipped (compound terms also by their
  parts: "fixed-width" matches "fixed width"); **whole terms**: the same without the parts (the ranking before).
- **headings** (the document's structure): the share of the question's idf-weighted terms that the outline's
  heading path above a passage holds, weighed in (z-score) beside the word match.
- **meaning**: all-MiniLM-L6-v2 over the word match's best 32 passages (engine/retrieval/meaning.py, shipped);
  **meaning over every passage**: the embedding of every passage, fused with the word match by reciprocal ranks.
- **model check** (shipped): the meaning's ranking, then its best 8 passages re-ranked by the question's
  likelihood after each under the bundled model (engine/retrieval/likelihood.py).
- **rewrite (HyDE)**: the bundled model writes a one-sentence answer to the question (32 tokens, no document),
  and its words are matched too.
- **focus**: the question's attention over a 1,536-token shortlist of the word match (engine/answer/focus.py):
  it needs the shortlist read by the model, so it runs only with ``DOCFOCUS_BENCH_FOCUS=1``.

Reported per set: evidence-page hit@1 / hit@3 (any of the question's evidence pages) and the median time a
lever adds per question. Environment: DOCFOCUS_BENCH_SETS (default every manual set of bench/answers.py),
DOCFOCUS_BENCH_LEVERS (a comma-separated subset of the levers).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench import answers
from bench.common import make_engine
from bench.ranking_levers import LEVERS, Levers


def pages_of(candidates, score: np.ndarray, count: int = 3) -> list[int]:
    pages: list[int] = []
    for row in np.argsort(-score, kind="stable").tolist():
        page = int(candidates.page[row]) + 1
        if page not in pages:
            pages.append(page)
        if len(pages) == count:
            break
    return pages


def run(quick: bool, out_dir: Path) -> dict:
    manuals = [s for s in answers.SETS if s in answers.MANUALS]
    sets = os.environ.get("DOCFOCUS_BENCH_SETS", " ".join(manuals)).split()
    engine = make_engine(answer={"max_new_tokens": 32})
    names = [name for name in LEVERS if name != "focus" or os.environ.get("DOCFOCUS_BENCH_FOCUS") == "1"]
    if os.environ.get("DOCFOCUS_BENCH_LEVERS"):  # a subset, e.g. "words,meaning,focus"
        names = [name for name in names if name in os.environ["DOCFOCUS_BENCH_LEVERS"].split(",")]
    rows = []
    for set_name in sets:
        path, cases = answers.manual_cases(set_name)
        doc = engine.open_document(path)
        levers = Levers(engine, doc)
        for case in cases:
            for name in names:
                started = time.perf_counter()
                candidates, score = levers.score(name, case["question"])
                pages = pages_of(candidates, score)
                gold = answers.gold_pages(case)
                rows.append({"set": set_name, "id": case["id"], "lever": name, "pages": pages,
                             "hit1": bool(set(pages[:1]) & gold), "hit3": bool(set(pages) & gold),
                             "seconds": round(time.perf_counter() - started, 3)})
            print(f"  {set_name} {case['id']}: " + " ".join(
                f"{r['lever']}={'1' if r['hit1'] else '3' if r['hit3'] else '-'}" for r in rows[-len(names):]),
                flush=True)
        (out_dir / "ranking-cases.json").write_text(json.dumps(rows, indent=1))
    return report(rows, sets, names)


def report(rows: list[dict], sets: list[str], names: list[str]) -> dict:
    shown = [s for s in sets if any(r["set"] == s for r in rows)]
    summary = {}
    text = ("Evidence page first / in the top 3, per lever and set (hit@1 / hit@3 as counts), and the median "
            "seconds a lever takes per question:\n\n| lever | " + " | ".join(shown) + " | s |\n"
            + "|---" * (len(shown) + 2) + "|\n")
    for name in names:
        mine = [r for r in rows if r["lever"] == name]
        entry = {s: (sum(r["hit1"] for r in mine if r["set"] == s), sum(r["hit3"] for r in mine if r["set"] == s),
                     sum(1 for r in mine if r["set"] == s)) for s in shown}
        seconds = statistics.median(r["seconds"] for r in mine) if mine else 0.0
        summary[name] = {"sets": entry, "median_s": round(seconds, 3)}
        text += f"| {name} | " + " | ".join(f"{a}/{n} / {b}/{n}" for a, b, n in entry.values()) + \
            f" | {seconds:.2f} |\n"
    return {"sets": shown, "levers": names, "summary": summary, "markdown": text}
