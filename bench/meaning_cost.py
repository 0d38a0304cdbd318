"""What ranking by meaning and the model's check cost a question: the plain-worded R-data questions asked of a
never-read R-data.pdf by an engine ranking by words alone, then by one ranking by words and meaning, then by the
shipped ranking (words, meaning and the model's check), each in a fresh data folder after a warm-up question,
with the ranking time, the segments read and the first token. Writes bench/results/full/meaning-cost.json.

    PYTHONPATH=. python bench/meaning_cost.py
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path

from bench import first_answer
from bench.common import r_manual

QUESTIONS = first_answer.EVAL / "r-data-natural-questions.json"
OUT = Path(__file__).parent / "results" / "full" / "meaning-cost.json"
FIELDS = ("rank_s", "segments_read", "segments_read_s", "first_token_s")


RANKINGS = {"words": {"meaning": False, "model_check": False}, "meaning": {"meaning": True, "model_check": False},
            "model check": {"meaning": True, "model_check": True}}


def measure(answer: dict, folder: Path, questions: list[str]) -> list[dict]:
    engine = first_answer.fresh_engine(folder)
    engine.settings = engine.settings.changed(answer=answer)
    doc = engine.open_document(r_manual("R-data.pdf"))
    engine.ask(doc, "warm-up question about files")
    rows = []
    for question in questions:
        timings = engine.ask(doc, question).timings
        rows.append({key: round(timings[key], 2) for key in FIELDS})
    return rows


def main() -> None:
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text())["questions"]]
    work = Path(tempfile.mkdtemp())
    out = {label: measure(answer, work / label.replace(" ", "-"), questions) for label, answer in RANKINGS.items()}
    out["load_average"] = os.getloadavg()
    OUT.write_text(json.dumps(out, indent=1))
    for label in RANKINGS:
        rows = out[label]
        print(label, {key: statistics.median(row[key] for row in rows) for key in FIELDS})


if __name__ == "__main__":
    main()
