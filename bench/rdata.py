"""Real-PDF questions: R's 'Data Import/Export' manual (Debian r-doc-pdf) with ../shared/eval questions.

Until DocFocus reads beyond the window, only questions whose evidence page lies in the part of the manual
that fits the window are asked. Dense and DGA answer the same questions on the same document state.
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
    engine = make_engine(max_new_tokens=32)
    doc = engine.open_document(r_manual("R-data.pdf"))
    questions = [q for q in spec["questions"] if q["evidence_page"] <= doc.pages_used]
    configs = [Config("dense", mode="dense"), Config("dga g0.1 m16")]
    rows = []
    for question in questions:
        for config in configs:
            config.apply(engine)
            answer = engine.ask(doc, question["question"])
            pages = top_pages(answer.evidence)
            rows.append({"id": question["id"], "config": config.name, "answer": answer.answer[:160],
                         "correct": contains_answer(answer.answer, question["answer_any"]),
                         "evidence_pages": pages, "page_hit": question["evidence_page"] in pages})
            print(f"  {question['id']} {config.name}: {'Y' if rows[-1]['correct'] else '-'} "
                  f"pages {pages} (want {question['evidence_page']})", flush=True)
    summary = {}
    for config in configs:
        mine = [r for r in rows if r["config"] == config.name]
        summary[config.name] = {"questions": len(mine),
                                "accuracy": round(sum(r["correct"] for r in mine) / max(1, len(mine)), 3),
                                "evidence_page_hit_at_3": round(sum(r["page_hit"] for r in mine) / max(1, len(mine)),
                                                                3)}
    text = (f"R-data.pdf: {doc.total_tokens} tokens, window {doc.window}; pages 1-{doc.pages_used} of "
            f"{len(doc.ingested.pages)} fit, so {len(questions)} of {len(spec['questions'])} questions are asked.\n\n"
            "| config | accuracy | evidence page hit@3 |\n|---|---|---|\n")
    for name, entry in summary.items():
        text += f"| {name} | {entry['accuracy']:.2f} | {entry['evidence_page_hit_at_3']:.2f} |\n"
    return {"document_tokens": doc.total_tokens, "pages_used": doc.pages_used, "summary": summary, "rows": rows,
            "markdown": text}
