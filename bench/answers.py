"""One answer, one story: answer accuracy, evidence page, highlights and support verdict, per answering approach.

Question sets: needles in documents of real R-manual prose within the window (4K and 7K tokens) and beyond it
(32K), and the whole R manuals with ../shared/eval questions (R-data, R-intro). Every approach answers every
case, interleaved (the order rotates from case to case) on the same document state after a warm-up, with two
reference rows: chunk retrieval (what GPT4All LocalDocs and AnythingLLM do, bench/reference.py) and the gold
page alone (the oracle).

Metrics: accuracy (an expected string in what the user reads: the answer, and the document's sentence shown
beside an unsupported one), evidence-page hit@1 and hit@3, highlight precision (the share of the highlight
weight on the gold page), the verdict on the model's own answer (share of wrong answers marked unsupported, of
right answers marked supported, and the count of wrong answers), degenerate answers (a repeated line or
sentence, or a frame with nothing in it, judged here independently of the engine's own cleaning), hygiene
(answers that echo the question; quotes that are empty, a heading, a question or a table-of-contents line) and
first-token time (median and range).

Environment: DOCFOCUS_BENCH_SETS (e.g. "rdata needle-4k"), DOCFOCUS_BENCH_APPROACHES (names, comma-separated),
DOCFOCUS_BENCH_CASES (needles per length; for a manual, its first questions).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import time
from pathlib import Path

from bench import needles, reference
from bench.common import contains_answer, r_manual

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval"
MAX_NEW_TOKENS = 64
APPROACHES = {  # EngineSettings.changed(...) of each approach
    "passages 256": {"answer": {"focal_tokens": 256}},
    "passages 512": {"answer": {"focal_tokens": 512}},
    "passages 512 by words only": {"answer": {"meaning": False, "model_check": False}},
    "passages 512 by words and meaning": {"answer": {"model_check": False}},
    "passages 768": {"answer": {"focal_tokens": 768}},
    "passages 1536": {"answer": {"focal_tokens": 1536}},
    "passages 512 in document order": {"answer": {"order": "document"}},
    "passages 512 + attention over a 1536-token shortlist": {"answer": {"attention_weight": 1.0}},
    "passages 512 + attention over a 1024-token shortlist": {"answer": {"attention_weight": 1.0, "shortlist_tokens": 1024}},
    "passages 512 without quote": {"answer": {"quote": False}},
    "whole document with DGA": {"answer": {"context": "document"}, "attention": {"mode": "dga"}},
    "whole document with dense attention": {"answer": {"context": "document"}, "attention": {"mode": "dense"}},
}
REFERENCES = ("chunk retrieval (BM25 top 3)", "chunk retrieval (MiniLM top 4)", "gold page (oracle)")
QUICK = ("passages 512", "passages 512 by words only", "passages 512 + attention over a 1536-token shortlist")
SETS = ("needle-4k", "needle-7k", "needle-32k", "rdata", "rnatural", "rintro", "rinatural", "radmin", "ranatural")
OWN = Path(__file__).parent / "eval"  # this project's own sets
MANUALS = {"rdata": EVAL / "r-data-questions.json", "rnatural": EVAL / "r-data-natural-questions.json",
           "rintro": EVAL / "r-intro-questions.json", "rinatural": OWN / "r-intro-natural-questions.json",
           "radmin": OWN / "r-admin-questions.json", "ranatural": OWN / "r-admin-natural-questions.json"}


def chosen_approaches(quick: bool) -> list[str]:
    names = os.environ.get("DOCFOCUS_BENCH_APPROACHES")
    if names:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in APPROACHES]
        if unknown:
            raise SystemExit(f"unknown approach(es) {unknown}; choose from: {', '.join(APPROACHES)}")
        return chosen
    return list(QUICK if quick else APPROACHES)


def degenerate(answer: str) -> bool:
    """A repeated line or sentence, an empty answer, or a frame ("The answer is:") with nothing after it."""
    body = answer.strip()
    if not body or body.endswith(":"):
        return True
    lines = [line.strip().lower() for line in body.splitlines() if line.strip()]
    parts = [p.strip().lower() for p in re.split(r"(?<=[.!?])\s+", " ".join(lines)) if len(p.strip()) > 3]
    return len(lines) != len(set(lines)) or len(parts) != len(set(parts))


def echoes(answer: str, question: str) -> bool:
    """Whether a sentence of the answer repeats the question."""
    from engine.answer.postprocess import echoes as echo
    from engine.retrieval.terms import sentences

    return any(echo(answer[a:b], question) for a, b in sentences(answer))


def quotable(text: str) -> bool:
    from engine.answer.postprocess import quotable as fit

    return bool(text.strip()) and fit(text)


def page_order(evidence) -> list[int]:
    pages: list[int] = []
    for item in evidence:
        if item.page not in pages:
            pages.append(item.page)
    return pages


def gold_pages(case: dict) -> set[int]:
    """Every page that holds the answer (a manual's set may list several), else the needle's page."""
    return case.get("pages") or {case["page"]}


def highlight_precision(answer, gold: int) -> float | None:
    total = sum(h.weight for h in answer.highlights)
    return None if total <= 0 else sum(h.weight for h in answer.highlights if h.page == gold) / total


def ask_row(engine, base, name: str, doc, case: dict) -> dict:
    engine.settings = base.changed(**APPROACHES[name])
    answer = engine.ask(doc, case["question"])
    pages = page_order(answer.evidence)
    quote = answer.quote.text if answer.quote is not None and not answer.supported else ""
    return {"approach": name, "answer": answer.answer, "generated": answer.generated, "quote": quote,
            "correct": contains_answer(f"{answer.answer} {quote}", case["answer_any"]),
            "model_correct": contains_answer(answer.answer, case["answer_any"]), "pages": pages[:3],
            "hit1": bool(set(pages[:1]) & gold_pages(case)), "hit3": bool(set(pages[:3]) & gold_pages(case)),
            "highlight_precision": highlight_precision(answer, case["page"]), "supported": answer.supported,
            "citations": [c.page for c in answer.citations], "degenerate": degenerate(answer.answer),
            "echo": echoes(answer.answer, case["question"]), "bad_quote": answer.quote is not None and not quotable(
                answer.quote.text), "verdict": dataclasses.asdict(answer.verdict) if answer.verdict else None,
            "first_token_s": answer.timings["first_token_s"], "verdict_s": answer.timings.get("verdict_s")}


def reference_row(engine, name: str, doc, case: dict) -> dict:
    if name.startswith("chunk retrieval (MiniLM"):
        result = reference.embedding_retrieval(engine, doc.ingested, case["question"], MAX_NEW_TOKENS)
    elif name.startswith("chunk"):
        result = reference.chunk_retrieval(engine, doc.ingested, case["question"], MAX_NEW_TOKENS)
    else:
        result = reference.gold_page(engine, doc.ingested, case["page"], case["question"], MAX_NEW_TOKENS)
    pages = result["pages"]
    return {"approach": name, "answer": result["answer"], "generated": result["answer"],
            "correct": contains_answer(result["answer"], case["answer_any"]), "pages": pages,
            "hit1": bool(set(pages[:1]) & gold_pages(case)), "hit3": bool(set(pages[:3]) & gold_pages(case)),
            "highlight_precision": None,
            "supported": None, "citations": [], "degenerate": degenerate(result["answer"]),
            "model_correct": contains_answer(result["answer"], case["answer_any"]), "echo": echoes(
                result["answer"], case["question"]), "bad_quote": False, "verdict": None,
            "first_token_s": round(result["first_token_s"], 3), "verdict_s": None}


def references() -> tuple[str, ...]:
    """The reference rows, unless DOCFOCUS_BENCH_REFERENCES=0 leaves them out (a run about the verdict)."""
    return REFERENCES if os.environ.get("DOCFOCUS_BENCH_REFERENCES", "1") != "0" else ()


def run_case(engine, base, doc, case: dict, names: list[str], turn: int) -> list[dict]:
    """Every approach and reference on one case, in an order rotated by ``turn`` (interleaved)."""
    everything = list(names) + list(references())
    order = everything[turn % len(everything):] + everything[:turn % len(everything)]
    rows = []
    for name in order:
        row = reference_row(engine, name, doc, case) if name in REFERENCES else ask_row(engine, base, name, doc, case)
        rows.append({**row, "set": case["set"], "id": case["id"], "gold_page": case["page"]})
    engine.settings = base
    return sorted(rows, key=lambda r: everything.index(r["approach"]))


def manual_cases(set_name: str) -> tuple[Path, list[dict]]:
    spec = json.loads(MANUALS[set_name].read_text())
    cases = [{"set": set_name, "id": q["id"], "question": q["question"], "answer_any": q["answer_any"],
              "page": q["evidence_page"], "pages": set(q.get("evidence_pages") or [q["evidence_page"]])}
             for q in spec["questions"]]
    return r_manual(spec["document"]), cases


def run(quick: bool, out_dir: Path) -> dict:
    names = chosen_approaches(quick)
    sets = os.environ.get("DOCFOCUS_BENCH_SETS", "needle-4k needle-32k rdata" if quick else " ".join(SETS)).split()
    count = int(os.environ.get("DOCFOCUS_BENCH_CASES", 6 if quick else 20))
    engine = needles.bench_engine(MAX_NEW_TOKENS)
    base = engine.settings
    rows: list[dict] = []
    reading: dict = {}
    warmed = False
    for set_name in sets:
        for doc, cases, read_s in documents(engine, set_name, count, out_dir):
            reading.setdefault(set_name, []).append(read_s)
            if not warmed:  # the first answer pays for lazy initialisation; keep it out of the timings
                run_case(engine, base, doc, cases[0], names, 0)
                warmed = True
            for case in cases:
                rows.extend(run_case(engine, base, doc, case, names, len(rows)))
                mine = [r for r in rows if r["id"] == case["id"] and r["set"] == set_name]
                print(f"  {set_name} {case['id']}: " + " ".join(
                    f"{r['approach'].split(' (')[0]}={'Y' if r['correct'] else '-'}{'p' if r['hit1'] else ''}"
                    for r in mine), flush=True)
                (out_dir / "answers-cases.json").write_text(json.dumps({"reading": reading, "rows": rows}, indent=1))
            engine.forget(doc)
    return report(rows, names, sets, reading)


def documents(engine, set_name: str, count: int, out_dir: Path):
    """(document handle, its cases, seconds to read it) for a question set."""
    if set_name in MANUALS:
        path, cases = manual_cases(set_name)
        started = time.perf_counter()
        doc = engine.open_document(path)  # nothing is read: each question reads what it needs
        yield doc, cases, round(time.perf_counter() - started, 1)
        return
    length = {"needle-4k": 4096, "needle-7k": 7168, "needle-32k": 32768}[set_name]
    yield from needles.needle_documents(engine, set_name, length, count, out_dir / "answers-pdfs")


def summarize(rows: list[dict], name: str) -> dict:
    mine = [r for r in rows if r["approach"] == name]
    if not mine:
        return {}
    rate = lambda key: round(sum(bool(r[key]) for r in mine) / len(mine), 3)  # noqa: E731
    precision = [r["highlight_precision"] for r in mine if r["highlight_precision"] is not None]
    wrong = [r for r in mine if not r["model_correct"] and r["supported"] is not None]
    right = [r for r in mine if r["model_correct"] and r["supported"] is not None]
    times = [r["first_token_s"] for r in mine]
    return {"cases": len(mine), "accuracy": rate("correct"), "hit1": rate("hit1"), "hit3": rate("hit3"),
            "highlight_precision": round(statistics.mean(precision), 3) if precision else None,
            "wrong_unsupported": round(sum(not r["supported"] for r in wrong) / len(wrong), 3) if wrong else None,
            "right_supported": round(sum(r["supported"] for r in right) / len(right), 3) if right else None,
            "wrong": len(wrong), "degenerate": sum(r["degenerate"] for r in mine),
            "echo": sum(r["echo"] for r in mine), "bad_quote": sum(r["bad_quote"] for r in mine),
            "first_token_s": {"median": round(statistics.median(times), 2), "min": round(min(times), 2),
                              "max": round(max(times), 2)}}


def report(rows: list[dict], names: list[str], sets: list[str], reading: dict) -> dict:
    summary = {s: {n: summarize([r for r in rows if r["set"] == s], n) for n in [*names, *REFERENCES]}
               for s in sets}
    text = ""
    for set_name, entries in summary.items():
        cases = next((e["cases"] for e in entries.values() if e), 0)
        text += (f"\n**{set_name}** ({cases} cases; reading took {reading.get(set_name)} s)\n\n"
                 "| approach | accuracy | hit@1 | hit@3 | highlight on gold page | wrong answers | wrong marked "
                 "unsupported | right marked supported | degenerate | echo / bad quote | first token s (median, "
                 "min-max) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
        for name, e in entries.items():
            if not e:
                continue
            cell = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            first = e["first_token_s"]
            text += (f"| {name} | {e['accuracy']:.2f} | {e['hit1']:.2f} | {e['hit3']:.2f} | "
                     f"{cell(e['highlight_precision'])} | {e['wrong']} | {cell(e['wrong_unsupported'])} | "
                     f"{cell(e['right_supported'])} | {e['degenerate']} | {e['echo']} / {e['bad_quote']} | "
                     f"{first['median']} "
                     f"({first['min']}-{first['max']}) |\n")
    return {"approaches": names, "sets": sets, "summary": summary, "reading_s": reading, "markdown": text}
