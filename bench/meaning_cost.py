"""What ranking by meaning costs a question: the plain-worded R-data questions asked of a never-read R-data.pdf by
an engine ranking by words alone, then by one ranking by words and meaning (each in a fresh data folder, after a
warm-up question), with the ranking time, the segments read and the first token. Writes
bench/results/full/meaning-cost.json.

    PYTHONPATH=. python bench/meaning_cost.py
"""
import json, tempfile, time
from pathlib import Path
from bench import first_answer as f
from bench.common import r_manual
qs = [q["question"] for q in json.load(open("/work/shared/eval/r-data-natural-questions.json"))["questions"]]
work = Path(tempfile.mkdtemp())
out = {}
for label, meaning in (("words", False), ("meaning", True)):
    e = f.fresh_engine(work / label)
    e.settings = e.settings.changed(answer={"meaning": meaning})
    doc = e.open_document(r_manual("R-data.pdf"))
    e.ask(doc, "warm-up question about files")
    rows = []
    for q in qs:
        a = e.ask(doc, q)
        t = a.timings
        rows.append((round(t["rank_s"], 2), t["segments_read"], round(t["segments_read_s"], 1), round(t["first_token_s"], 1)))
    print(label, rows, flush=True)
    out[label] = [dict(zip(("rank_s", "segments_read", "segments_read_s", "first_token_s"), r)) for r in rows]
import os
out["load_average"] = os.getloadavg()
Path("bench/results/full/meaning-cost.json").write_text(json.dumps(out, indent=1))
