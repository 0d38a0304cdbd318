"""The passage ranking: one score per passage for a question, which chooses the answer's context, the evidence,
the citations and the highlights (one story).

The default score is the word match alone (BM25 over the question's content terms, engine/retrieval/
passages.py); the question's attention over the model's reading is weighed in only when asked
(``attention_weight``) or when no word of the question is in the document.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ingest.extract import IngestedDocument
from . import passages as passage_ops


@dataclass
class Ranking:
    """One question's ranking of a document's passages (P,): the score and its two parts."""

    passages: passage_ops.Passages
    score: np.ndarray
    attention: np.ndarray
    lexical: np.ndarray

    def order(self) -> list[int]:
        return np.argsort(-self.score, kind="stable").tolist()


def needs_attention(lexical: np.ndarray, attention_weight: float) -> bool:
    """Whether ranking needs the question's attention over the document: when it is weighed in, or when no word
    of the question is in the document (``lexical``: the passages' word match, which then says nothing)."""
    return attention_weight > 0 or not np.any(lexical > 0)


def rank(document: IngestedDocument, passages: passage_ops.Passages, token_mass: np.ndarray | None,
         segments: list[tuple[int, int]], question: str, attention_weight: float, used_tokens: int,
         lexical: np.ndarray | None = None) -> Ranking:
    """Rank the passages for ``question`` by the word match, with the per-token attention mass (L,) weighed in by
    ``attention_weight`` (``token_mass`` None: not measured); passages that start beyond ``used_tokens`` (a
    truncated document) are never ranked. ``lexical``: the word match if already counted (the passage index)."""
    if lexical is None:
        lexical = passage_ops.lexical_scores(passages, document, question)
    attention = None
    if token_mass is not None:
        full = np.zeros(int(passages.end[-1]) if len(passages) else 0)
        full[:min(len(full), len(token_mass))] = token_mass[:len(full)]  # a truncated document's tail was not read
        attention = passage_ops.attention_scores(passages, full, segments)
    score = passage_ops.rank(attention, lexical, attention_weight)
    score[passages.start >= used_tokens] = -np.inf
    return Ranking(passages, score, np.zeros(len(passages)) if attention is None else attention, lexical)
