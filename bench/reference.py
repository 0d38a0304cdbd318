"""Reference rows for the answer benchmark: what a user could pick instead of DocFocus, and an oracle.

- Chunk retrieval, as GPT4All LocalDocs and AnythingLLM do it: the document's words cut into ~120-word chunks,
  the 3 best by a BM25 word match given as the document to the same model, same system prompt and chat
  template, greedy decoding (the same loop guard as DocFocus). Its evidence is the 3 chunks' pages.
- Chunk retrieval by meaning: ~1,000-character chunks, all-MiniLM-L6-v2 embeddings, the 4 most similar.
- The gold page alone as the document (the oracle: what the model does when retrieval is perfect).

Both read their text fresh (a new prefill), as those pipelines do.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.model import generation
from engine.model.prompt import chat_ids, stop_texts
from engine.retrieval import terms as text

CHUNK_WORDS = 120
TOP_CHUNKS = 3


@dataclass
class Chunk:
    page: int  # 1-based page of its first word
    text: str
    terms: Counter


def chunks(document, words_per_chunk: int = CHUNK_WORDS) -> list[Chunk]:
    """Consecutive chunks of ``words_per_chunk`` words (pages are ignored, as those apps ignore them)."""
    found = []
    for start in range(0, len(document.words), words_per_chunk):
        words = document.words[start:start + words_per_chunk]
        body = " ".join(w.text for w in words)
        found.append(Chunk(words[0].page + 1, body, Counter(text.stem(t) for t in text.terms(body))))
    return found


def bm25_top(pieces: list[Chunk], question: str, count: int = TOP_CHUNKS, k1: float = 1.2,
             b: float = 0.75) -> list[int]:
    wanted = list(dict.fromkeys(text.stem(t) for t in text.terms(question)))
    lengths = [sum(c.terms.values()) for c in pieces]
    average = sum(lengths) / max(1, len(lengths))
    scores = []
    for chunk, length in zip(pieces, lengths):
        score = 0.0
        for term in wanted:
            tf = chunk.terms.get(term, 0)
            if tf:
                df = sum(1 for c in pieces if term in c.terms)
                idf = math.log(1 + (len(pieces) - df + 0.5) / (df + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / max(1.0, average)))
        scores.append(score)
    return sorted(range(len(pieces)), key=lambda i: -scores[i])[:count]


def answer_from_text(engine, document_text: str, question: str, max_new_tokens: int) -> tuple[str, float]:
    """(answer, first-token seconds) of the model reading ``document_text`` fresh, in DocFocus's prompt."""
    loaded = engine.load()
    started = time.perf_counter()
    ids = chat_ids(loaded.tokenizer, document_text, question)
    cache = generation.new_cache(loaded.model.config)
    logits = generation.prefill(loaded.model, ids, cache)
    stream = generation.TextStream(loaded.tokenizer, stop_texts(loaded.tokenizer))
    first = None
    stops = generation.stop_token_ids(loaded.tokenizer, loaded.model)
    for token in generation.decode(loaded.model, cache, logits, max_new_tokens, stops):
        first = first if first is not None else time.perf_counter() - started
        stream.push(token)
        if stream.stopped:  # a base model's answer ended
            break
    return stream.text.strip(), first if first is not None else time.perf_counter() - started


def chunk_retrieval(engine, document, question: str, max_new_tokens: int) -> dict:
    pieces = chunks(document)
    best = bm25_top(pieces, question)
    answer, first = answer_from_text(engine, "\n\n".join(pieces[i].text for i in best), question, max_new_tokens)
    return {"answer": answer, "pages": [pieces[i].page for i in best], "first_token_s": first}


EMBED_CHARS = 1000  # a popular desktop RAG app's default chunk (characters)
EMBED_TOP = 4


def embedding_retrieval(engine, document, question: str, max_new_tokens: int) -> dict:
    """Chunk retrieval by meaning alone: ~1,000-character chunks, embedded with all-MiniLM-L6-v2, the 4 most similar
    to the question given to the same model (the default of a popular desktop RAG app)."""
    from engine.retrieval.meaning import Embedder

    embedder = getattr(engine, "_bench_embedder", None) or Embedder.load()
    engine._bench_embedder = embedder
    pieces, current, page = [], [], None
    for word in document.words:
        page = word.page + 1 if not current else page
        current.append(word.text)
        if sum(len(w) + 1 for w in current) >= EMBED_CHARS:
            pieces.append(Chunk(page, " ".join(current), Counter()))
            current = []
    if current:
        pieces.append(Chunk(page, " ".join(current), Counter()))
    key = (document.sha256, len(pieces))
    cached = getattr(engine, "_bench_chunk_vectors", {})
    if key not in cached:
        cached[key] = np.concatenate([embedder.embed([c.text for c in pieces[i:i + 64]])
                                      for i in range(0, len(pieces), 64)])
        engine._bench_chunk_vectors = cached
    best = np.argsort(-(cached[key] @ embedder.embed([question])[0]))[:EMBED_TOP].tolist()
    answer, first = answer_from_text(engine, "\n\n".join(pieces[i].text for i in best), question, max_new_tokens)
    return {"answer": answer, "pages": [pieces[i].page for i in best], "first_token_s": first}


def gold_page(engine, document, page: int, question: str, max_new_tokens: int) -> dict:
    """``page`` is 1-based."""
    info = document.pages[page - 1]
    answer, first = answer_from_text(engine, document.text[info.text_start:info.text_end], question, max_new_tokens)
    return {"answer": answer, "pages": [page], "first_token_s": first}
