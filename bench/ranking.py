"""Which signals rank passages well: the question's attention per layer, the word match, and their mix.

For every case of the answer benchmark's question sets (bench/answers.py) the question is run over the model's
reading of the document once (engine/attention/scoring.py) and every variant is ranked from the same attention, so the
comparison costs one pass per case. Reported: evidence-page hit@1 and hit@3 per variant and set.
Environment: DOCFOCUS_BENCH_SETS, DOCFOCUS_BENCH_CASES as for bench/answers.py.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from bench import answers, needles
from engine.attention import scoring
from engine.model.prompt import question_ids
from engine.retrieval import ranking as ranking_ops


def layer_bands(layers: int) -> dict[str, list[int]]:
    third = max(1, layers // 3)
    return {"all layers": list(range(layers)), "first third": list(range(third)),
            "middle third": list(range(third, 2 * third)), "last third": list(range(2 * third, layers))}


def variants(layers: int) -> dict[str, tuple[list[int] | None, float, bool]]:
    """name -> (layers whose attention is used or None for none, attention weight, word match used)."""
    found: dict = {"word match only": (None, 0.0, True)}
    for band, chosen in layer_bands(layers).items():
        found[f"attention, {band}"] = (chosen, 1.0, False)
        for weight in (0.25, 0.5, 1.0):
            found[f"words + {weight:g} x attention, {band}"] = (chosen, weight, True)
    return found


def ranked_pages(doc, mass: np.ndarray, segments, question: str, chosen, weight: float, words: bool) -> list[int]:
    token_mass = mass[chosen].sum(0) if chosen is not None else None
    ranking = ranking_ops.rank(doc.ingested, doc.passages, token_mass, segments, question, weight, doc.used_tokens)
    if not words:  # the attention alone
        ranking.score = np.where(np.isfinite(ranking.score), ranking.attention, -np.inf)
    pages: list[int] = []
    for index in ranking.order():
        page = int(doc.passages.page[index]) + 1
        if page not in pages:
            pages.append(page)
        if len(pages) == 3:
            break
    return pages


def run(quick: bool, out_dir: Path) -> dict:
    sets = os.environ.get("DOCFOCUS_BENCH_SETS", " ".join(answers.SETS)).split()
    count = int(os.environ.get("DOCFOCUS_BENCH_CASES", 6 if quick else 20))
    engine = needles.bench_engine(8)
    model = engine.loaded.model
    rows = []
    for set_name in sets:
        for doc, cases, _ in answers.documents(engine, set_name, count, out_dir):
            state = engine.readings.whole(doc)[0] if doc.fits else None
            for case in cases:
                q_ids = question_ids(engine.loaded.tokenizer, doc.layout, case["question"])
                started = time.perf_counter()
                if state is not None:
                    mass = scoring.over_cache(model, state.cache, state.reading.head_len, state.reading.length, q_ids)
                else:
                    mass = scoring.over_segments(model, engine.readings.lazy(doc).whole(), q_ids)  # every segment
                seconds = time.perf_counter() - started
                for name, (chosen, weight, words) in variants(mass.shape[0]).items():
                    pages = ranked_pages(doc, mass, state.reading.segments, case["question"], chosen, weight, words)
                    rows.append({"set": set_name, "id": case["id"], "variant": name, "pages": pages,
                                 "hit1": pages[:1] == [case["page"]], "hit3": case["page"] in pages,
                                 "score_s": round(seconds, 3)})
                best = [r for r in rows if r["id"] == case["id"] and r["hit1"]]
                print(f"  {case['id']}: {len(best)} variants put page {case['page']} first", flush=True)
            engine.forget(doc)
            (out_dir / "ranking-cases.json").write_text(json.dumps(rows, indent=1))
    return report(rows, sets)


def report(rows: list[dict], sets: list[str]) -> dict:
    names = list(dict.fromkeys(r["variant"] for r in rows))
    summary = {name: {s: {"hit1": round(float(np.mean([r["hit1"] for r in rows if r["variant"] == name
                                                      and r["set"] == s])), 3),
                          "hit3": round(float(np.mean([r["hit3"] for r in rows if r["variant"] == name
                                                      and r["set"] == s])), 3)}
                      for s in sets if any(r["set"] == s for r in rows)} for name in names}
    shown = [s for s in sets if any(r["set"] == s for r in rows)]
    text = ("Evidence-page hit@1 / hit@3 of the passage ranking, per signal:\n\n| ranking | "
            + " | ".join(shown) + " |\n" + "|---" * (len(shown) + 1) + "|\n")
    for name, entry in summary.items():
        text += f"| {name} | " + " | ".join(f"{entry[s]['hit1']:.2f} / {entry[s]['hit3']:.2f}" for s in shown) + " |\n"
    return {"sets": shown, "summary": summary, "markdown": text}
