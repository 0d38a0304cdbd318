"""Passages: the unit of relevance. One cut of the document, one ranking per question.

A document is cut once into passages of about ``target`` tokens: whole words, on one page, ending at a
paragraph or sentence end where one is near. For a question each passage gets a word-match score (BM25 over
the question's content terms) and an attention score (the question's attention mass on its tokens, from the
model's own reading); their z-scores add up to the ranking that the answer's context, the evidence list,
the citations and the highlights all come from.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..ingest.extract import IngestedDocument
from . import terms as words_text

# Boundary strength between two words: a page break must cut, a paragraph is the best place, then a sentence.
_WORD, _LINE, _SENTENCE, _BLOCK, _PAGE = range(5)
BM25_K1, BM25_B = 1.2, 0.75


@dataclass
class Passages:
    """``P`` passages: word range [first_word, end_word), token range [start, end), 0-based page."""

    first_word: np.ndarray
    end_word: np.ndarray
    start: np.ndarray
    end: np.ndarray
    page: np.ndarray
    _terms: list[Counter] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.start)

    def of_token(self, length: int) -> np.ndarray:
        """(length,) the passage of each document token."""
        index = np.zeros(length, dtype=np.int64)
        index[self.start[1:]] = 1
        return np.cumsum(index)

    def text(self, document: IngestedDocument, number: int) -> str:
        """The passage's text as it stands in the document."""
        first, end = int(self.first_word[number]), int(self.end_word[number])
        return document.text[document.words[first].start:document.words[end - 1].end]

    def term_counts(self, document: IngestedDocument) -> list[Counter]:
        """Per passage, how often each term key (terms and their stems) occurs; computed once."""
        if self._terms is None:
            self._terms = [Counter(key for word in document.words[int(a):int(b)]
                                   for key in words_text.term_keys(word.text))
                           for a, b in zip(self.first_word, self.end_word)]
        return self._terms


def _boundaries(document: IngestedDocument) -> np.ndarray:
    """(W,) the strength of the boundary before each word (index 0: none)."""
    strength = np.zeros(len(document.words), dtype=np.int64)
    for index in range(1, len(document.words)):
        before, word = document.words[index - 1], document.words[index]
        gap = document.text[before.end:word.start]
        if word.page != before.page:
            strength[index] = _PAGE
        elif "\n\n" in gap:
            strength[index] = _BLOCK
        elif before.text.rstrip("\"')”’").endswith((".", "!", "?", ":")):
            strength[index] = _SENTENCE
        elif "\n" in gap:
            strength[index] = _LINE
    return strength


def cut(document: IngestedDocument, offsets: np.ndarray, target: int = 64) -> Passages:
    """Cut the document (token char ``offsets`` (L, 2)) into passages of about ``target`` tokens."""
    starts = np.array([w.start for w in document.words], dtype=np.int64)
    first_token = np.searchsorted(offsets[:, 1], starts, side="right")  # first token ending after the word starts
    strength = _boundaries(document)
    low, high = max(1, target // 2), target * 3 // 2
    cuts, begin, best = [0], 0, None
    for index in range(1, len(document.words)):
        size = first_token[index] - first_token[begin]
        kind = strength[index]
        if size >= low and (best is None or kind >= strength[best]):
            best = index
        wanted = (kind == _PAGE or (size >= low and kind >= _BLOCK) or (size >= target and kind >= _SENTENCE)
                  or (size >= target * 5 // 4 and kind >= _LINE))
        if wanted or size >= high:
            chosen = index if wanted or best is None else best
            if chosen > begin:
                cuts.append(chosen)
                begin, best = chosen, None
    first = np.array(cuts, dtype=np.int64)
    end_word = np.append(first[1:], len(document.words))
    start = first_token[first]
    start[0] = 0
    end = np.append(start[1:], len(offsets))
    page = np.array([document.words[int(i)].page for i in first], dtype=np.int64)
    return Passages(first, end_word, start, end, page)


def question_terms(question: str) -> list[str]:
    """The question's content-term stems and those of its compounds' parts, each once, in order: what BM25 and
    the idf weights look for."""
    found = words_text.terms(question)
    return list(dict.fromkeys(words_text.stem(t) for term in found for t in [term, *words_text.parts(term)]))


def idf(passages: int, df: int) -> float:
    """BM25's idf of a term found in ``df`` of ``passages`` passages."""
    return math.log(1 + (passages - df + 0.5) / (df + 0.5))


def bm25(term_frequencies: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
    """(P,) BM25 of P passages of ``lengths`` words, given for each question term its (P,) frequencies; idf
    and the mean length are taken over these P passages. The one implementation: a document's passages
    (``lexical_scores``) and a library's (engine/retrieval/index.py) are scored by it."""
    result = np.zeros(len(lengths))
    if not len(lengths):
        return result
    lengths = np.asarray(lengths, dtype=np.float64)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(1.0, lengths.mean()))
    for tf in term_frequencies:
        df = np.count_nonzero(tf)
        if df == 0:
            continue
        result += idf(len(lengths), df) * tf * (BM25_K1 + 1) / (tf + norm)
    return result


def lexical_scores(passages: Passages, document: IngestedDocument, question: str) -> np.ndarray:
    """(P,) BM25 of the question's content terms (their stems matching too) in each passage."""
    wanted = question_terms(question)
    if not wanted or not len(passages):
        return np.zeros(len(passages))
    counts = passages.term_counts(document)
    return bm25([np.array([c.get(term, 0) for c in counts], dtype=np.float64) for term in wanted],
                passages.end_word - passages.first_word)


def question_weights(passages: Passages, document: IngestedDocument, question: str) -> dict[str, float]:
    """The question's term stems that occur in the document, each weighted by its idf over the passages (a
    term the document never uses cannot be matched, so it weighs nothing)."""
    counts = passages.term_counts(document)
    weights = {}
    for term in question_terms(question):
        df = sum(1 for c in counts if term in c)
        if df:
            weights[term] = idf(len(counts), df)
    return weights


def attention_scores(passages: Passages, token_mass: np.ndarray, segments: list[tuple[int, int]]) -> np.ndarray:
    """(P,) the question's attention mass on each passage's tokens. Each segment was scored alone and attention
    drifts with position, so a token's mass is compared with its segment's mean first."""
    centred = token_mass.astype(np.float64).copy()
    for start, end in segments:
        centred[start:end] -= centred[start:end].mean()
    sums = np.add.reduceat(centred, passages.start) if len(passages) else np.zeros(0)
    return sums / np.sqrt(np.maximum(1, passages.end - passages.start))


def zscore(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values, dtype=np.float64)


def select(passages: Passages, ranking: np.ndarray, budget: int, follow: int = 1) -> list[int]:
    """Passages for the answer's context, best first, within ``budget`` tokens: the best ones, each (up to the
    ``follow`` best) with the passage after it on the same page (an answer often continues its match)."""
    chosen: list[int] = []
    used = 0
    sizes = passages.end - passages.start
    for order, index in enumerate(np.argsort(-ranking, kind="stable").tolist()):
        if not np.isfinite(ranking[index]):  # not readable (past a truncated document's end)
            break
        extra = [index]
        nxt = index + 1
        if order < follow and nxt < len(passages) and passages.page[nxt] == passages.page[index]:
            extra.append(nxt)
        for item in extra:
            if item not in chosen and used + sizes[item] <= budget:
                chosen.append(item)
                used += int(sizes[item])
        if used >= budget or (chosen and used + sizes.min() > budget):
            break
    return chosen or [int(np.argmax(ranking))]
