"""Real-PDF questions: R's 'Data Import/Export' manual (Debian r-doc-pdf) with ../shared/eval questions.

The whole 41-page manual (~29.5K tokens, beyond the bundled model's 8K window): reading all of it with
question-time selection (engine/longdoc.py) against truncation to the window (answered densely and with DGA).
Every question is asked of every method.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.common import Config, contains_answer, make_engine, r_manual

QUESTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "r-data-questions.json"


def top_pages(evidence, count: int = 3) -> list[int]:
    pages: list[int] = []
    for item in evidence:
        if item.page not in pages:
            pages.append(item.page)
        if len(pages) == count:
            break
    return pages


def run(quick: bool, out_dir: Path) -> dict:
    spec = json.loads(QUESTIONS.read_text())
    engine = make_engine(max_new_tokens=32, use_cache=False)
    questions = spec["questions"]
    methods = [("select (whole manual)", "select", Config("dense", mode="dense")),
               ("truncate, dense", "truncate", Config("dense", mode="dense")),
               ("truncate, dga", "truncate", Config("dga g0.1 m16"))]
    rows, docs = [], {}
    for name, method, config in methods:
        engine.settings.long_documents = method
        doc = docs[method] = engine.open_document(r_manual("R-data.pdf"))
        config.apply(engine)
        for question in questions:
            answer = engine.ask(doc, question["question"])
            pages = top_pages(answer.evidence)
            rows.append({"id": question["id"], "config": name, "answer": answer.answer[:160],
                         "correct": contains_answer(answer.answer, question["answer_any"]),
                         "evidence_pages": pages, "page_hit": question["evidence_page"] in pages,
                         "in_window": question["evidence_page"] <= docs[method].pages_used,
                         "first_token_s": answer.timings["first_token_s"]})
            print(f"  {question['id']} {name}: {'Y' if rows[-1]['correct'] else '-'} "
                  f"pages {pages} (want {question['evidence_page']})", flush=True)
    summary = {}
    for name, _, _ in methods:
        mine = [r for r in rows if r["config"] == name]
        summary[name] = {"questions": len(mine),
                         "accuracy": round(sum(r["correct"] for r in mine) / max(1, len(mine)), 3),
                         "evidence_page_hit_at_3": round(sum(r["page_hit"] for r in mine) / max(1, len(mine)), 3)}
    whole, cut = docs["select"], docs["truncate"]
    text = (f"R-data.pdf: {whole.total_tokens} tokens, {len(whole.ingested.pages)} pages, window {whole.window}; "
            f"truncation keeps pages 1-{cut.pages_used}. All {len(questions)} questions asked of each method.\n\n"
            "| method | accuracy | evidence page hit@3 |\n|---|---|---|\n")
    for name, entry in summary.items():
        text += f"| {name} | {entry['accuracy']:.2f} | {entry['evidence_page_hit_at_3']:.2f} |\n"
    return {"document_tokens": whole.total_tokens, "truncated_pages": cut.pages_used, "summary": summary,
            "rows": rows, "markdown": text}
