"""Answer a new document in seconds: the first question on a never-read document, part by part.

Per document (R-intro.pdf, 78K tokens, and R's fullrefman.pdf, 2,415 pages; quick: R-data.pdf and R-intro.pdf),
``rounds`` rounds, each in a fresh data folder (nothing ingested, indexed, read or stored; the model loaded
before, its load time apart), methods interleaved (the order turns from round to round):

- **first question**: open the document (ingest + index, no model) and ask; first token counted from the open.
  Reported by part: ingest, index (layout, passages, passage index), ranking, segments read, answer.
- **second question**: another question on the same document right after (model loaded, document open).
- **chunk retrieval** (the simplest thing a user could pick instead: no reading step): the ingested document's
  ~120-word chunks, BM25 top 3, given fresh to the same model (bench/reference.py).

Then, on R-data's dev set, question-driven reading against a full reading first, case by case (answer text and
cited pages), and the bytes stored after the questions (R-data, and R-intro in the full run) against the full
state the engine kept before (every token's keys and values in fp32).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import reference, timing
from bench.common import r_manual

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval"
OURS = Path(__file__).resolve().parent / "eval"  # our own question sets
MAX_NEW_TOKENS = 48
QUESTIONS = {
    "fullrefman.pdf": ["What does the function seq_len return?", "Which function computes the median absolute "
                       "deviation?"],
}
FP32_BYTES_PER_TOKEN = 46_080  # the bundled model's keys and values per token in fp32: 30 layers x 3 x 64 x 2 x 4


def dev_cases(name: str, count: int = 0) -> list[dict]:
    """The cases of the manual-worded question set on document ``name`` (shared, then ours), made up to ``count``
    with the plain-worded ones on the same manual."""
    specs = [(path, json.loads(path.read_text())) for path in [*EVAL.glob("*.json"), *OURS.glob("*.json")]]
    mine = [(path, spec) for path, spec in specs if spec["document"] == name]
    cases = next((spec["questions"] for path, spec in mine if "natural" not in path.name), [])
    plain = [case for path, spec in mine if "natural" in path.name for case in spec["questions"]]
    return cases + plain[:max(0, count - len(cases))]


def questions_of(name: str) -> list[str]:
    return [case["question"] for case in dev_cases(name)] or QUESTIONS[name]


def fresh_engine(folder: Path, **parts):
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    folder.mkdir(parents=True, exist_ok=True)
    settings = EngineSettings(device=os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")).changed(
        answer={"max_new_tokens": MAX_NEW_TOKENS}, **parts)
    engine = Engine(settings, library=Library(folder / "library.sqlite"))
    engine.load()
    return engine


def first_and_second(path: Path, questions: list[str], folder: Path) -> dict:
    """Open a never-read document and ask twice; every part timed."""
    engine = fresh_engine(folder)
    began = time.perf_counter()
    ingested = engine.ingest(path)
    ingest_s = time.perf_counter() - began
    doc = engine.open_document(ingested)
    opened_s = time.perf_counter() - began
    first = engine.ask(doc, questions[0])
    second = engine.ask(doc, questions[1])
    parts = first.timings
    return {"tokens": doc.total_tokens, "pages": len(ingested.pages), "segments": doc.segments,
            "first_s": round(opened_s + parts["first_token_s"], 2), "ingest_s": round(ingest_s, 2),
            "index_s": round(opened_s - ingest_s, 2), "rank_s": parts["rank_s"],
            "segments_read": parts["segments_read"], "segments_read_s": parts["segments_read_s"],
            "answer_s": round(parts["first_token_s"] - parts["rank_s"] - parts["context_load_s"], 2),
            "second_s": second.timings["first_token_s"], "second_segments_read": second.timings["segments_read"],
            "first_answer": first.answer[:160], "first_pages": [c.page for c in first.citations],
            "second_answer": second.answer[:160]}


def chunk_baseline(path: Path, question: str, folder: Path) -> dict:
    engine = fresh_engine(folder)
    began = time.perf_counter()
    ingested = engine.ingest(path)
    pieces = reference.chunks(ingested)
    best = reference.bm25_top(pieces, question)
    chosen_s = time.perf_counter() - began
    answer, first = reference.answer_from_text(engine, "\n\n".join(pieces[i].text for i in best), question,
                                               MAX_NEW_TOKENS)
    return {"first_s": round(chosen_s + first, 2), "answer": answer[:160], "pages": [pieces[i].page for i in best]}


def timings(names: list[str], rounds: int, work: Path) -> dict:
    rows = {}
    for name in names:
        path, questions = r_manual(name), questions_of(name)
        samples = {"first": [], "chunks": []}
        methods = ["first", "chunks"]
        for number in range(rounds):
            for method in (methods if number % 2 == 0 else methods[::-1]):
                folder = work / f"{name}-{method}-{number}"
                if method == "first":
                    samples["first"].append(first_and_second(path, questions, folder))
                else:
                    samples["chunks"].append(chunk_baseline(path, questions[0], folder))
                shutil.rmtree(folder, ignore_errors=True)
                print(f"  {name} round {number} {method}: {samples[method][-1]['first_s']} s", flush=True)
        first = timing.Spread([s["first_s"] for s in samples["first"]])
        second = timing.Spread([s["second_s"] for s in samples["first"]])
        rows[name] = {"samples": samples, "first_s": first.summary(digits=2), "second_s": second.summary(digits=2),
                      "ratio": timing.ratios(first, second).summary(digits=2),
                      "chunks_s": timing.Spread([s["first_s"] for s in samples["chunks"]]).summary(digits=2)}
    return rows


def equivalence(name: str, work: Path, compare: bool = True) -> dict:
    """The dev set's questions answered by question-driven reading and (``compare``) after a full reading, case by
    case; the bytes the questions left stored."""
    cases = dev_cases(name)
    path = r_manual(name)
    lazy = fresh_engine(work / f"{name}-lazy")
    lazy_doc = lazy.open_document(path)
    full = fresh_engine(work / f"{name}-full") if compare else None
    full_doc = full.open_document(path) if full else None
    started = time.perf_counter()
    if full:
        full.read(full_doc)
    read_s = time.perf_counter() - started
    rows = []
    for case in cases:
        a = lazy.ask(lazy_doc, case["question"])
        b = full.ask(full_doc, case["question"]) if full else a
        rows.append({"id": case["id"], "same_answer": a.answer == b.answer,
                     "same_citations": [c.page for c in a.citations] == [c.page for c in b.citations],
                     "segments_read": a.timings["segments_read"], "answer": a.answer[:120]})
    stored = lazy.state_cache.used_bytes()
    return {"document": name, "cases": rows, "full_read_s": round(read_s, 1) if full else None,
            "same": sum(r["same_answer"] and r["same_citations"] for r in rows) if full else None, "n": len(rows),
            "segments": lazy_doc.segments, "stored_bytes": stored, "tokens": lazy_doc.total_tokens,
            "stored_share_of_fp32_full": round(stored / (lazy_doc.total_tokens * FP32_BYTES_PER_TOKEN), 4),
            "full_stored_bytes": full.state_cache.used_bytes() if full else None}


def run(quick: bool, out_dir: Path) -> dict:
    names = ["R-data.pdf", "R-intro.pdf"] if quick else ["R-intro.pdf", "fullrefman.pdf"]
    work = Path(tempfile.mkdtemp(prefix="docfocus-first-answer-"))
    os.environ.setdefault("DOCFOCUS_HOME", str(Path(__file__).parent / "results" / ".home"))
    fresh_engine(work / "warm").ask(fresh_engine(work / "warm").open_document(r_manual("R-data.pdf")), "warm-up")
    result = {"timings": timings(names, 2 if quick else 3, work), "load_average": timing.load_average()}
    # A full reading of R-intro (78K tokens) takes most of an hour on a 2-core CPU: there only the bytes stored.
    result["equivalence"] = [equivalence("R-data.pdf", work)] + ([] if quick else
                                                                 [equivalence("R-intro.pdf", work, compare=False)])
    shutil.rmtree(work, ignore_errors=True)
    result["markdown"] = markdown(result)
    return result


def markdown(result: dict) -> str:
    text = ("| document | tokens | first answer s (ingest + index + rank + segments read + answer) | second "
            "question s | first / second | chunk retrieval s |\n|---|---|---|---|---|---|\n")
    for name, row in result["timings"].items():
        sample = row["samples"]["first"]
        parts = " + ".join(f"{statistics.median(s[key] for s in sample):.2f}" for key in
                           ("ingest_s", "index_s", "rank_s", "segments_read_s", "answer_s"))
        text += (f"| {name} | {sample[0]['tokens']:,} | {_spread(row['first_s'])} ({parts}; "
                 f"{sample[0]['segments_read']} of {sample[0]['segments']} segments) | {_spread(row['second_s'])} | "
                 f"{_spread(row['ratio'], 'x')} | {_spread(row['chunks_s'])} |\n")
    text += "\n| dev set | same answer and citations as after a full reading | full reading took | stored after " \
            "the questions |\n|---|---|---|---|\n"
    for row in result["equivalence"]:
        same = f"{row['same']} of {row['n']}" if row["same"] is not None else f"(not compared; {row['n']} questions)"
        took = f"{row['full_read_s']} s" if row["full_read_s"] is not None else "-"
        text += (f"| {row['document']} | {same} | {took} | "
                 f"{row['stored_bytes'] / 2**20:.1f} MB = {100 * row['stored_share_of_fp32_full']:.1f}% of the "
                 f"full fp32 state ({row['tokens'] * FP32_BYTES_PER_TOKEN / 2**20:.0f} MB) |\n")
    return text + f"\nLoad average at the end: {result['load_average']}.\n"


def _spread(value: dict, unit: str = "") -> str:
    return f"{value['median']}{unit} ({value['min']}-{value['max']})"


def restored_answers(name: str, storage: str, work: Path, count: int = 10) -> dict:
    """Does a stored format keep the answers? The dev set's questions answered once (segments read fresh, stored
    in ``storage``), then again by a new engine on the same data folder (segments restored from the store):
    answers and cited pages compared case by case, with the bytes stored."""
    cases = dev_cases(name, count)
    folder = work / f"{name}-{storage}"
    first = fresh_engine(folder, store={"cache_format": storage})
    doc = first.open_document(r_manual(name))
    before = [first.ask(doc, case["question"]) for case in cases]
    stored = first.state_cache.used_bytes()
    first.state_cache.close()
    again = fresh_engine(folder, store={"cache_format": storage})
    doc = again.open_document(r_manual(name))
    after = [again.ask(doc, case["question"]) for case in cases]
    same = [a.answer == b.answer and [c.page for c in a.citations] == [c.page for c in b.citations]
            for a, b in zip(before, after)]
    return {"document": name, "storage": storage, "n": len(cases), "same": sum(same),
            "segments_read_first": sum(b.timings.get("segments_read", 0) for b in before),
            "restored_segments": sum(b.timings.get("segments_loaded", 0) for b in after),
            "read_again": sum(b.timings.get("segments_read", 0) for b in after), "stored_bytes": stored,
            "stored_share_of_fp32_full": round(stored / (doc.total_tokens * FP32_BYTES_PER_TOKEN), 4)}


def main(argv: list[str]) -> None:
    """``stored [FORMAT ...]``: what the questions store, and whether a new process restoring it answers the same
    (stored-formats-restored.json); ``same [DOCUMENT ...]``: question-driven reading against a full reading
    first, case by case (first-answer-same.json). The timings run from ``python -m bench``."""
    if argv[:1] not in (["stored"], ["same"]):
        raise SystemExit("usage: python -m bench.first_answer stored [FORMAT ...] | same [DOCUMENT ...]")
    os.environ.setdefault("DOCFOCUS_HOME", str(Path(__file__).parent / "results" / ".home"))
    results = Path(__file__).parent / "results" / "full"
    with tempfile.TemporaryDirectory(prefix="docfocus-first-answer-") as scratch:
        if argv[0] == "same":
            found = [equivalence(name, Path(scratch)) for name in argv[1:] or ["R-data.pdf", "R-intro.pdf"]]
            (results / "first-answer-same.json").write_text(json.dumps(found, indent=1))
            for row in found:
                print(f"{row['document']}: {row['same']} of {row['n']} the same answer and citations as after a "
                      f"full reading ({row['full_read_s']} s); stored {100 * row['stored_share_of_fp32_full']:.1f}%")
            return
        found = [restored_answers(name, storage, Path(scratch)) for storage in argv[1:] or ["fp16"]
                 for name in ("R-intro.pdf", "R-data.pdf")]
    (results / "stored-formats-restored.json").write_text(json.dumps(found, indent=1))
    for row in found:
        print(f"{row['document']} {row['storage']}: {row['n']} questions, {row['same']} answered the same when "
              f"restored, {row['stored_bytes'] / 2**20:.1f} MB stored = {100 * row['stored_share_of_fp32_full']:.1f}%"
              f" of the full fp32 state; read {row['segments_read_first']} segments, again {row['read_again']}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
