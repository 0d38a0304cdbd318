"""Answering a question from the whole library: the single-document pipeline over passages of many documents.

1. **Ranking.** BM25 of the question over every passage of every ready document (engine/retrieval/index.py; idf
   and the mean passage length over the library), as a z-score: the same word match a long document is ranked
   by alone.
2. **Selection.** The best passages, from any documents, fill the focal budget (``passages.select``: each of
   the best with the passage after it in its own document).
3. **Compaction.** Each chosen passage's keys come from its document's state: a long document's segments that
   hold it are loaded (or read again if evicted), a short document's state is restored. They are rotated
   (RoPE) to consecutive positions right after the chat head, in ranking order (the best last, next to the
   question), into one context.
4. **Generation, support verdict, citations, highlights**, as for one document (engine/answer/pipeline.py,
   engine/answer/support.py, engine/answer/evidence.py), with every evidence item and citation naming its document.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..answer import evidence as relevance
from ..answer import postprocess, support
from ..answer.result import Answer, Citation, Evidence
from ..attention import compaction
from ..errors import DocFocusError
from ..model.prompt import question_ids
from ..reading.segments import Reading
from ..retrieval import passages as passage_ops
from ..retrieval import terms as words_text


def answer_library(engine, question: str, on_text, should_stop, progress, limit_tokens: int,
                   documents: list[str] | None = None) -> Answer:
    """The answer from the ready documents (``documents``: only these sha256s)."""
    loaded = engine.load()
    settings = engine.settings.answer
    started = time.perf_counter()
    ready = {item["sha256"]: item for item in engine.library_documents() if item["state"] == "ready"
             and (documents is None or item["sha256"] in documents)}
    indexed = {sha: doc for sha, doc in engine.passage_index.documents(loaded.id).items() if sha in ready}
    if not indexed:
        raise DocFocusError("The library has no document ready to answer from.",
                            "Add documents with `docfocus library add FILE_OR_FOLDER` and let them be read.")
    docs = list(indexed.values())
    scope = engine.passage_index.search(question, docs)
    score = passage_ops.zscore(scope.lexical)
    ranked_s = time.perf_counter()
    chosen = passage_ops.select(scope.as_passages(), score, settings.focal_tokens, settings.follow)
    placed = chosen[::-1] if settings.order == "rank" else sorted(chosen)
    handles = {sha: engine.library_handle(sha) for sha in dict.fromkeys(scope.sha256[placed].tolist())}
    opened_s = time.perf_counter()
    report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
    parts, timings = _context_parts(engine, scope, placed, handles, report, should_stop)
    head_keys, head_values = parts[0][0].head_keys, parts[0][0].head_values
    keys = [torch.cat([r.keys[layer][:, :, i] for r, i in parts], 2) for layer in range(len(head_keys))]
    values = [torch.cat([r.values[layer][:, :, i] for r, i in parts], 2) for layer in range(len(head_keys))]
    positions = torch.cat([r.positions[torch.as_tensor(i)] for r, i in parts])
    items = int(positions.numel())
    context = Reading(head_keys, head_values, keys, values, positions, [(0, items)])
    model = loaded.model
    compacted = compaction.compact(model, context, np.arange(items))
    run = compaction.PassageRun(context.head_len, items)
    first = next(iter(handles.values()))
    q_ids = question_ids(loaded.tokenizer, first.layout, question)
    limit = min(limit_tokens, loaded.window - context.head_len - items - len(q_ids))
    result = engine._answerer._generate(compaction.cache_of(model, compacted), q_ids, run, limit, on_text,
                                        should_stop, started, progress)
    mass = run.answer_mass.numpy()
    answer_mass = {}  # document -> (L,) the answer's attention on its placed tokens
    offset = 0
    for p, (reading, index) in zip(placed, parts):
        doc = handles[scope.sha256[p]]
        target = answer_mass.setdefault(doc.sha256, np.zeros(doc.total_tokens, dtype=np.float32))
        tokens = np.arange(scope.start[p], min(int(scope.end[p]), doc.total_tokens))
        target[tokens] = mass[offset:offset + len(tokens)]
        offset += len(tokens)
    context_order = sorted(chosen, key=lambda p: -score[p])
    answer = _story(engine, question, scope, score, context_order, handles, result, answer_mass, docs, settings)
    answer.attention = {"context": "library passages", "passages": len(chosen), "attended_tokens": items,
                        "documents_in_context": len(handles), "attended_fraction":
                        round(items / max(1, sum(int(ready[s]["tokens"] or 0) for s in indexed)), 6)}
    answer.document = {"library": True, "documents": len(indexed), "passages": len(scope),
                       "tokens": sum(int(ready[s]["tokens"] or 0) for s in indexed)}
    answer.timings = {"load_s": round(loaded.load_s, 3), "prefill_s": 0.0, **result["timings"],
                      "rank_s": round(ranked_s - started, 3), "open_s": round(opened_s - ranked_s, 3), **timings,
                      "total_s": round(time.perf_counter() - started, 3)}
    answer.cache_hit = timings["segments_read"] == 0
    return answer


def _context_parts(engine, scope, placed, handles, report, should_stop):
    """Per placed passage (reading, its token indices in that reading): each document's needed segments loaded
    once for all its passages."""
    by_doc: dict[str, list[int]] = {}
    for p in placed:
        by_doc.setdefault(scope.sha256[p], []).append(p)
    loaded: dict[str, tuple[Reading, dict[int, np.ndarray]]] = {}
    stats = {"segments_loaded": 0, "segments_read": 0, "segments_in_memory": 0, "context_load_s": 0.0}
    began = time.perf_counter()
    for sha, numbers in by_doc.items():
        doc = handles[sha]
        state = engine.library_state(doc, should_stop)
        ranges = [np.arange(scope.start[p], min(int(scope.end[p]), doc.total_tokens)) for p in numbers]
        reading, local = state.reading.subset(np.concatenate(ranges), report, should_stop)
        pieces, offset = {}, 0
        for p, tokens in zip(numbers, ranges):
            pieces[p] = local[offset:offset + len(tokens)]
            offset += len(tokens)
        loaded[sha] = (reading, pieces)
        lazy_stats = getattr(state.reading, "stats", None)
        if lazy_stats is not None:
            for key, value in lazy_stats.to_dict().items():
                if key in stats:
                    stats[key] += value
    stats["context_load_s"] = round(time.perf_counter() - began, 3)
    return [(loaded[scope.sha256[p]][0], torch.as_tensor(loaded[scope.sha256[p]][1][p])) for p in placed], stats


def _story(engine, question, scope, score, context, handles, result, answer_mass, docs, settings) -> Answer:
    """The answer's text, support verdict, evidence, citations and highlights, each naming its document."""
    def doc_of(p):
        sha = scope.sha256[p]
        if sha not in handles:
            handles[sha] = engine.library_handle(sha)
        return handles[sha]

    def text_of(p):
        doc = doc_of(p)
        return doc.passages.text(doc.ingested, int(scope.number[p]))

    cleaned = postprocess.clean(result["text"], result["finish"], result["looped"])
    weights = engine.passage_index.weights(question, docs)
    verdict = (support.check(cleaned.text, question, [text_of(p) for p in context], weights) if cleaned.text
               else support.Verdict(False, [0]))
    text, supported, answer_terms = cleaned.text, verdict.supported, verdict.found
    cited = [context[i] for i in verdict.cited] if context else []
    ranges = {p: (int(scope.first_word[p]), int(scope.end_word[p])) for p in cited}
    if not supported and result["finish"] != "stopped":
        best = None
        for rank, p in enumerate(context or np.argsort(-score, kind="stable")[:3].tolist()):
            doc = doc_of(p)
            quote = postprocess.best_sentence(doc.ingested, doc.passages, [int(scope.number[p])], weights)
            if quote is not None:
                value = support.coverage(words_text.term_keys(quote.text), weights) - 0.01 * rank
                if best is None or value > best[0]:
                    best = (value, p, quote)
        if best is not None:
            value, p, quote = best
            where = f"{doc_of(p).ingested.title or 'document'}, p. {int(scope.page[p]) + 1}"
            text, supported, answer_terms = support.quoted(quote.text, where, question, weights, settings.quote,
                                                           "library")
            cited = [p]
            ranges = {p: (quote.first_word, quote.end_word)}
    evidence, listed = _evidence(scope, score, cited, doc_of)
    citations = [Citation(evidence[listed.index(p)].page, evidence[listed.index(p)].text, listed.index(p),
                          evidence[listed.index(p)].boxes, evidence[listed.index(p)].document) for p in cited]
    lights = []
    for sha in dict.fromkeys(scope.sha256[p] for p in ranges):
        doc = handles[sha]
        lights += relevance.highlights(doc.ingested, [ranges[p] for p in ranges if scope.sha256[p] == sha],
                                       doc.token_word, answer_mass.get(sha), answer_terms, question, sha)
    loaded = engine.load()
    return Answer(question=question.strip(), answer=text, document={}, model=loaded.info(), attention={}, timings={},
                  evidence=evidence, cache_hit=True, stopped=result["finish"] == "stopped", notice=None,
                  token_scores=None, citations=citations, supported=bool(supported), highlights=lights,
                  finish=cleaned.finish, generated=result["text"])


def _evidence(scope, score, cited, doc_of) -> tuple[list[Evidence], list[int]]:
    """The passages worth showing (``relevance.evidence_order``), each with its document; and their scope rows."""
    listed, low, span = relevance.evidence_order(score, cited)
    evidence = []
    for p in listed:
        doc = doc_of(p)
        evidence.append(relevance.evidence_item(doc.ingested, doc.passages, int(scope.number[p]),
                                                (float(score[p]) - low) / span, doc.ref()))
    return evidence, listed
