"""The passage ranking: one score per passage of a scope (one document or several) for a question.

The ranking chooses the answer's context and orders the evidence, the citations and the highlights (one
story). ``Candidates`` are the passages of the scope as parallel arrays, whichever documents they come from;
``rank`` scores them by the signals in ``parts`` and says which ones chose (``Ranking.signals``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import passages as passage_ops


@dataclass
class Candidates:
    """The passages of a scope, (P,) each: their document (an index into ``shas``), their number in it, 0-based
    page, word range and token range. Per document: ``tokens`` (its length) and ``used`` (the tokens the model
    may read: fewer for a truncated document). A document is opened (``DocumentHandle``) only when one of its
    passages is read or shown: ``opener(sha256)`` opens it."""

    shas: list[str]
    tokens: np.ndarray
    used: np.ndarray
    doc: np.ndarray
    number: np.ndarray
    page: np.ndarray
    first_word: np.ndarray
    end_word: np.ndarray
    start: np.ndarray
    end: np.ndarray
    opener: Callable[[str], object] | None = None
    handles: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.number)

    @classmethod
    def of_document(cls, handle) -> "Candidates":
        passages = handle.passages
        count = len(passages)
        return cls([handle.sha256], np.array([handle.total_tokens]), np.array([handle.used_tokens]),
                   np.zeros(count, dtype=np.int64), np.arange(count), passages.page, passages.first_word,
                   passages.end_word, passages.start, passages.end, handles={handle.sha256: handle})

    @classmethod
    def of_scope(cls, scope, tokens: dict[str, int], opener: Callable[[str], object]) -> "Candidates":
        """The passages of a passage-index search (engine/retrieval/index.py ``ScopePassages``)."""
        shas = list(dict.fromkeys(scope.sha256.tolist()))
        where = {sha: number for number, sha in enumerate(shas)}
        lengths = np.array([int(tokens.get(sha) or 0) for sha in shas], dtype=np.int64)
        return cls(shas, lengths, lengths.copy(), np.array([where[s] for s in scope.sha256], dtype=np.int64),
                   scope.number, scope.page, scope.first_word, scope.end_word, scope.start, scope.end, opener)

    def handle_of(self, number: int):
        """The opened document ``number`` of the scope."""
        sha = self.shas[number]
        if sha not in self.handles:
            self.handles[sha] = self.opener(sha)
        return self.handles[sha]

    def handle(self, row: int):
        return self.handle_of(int(self.doc[row]))

    def text(self, row: int) -> str:
        handle = self.handle(row)
        return handle.passages.text(handle.ingested, int(self.number[row]))

    def token_range(self, row: int) -> np.ndarray:
        """The document tokens of passage ``row`` (a truncated document's last passage ends where reading did)."""
        return np.arange(int(self.start[row]), min(int(self.end[row]), int(self.used[int(self.doc[row])])))

    def as_passages(self) -> passage_ops.Passages:
        """A ``Passages`` view for ``passages.select``: pages made unique per document, so a passage never brings
        another document's passage along as "the passage after it"."""
        return passage_ops.Passages(self.first_word, self.end_word, self.start, self.end,
                                    self.doc * 1_000_000 + self.page)


@dataclass
class Ranking:
    """One question's ranking of ``candidates``: the score (P,), its parts by signal name, the signals that chose
    (those with a weight and something to say), and the question's term weights (stem -> idf over the scope)."""

    candidates: Candidates
    score: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    signals: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)

    def order(self) -> list[int]:
        return np.argsort(-self.score, kind="stable").tolist()

    def shortlist(self, size: int) -> list[int]:
        """The best ``size`` rankable rows, best first; none when fewer than two can be ranked (nothing to
        re-order)."""
        finite = np.isfinite(self.score)
        if finite.sum() < 2:
            return []
        return [r for r in np.argsort(-self.score, kind="stable")[:size].tolist() if finite[r]]


def rank(candidates: Candidates, lexical: np.ndarray, weights: dict[str, float]) -> Ranking:
    """Rank by the word match (BM25, ``lexical`` (P,)) as a z-score (the answer pipeline may weigh the model's
    own attention over a shortlist in: engine/answer/focus.py). Passages past a truncated document's reading
    are never ranked."""
    parts = {"words": lexical}
    score = passage_ops.zscore(lexical)
    signals = ["words"] if np.any(lexical > 0) else []
    score = np.where(candidates.start < candidates.used[candidates.doc], score, -np.inf)
    return Ranking(candidates, score, parts, signals, weights)


def word_match(candidates: Candidates, question: str, index=None) -> tuple[np.ndarray, dict[str, float]]:
    """(P,) BM25 of the question over the scope's passages (idf and mean length over the scope), and the
    question's term weights (stem -> idf). From the passage index where it holds every document of the scope
    (no counting of words again), else counted here: the same figures either way."""
    if index is not None:
        found = _from_index(candidates, question, index)
        if found is not None:
            return found
    handles = [candidates.handle_of(number) for number in range(len(candidates.shas))]
    counts = [c for handle in handles for c in handle.passages.term_counts(handle.ingested)]
    terms = passage_ops.question_terms(question)
    frequencies = [np.array([c.get(term, 0) for c in counts], dtype=np.float64) for term in terms]
    lexical = passage_ops.bm25(frequencies, candidates.end_word - candidates.first_word)
    weights = {term: passage_ops.idf(len(counts), int(np.count_nonzero(tf))) for term, tf in zip(terms, frequencies)
               if np.any(tf)}
    return lexical, weights


def _from_index(candidates: Candidates, question: str, index) -> tuple[np.ndarray, dict[str, float]] | None:
    ids = [index.doc_id(sha) for sha in candidates.shas]
    if any(i is None for i in ids):
        return None
    scope = index.search(question, ids)
    parts = [scope.lexical[scope.sha256 == sha] for sha in candidates.shas]
    if [len(part) for part in parts] != np.bincount(candidates.doc, minlength=len(candidates.shas)).tolist():
        return None  # an index of another cut of the document: count here instead
    return np.concatenate(parts), index.weights(question, ids)
