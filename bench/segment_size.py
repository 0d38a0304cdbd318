"""Which segment size to read and store: the dev sets' questions asked of never-read R-intro.pdf and R-data.pdf by
two engines, one per segmenting (512 tokens after 128 of overlap, the default, and 128 after 96), each in its own
fresh data folder, interleaved question by question; per question whether the answer (or the quote beside an unsupported
one) holds an accepted answer, the segments read and the seconds reading them; per document the bytes stored
after all its questions against the full fp32 state. Writes bench/results/full/segment-size.json.

    PYTHONPATH=. python bench/segment_size.py [rintro rdata]
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench import answers, first_answer
from bench.common import contains_answer

CONFIGS = {"512/128": {"reading": {"segment": 512, "overlap": 128}},
           "128/96": {"reading": {"segment": 128, "overlap": 96}}}
OUT = Path(__file__).parent / "results" / "full" / "segment-size.json"


def ask(engine, doc, case: dict) -> dict:
    answer = engine.ask(doc, case["question"])
    quote = answer.quote.text if answer.quote is not None and not answer.supported else ""
    return {"answer": answer.answer, "correct": contains_answer(f"{answer.answer} {quote}", case["answer_any"]),
            "pages": [c.page for c in answer.citations], "read": answer.timings.get("segments_read"),
            "read_s": answer.timings.get("segments_read_s"), "first_token_s": answer.timings.get("first_token_s")}


def main(sets: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="docfocus-segment-size-"))
    rows, stored = [], []
    for set_name in sets:
        path, cases = answers.manual_cases(set_name)
        engines = {name: first_answer.fresh_engine(work / f"{set_name}-{name.replace('/', '-')}", **parts)
                   for name, parts in CONFIGS.items()}
        docs = {name: engine.open_document(path) for name, engine in engines.items()}
        for case in cases:
            row = {"set": set_name, "id": case["id"], **{name: ask(engines[name], docs[name], case)
                                                         for name in CONFIGS}}
            rows.append(row)
            print(set_name, case["id"], {name: (row[name]["correct"], row[name]["read"], row[name]["read_s"])
                                         for name in CONFIGS}, flush=True)
        for name, engine in engines.items():
            used = engine.state_cache.used_bytes()
            share = used / (docs[name].total_tokens * first_answer.FP32_BYTES_PER_TOKEN)
            stored.append({"set": set_name, "segmenting": name, "stored_bytes": used, "share_of_fp32_full":
                           round(share, 4)})
            print(set_name, name, f"stored {used / 2**20:.0f} MB = {100 * share:.1f}% of the full fp32 state")
    OUT.write_text(json.dumps({"cases": rows, "stored": stored}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["rintro", "rdata"])
