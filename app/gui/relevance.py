"""Relevance highlights: from the engine's per-token scores to scored word boxes on pages.

Pure numpy, no Qt, so it is easy to test. A word's score is the maximum score
of the document tokens that map to it (``DocumentHandle.token_word``); when an
answer has no token scores, its evidence boxes are used instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.text import is_content_word

# Show at most this fraction of the document's words (the focal share is ~10%),
# and never words under this fraction of the best score.
MAX_WORD_FRACTION = 0.12
MIN_RELATIVE_SCORE = 0.15


@dataclass(frozen=True)
class Highlight:
    """One translucent rectangle: 0-based page, box in PDF points, intensity in (0, 1]."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    intensity: float


def word_scores(token_scores: np.ndarray, token_word: np.ndarray, n_words: int) -> np.ndarray:
    """(n_words,) max token score per word; tokens with word index -1 are ignored."""
    scores = np.zeros(n_words, dtype=np.float64)
    token_scores = np.asarray(token_scores, dtype=np.float64).reshape(-1)
    token_word = np.asarray(token_word).reshape(-1)
    count = min(len(token_scores), len(token_word))  # the model may have read only a prefix
    words, values = token_word[:count], token_scores[:count]
    keep = (words >= 0) & (words < n_words) & np.isfinite(values)
    np.maximum.at(scores, words[keep], values[keep])
    return scores


def highlights_from_scores(words: list, scores: np.ndarray) -> list[Highlight]:
    """The best-scoring words as highlights, intensity relative to the best word."""
    if len(scores) == 0 or float(scores.max()) <= 0:
        return []
    best = float(scores.max())
    limit = max(1, int(np.ceil(MAX_WORD_FRACTION * len(scores))))
    order = np.argsort(-scores, kind="stable")[:limit]
    result = []
    for index in order:
        relative = float(scores[index]) / best
        if relative < MIN_RELATIVE_SCORE:
            break
        word = words[int(index)]
        if not is_content_word(word.text):  # "the", "of": attention sinks, not evidence
            continue
        result.append(Highlight(word.page, word.x0, word.y0, word.x1, word.y1, relative))
    return result


def highlights_from_evidence(evidence: list) -> list[Highlight]:
    """Evidence boxes (1-based page in the evidence) as highlights, intensity by evidence score."""
    items = [_as_dict(item) for item in evidence or []]
    best = max((float(item.get("score") or 0) for item in items), default=0.0)
    result = []
    for item in items:
        relative = float(item.get("score") or 0) / best if best > 0 else 1.0
        for box in item.get("boxes") or []:
            x0, y0, x1, y1 = (float(v) for v in box[:4])
            result.append(Highlight(int(item["page"]) - 1, x0, y0, x1, y1, max(0.25, relative)))
    return result


def answer_highlights(token_scores, evidence: list, token_word, words: list) -> list[Highlight]:
    """Highlights for one answer: token scores through the token->word map, else evidence boxes."""
    if token_scores is not None and token_word is not None and len(words):
        found = highlights_from_scores(words, word_scores(token_scores, token_word, len(words)))
        if found:
            return found
    return highlights_from_evidence(evidence)


def _as_dict(item) -> dict:
    if isinstance(item, dict):
        return item
    return {"page": item.page, "text": item.text, "score": item.score, "boxes": item.boxes}
