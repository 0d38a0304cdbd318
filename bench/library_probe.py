"""Helpers of the library benchmark (bench/library.py): its engine, today's ranking over a library, and a
question on one document in a new process.

``python -m bench.library_probe DOCUMENT QUESTION METHOD`` (METHOD "index" or "attention") opens the document in a
fresh process (its state must be stored already), asks once and prints one JSON line: the first-token time and
where it went. The parent runs it ABAB: the second question on a long document, in a new process.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HOME = Path(__file__).parent / "results" / ".home"


def library_engine(max_new_tokens: int = 24, **settings):
    """The bundled model, the benchmark's data folder (library and state cache kept between runs), states in
    fp16 (as the README's long-document figures), a 48 GB cache cap."""
    home = Path(os.environ.setdefault("DOCFOCUS_HOME", str(HOME)))
    home.mkdir(parents=True, exist_ok=True)
    from engine.api import Engine, EngineSettings
    from engine.library import Library

    device = os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")
    engine = Engine(EngineSettings(device=device, max_new_tokens=max_new_tokens, cache_format="fp16",
                                   cache_cap_bytes=48 * 1024**3, **settings), library=Library(home / "library.sqlite"))
    engine.load()
    return engine


def with_ranking(engine, ranking: str) -> None:
    """Rank a long document's passages by the passage index ("index") or run the question after every segment
    too and weigh its attention in ("attention", today's method before the index)."""
    options = dict(engine.settings.answer_options, attention_weight=1.0 if ranking == "attention" else 0.0)
    engine.settings = dataclasses.replace(engine.settings, answer_options=options)


def attention_scorer(engine):
    """Today's method extended to a library: the question is run after every segment of every document in the
    scope (a short document: over its whole state), each passage gets its attention mass (relative to its
    segment's mean) as in engine/passages.py, and the score is z(attention) + z(word match) over the scope.
    Every segment is loaded from the state cache (a library's states do not fit in memory)."""
    from engine import scoring
    from engine import passages as passage_ops
    from engine.prompt import question_ids
    from engine.segments import Reading

    def score(scope, question: str) -> np.ndarray:
        attention = np.zeros(len(scope))
        model = engine.loaded.model
        for sha in dict.fromkeys(scope.sha256.tolist()):
            doc = engine.library_handle(sha)
            rows = np.nonzero(scope.sha256 == sha)[0]
            q_ids = question_ids(engine.loaded.tokenizer, doc.layout, question)
            state = engine.library_state(doc)
            reading = state.reading
            if state.cache is not None:
                mass = scoring.over_cache(model, state.cache, reading.head_len, reading.length, q_ids)
            else:
                mass = np.zeros((len(reading.head_keys), reading.length), dtype=np.float32)
                for number, (start, end) in enumerate(reading.segments):
                    keys, values = reading.segment(number)
                    one = Reading(reading.head_keys, reading.head_values, keys, values,
                                  reading.positions[start:end], [(0, end - start)])
                    mass[:, start:end] = scoring.over_segments(model, one, q_ids)
                    del keys, values, one
            attention[rows] = passage_ops.attention_scores(doc.passages, mass.sum(0), reading.segments)[
                scope.number[rows]]
            del mass
        settings = engine.settings.answer_settings()
        return passage_ops.rank(attention, scope.lexical, settings.lexical)
    return score


def main(argv: list[str]) -> int:
    document, question, method = argv
    began = time.perf_counter()
    engine = library_engine()
    loaded_s = time.perf_counter() - began
    with_ranking(engine, method)
    opening = time.perf_counter()
    doc = engine.open_document(document)
    open_s = time.perf_counter() - opening
    answer = engine.ask(doc, question)
    timings = answer.timings
    print(json.dumps({"method": method, "model_load_s": round(loaded_s, 3), "open_s": round(open_s, 3),
                      "first_token_s": timings["first_token_s"], "restore_s": timings.get("restore_s"),
                      "score_s": timings.get("score_s"), "context_load_s": timings.get("context_load_s"),
                      "segments_loaded": timings.get("segments_loaded"), "segments_read": timings.get("segments_read"),
                      "prefill_s": timings.get("prefill_s"), "segments": doc.segments, "tokens": doc.total_tokens,
                      "evidence_pages": [e.page for e in answer.evidence[:3]], "answer": answer.answer[:200]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
