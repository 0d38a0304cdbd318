"""How the model's check of the shortlist was sized: for every question of the manual sets, the meaning's best 12
passages and the question's likelihood after each (engine/retrieval/likelihood.py, the passage alone, and the
passage with the one after it), then, offline, the right page first / in the top 3 per shortlist size (4, 6, 8,
12) and weight of the likelihood's z-score (0.5-3, or the likelihood alone). The shipped setting (8, 2) is the
middle of the plateau. Writes bench/results/full/model-check-sweep.json and prints the sweep.

    PYTHONPATH=. python bench/model_check_sweep.py [SET ...]   (default: every manual set)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bench import answers
from bench.common import make_engine
from bench.ranking_levers import Levers
from engine.retrieval import likelihood
from engine.retrieval.passages import zscore

OUT = Path(__file__).parent / "results" / "full" / "model-check-sweep.json"
SHORTLIST = 12


def collect(sets: list[str]) -> list[dict]:
    engine = make_engine(answer={"max_new_tokens": 32})
    model, tokenizer = engine.loaded.model, engine.loaded.tokenizer
    rows = []
    for set_name in sets:
        path, cases = answers.manual_cases(set_name)
        levers = Levers(engine, engine.open_document(path))
        for case in cases:
            candidates, score = levers.score("meaning", case["question"])
            order = np.argsort(-score, kind="stable")[:SHORTLIST].tolist()
            alone = [candidates.text(r) for r in order]
            after = [text + (" " + candidates.text(r + 1) if r + 1 < len(candidates)
                             and candidates.doc[r + 1] == candidates.doc[r] else "") for text, r in zip(alone, order)]
            rows.append({"set": set_name, "id": case["id"], "gold": sorted(answers.gold_pages(case)),
                         "pages": [int(candidates.page[r]) + 1 for r in order],
                         "score": [float(score[r]) for r in order],
                         "alone": likelihood.question_likelihood(model, tokenizer, alone, case["question"]).tolist(),
                         "with_next": likelihood.question_likelihood(model, tokenizer, after,
                                                                     case["question"]).tolist()})
            print(set_name, case["id"], flush=True)
    return rows


def pages_first(pages: list[int], score: np.ndarray, count: int = 3) -> list[int]:
    found: list[int] = []
    for index in np.argsort(-score, kind="stable").tolist():
        if pages[index] not in found:
            found.append(pages[index])
    return found[:count]


def sweep(rows: list[dict]) -> list[dict]:
    results = []
    for key in ("alone", "with_next"):
        for size in (4, 6, 8, 12):
            for weight in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, None):
                counts: dict[str, list[int]] = {}
                for row in rows:
                    base, check = np.array(row["score"][:size]), np.array(row[key][:size])
                    score = check if weight is None else zscore(base) + weight * zscore(check)
                    found = pages_first(row["pages"][:size], score)
                    tally = counts.setdefault(row["set"], [0, 0, 0])
                    tally[0] += found[0] in row["gold"]
                    tally[1] += bool(set(found) & set(row["gold"]))
                    tally[2] += 1
                results.append({"passage": key, "shortlist": size, "weight": weight, "sets": counts})
    return results


def main(sets: list[str]) -> None:
    rows = collect(sets)
    results = sweep(rows)
    OUT.write_text(json.dumps({"rows": rows, "sweep": results}, indent=1))
    for entry in results:
        plain = [v for s, v in entry["sets"].items() if "natural" in s]
        manual = [v for s, v in entry["sets"].items() if "natural" not in s]
        print(entry["passage"], entry["shortlist"], entry["weight"] if entry["weight"] is not None else "alone",
              f"plain first {sum(v[0] for v in plain)} top3 {sum(v[1] for v in plain)}",
              f"manual first {sum(v[0] for v in manual)} top3 {sum(v[1] for v in manual)}")


if __name__ == "__main__":
    main(sys.argv[1:] or [s for s in answers.SETS if s in answers.MANUALS])
