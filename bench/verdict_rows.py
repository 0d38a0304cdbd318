"""Rows for calibrating the verdict: every case of the answer sets asked once ("passages 512"), kept with what
the verdict's signals are computed from, so that signals and their combination can be tried without generating
again (bench/verdict_fit.py).

A row: the set, the question and its accepted answers, the passages the answer read (best first) and their
pages, the model's raw text with its token ids and each token's log-probability given that context, the text
after cleaning, whether that text is right, and what the engine showed (text, verdict, citations).

    python -m bench.verdict_rows [SETS...]   # writes bench/results/full/verdict-rows.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench import answers, needles
from bench.common import contains_answer

DEV_SETS = ("rdata", "rnatural", "rintro", "radmin", "needle-4k")
HELD_OUT = ("rinatural", "ranatural")
ROWS = Path(__file__).parent / "results" / "full" / "verdict-rows.json"
NEEDLES = 12  # two of each kind


class Capture:
    """Wraps ``engine.answer.story.tell`` to keep what the answer read and generated (the pipeline calls it
    through the module, so replacing the attribute is enough); ``restore`` puts the original back."""

    def __init__(self) -> None:
        from engine.answer import story

        self.story, self.original, self.last = story, story.tell, {}
        story.tell = self._tell

    def _tell(self, question, ranking, context, generated, *args, **kwargs):
        candidates = ranking.candidates
        self.last = {"passages": [candidates.text(r) for r in context],
                     "pages": [int(candidates.page[r]) + 1 for r in context], "raw": generated.text,
                     "ids": list(generated.ids), "logprobs": [round(v, 4) for v in generated.logprobs],
                     "finish": generated.finish, "looped": generated.looped}
        return self.original(question, ranking, context, generated, *args, **kwargs)

    def restore(self) -> None:
        self.story.tell = self.original


def row_of(engine, doc, case: dict, capture: Capture) -> dict:
    from engine.answer import postprocess

    started = time.perf_counter()
    answer = engine.ask(doc, case["question"])
    seen = capture.last
    cleaned = postprocess.clean(seen["raw"], seen["finish"], seen["looped"], case["question"]).text
    return {"set": case["set"], "id": case["id"], "question": case["question"], "answer_any": case["answer_any"],
            "gold_page": case["page"], **seen, "cleaned": cleaned, "right": contains_answer(cleaned, case["answer_any"]),
            "shown": answer.answer, "shown_right": contains_answer(answer.answer, case["answer_any"]),
            "supported": answer.supported, "citations": [c.page for c in answer.citations],
            "verdict": _plain(getattr(answer, "verdict", None)), "quote": _plain(getattr(answer, "quote", None)),
            "seconds": round(time.perf_counter() - started, 2), "timings": answer.timings}


def _plain(item):
    from dataclasses import asdict, is_dataclass

    return asdict(item) if is_dataclass(item) else item


def collect(sets: list[str], out: Path = ROWS) -> list[dict]:
    engine = needles.bench_engine(answers.MAX_NEW_TOKENS)
    capture = Capture()
    rows: list[dict] = json.loads(out.read_text())["rows"] if out.exists() else []
    done = {(r["set"], r["id"]) for r in rows}
    head = None
    try:
        for set_name in sets:
            for doc, cases, _ in answers.documents(engine, set_name, NEEDLES, out.parent):
                head = head or {"head_ids": list(doc.layout.head_ids), "question_prefix": doc.layout.question_prefix,
                                "question_suffix": doc.layout.question_suffix}
                for case in cases:
                    if (set_name, case["id"]) in done:
                        continue
                    rows.append(row_of(engine, doc, case, capture))
                    r = rows[-1]
                    print(f"  {set_name} {case['id']}: {'Y' if r['right'] else '-'} "
                          f"{'S' if r['supported'] else 'u'} {r['seconds']} s  {r['cleaned'][:70]!r}", flush=True)
                    out.write_text(json.dumps({"layout": head, "rows": rows}, indent=1))
                engine.forget(doc)
    finally:
        capture.restore()
    return rows


if __name__ == "__main__":
    collect(sys.argv[1:] or [*DEV_SETS, *HELD_OUT])
