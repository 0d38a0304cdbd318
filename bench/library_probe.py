"""Helpers of the library benchmark (bench/library.py): its engine, and a question on one document in a new
process.

``python -m bench.library_probe DOCUMENT QUESTION`` opens the document in a fresh process (its state must be
stored already), asks once and prints one JSON line: the first-token time and where it went.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HOME = Path(__file__).parent / "results" / ".home"


def library_engine(max_new_tokens: int = 24):
    """The bundled model, the benchmark's data folder (library and state cache kept between runs), states in
    fp16 (as the README's long-document figures), a 48 GB cache cap."""
    home = Path(os.environ.setdefault("DOCFOCUS_HOME", str(HOME)))
    home.mkdir(parents=True, exist_ok=True)
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    device = os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")
    settings = EngineSettings(device=device).changed(answer={"max_new_tokens": max_new_tokens},
                                                     store={"cache_format": "fp16", "cache_cap_bytes": 48 * 1024**3})
    engine = Engine(settings, library=Library(home / "library.sqlite"))
    engine.load()
    return engine


def main(argv: list[str]) -> int:
    document, question = argv
    began = time.perf_counter()
    engine = library_engine()
    loaded_s = time.perf_counter() - began
    opening = time.perf_counter()
    doc = engine.open_document(document)
    open_s = time.perf_counter() - opening
    answer = engine.ask(doc, question)
    timings = answer.timings
    print(json.dumps({"model_load_s": round(loaded_s, 3), "open_s": round(open_s, 3),
                      "first_token_s": timings["first_token_s"], "restore_s": timings.get("restore_s"),
                      "score_s": timings.get("score_s"), "context_load_s": timings.get("context_load_s"),
                      "segments_loaded": timings.get("segments_loaded"), "segments_read": timings.get("segments_read"),
                      "prefill_s": timings.get("prefill_s"), "segments": doc.segments, "tokens": doc.total_tokens,
                      "evidence_pages": [e.page for e in answer.evidence[:3]], "answer": answer.answer[:200]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
