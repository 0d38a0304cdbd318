"""What the user is shown beside an answer, from the one passage ranking (engine/retrieval/ranking.py).

The evidence list is the ranking's best passages with the cited ones first (the answer's citations are the
passages it rests on, engine/answer/support.py); the highlights are the words of the cited passages the answer
relied on: the answer's attention on them, and the words it shares with the answer or the question.
"""
from __future__ import annotations

import numpy as np

from ..ingest.extract import IngestedDocument
from ..retrieval import terms as words_text
from .result import Evidence, Highlight

EVIDENCE_LIMIT = 5
EVIDENCE_RELATIVE = 0.5  # a passage is listed when its score is at least half the best one's ...
EVIDENCE_FLOOR = 1.0  # ... and at least one standard deviation above the mean passage
HIGHLIGHT_MIN = 0.2  # words under this share of the strongest word are not highlighted


def evidence_order(scores: np.ndarray, cited: list[int], limit: int = EVIDENCE_LIMIT) -> tuple[list[int], float, float]:
    """Which passages are worth showing, best first with the cited ones first (while they stay above the floor
    and near the best; at least one), and (low, span) to turn their scores into relative ones (best = 1). One
    rule for a document and for a library."""
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        return [], 0.0, 1.0
    best, low = float(finite.max()), float(finite.min())
    listed = list(dict.fromkeys(cited))
    for index in np.argsort(-scores, kind="stable").tolist():
        if len(listed) >= limit:
            break
        value = float(scores[index])
        if index in listed or not np.isfinite(value):
            continue
        if value < EVIDENCE_FLOOR or value < EVIDENCE_RELATIVE * best:
            break
        listed.append(index)
    if not listed:
        listed = [int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))]
    return listed[:max(limit, len(cited))], low, max(best - low, 1e-9)


def evidence(candidates, scores: np.ndarray, cited: list[int], limit: int = EVIDENCE_LIMIT) -> tuple[list[Evidence],
                                                                                                list[int]]:
    """The passages worth showing (``evidence_order``), best first with the cited ones first, each naming its
    document, with relative scores (best = 1); and their scope rows."""
    listed, low, span = evidence_order(scores, cited, limit)
    items = []
    for row in listed:
        handle = candidates.handle(row)
        items.append(evidence_item(handle.ingested, handle.passages, int(candidates.number[row]),
                                   (float(scores[row]) - low) / span, handle.ref()))
    return items, listed


def evidence_item(document, passages, index: int, score: float, ref: dict | None) -> Evidence:
    """One passage as an evidence item: page, text, relative score, word boxes, its document."""
    first, end = int(passages.first_word[index]), int(passages.end_word[index])
    return Evidence(page=int(passages.page[index]) + 1, text=passages.text(document, index), score=round(score, 4),
                    boxes=[word_box(document.words[i]) for i in range(first, end)], words=[first, end], document=ref)


def word_box(word) -> list[float]:
    return [round(word.x0, 1), round(word.y0, 1), round(word.x1, 1), round(word.y1, 1)]


def highlights(document: IngestedDocument, word_ranges: list[tuple[int, int]], token_word: np.ndarray,
               answer_mass: np.ndarray | None, answer_terms: list[str], question: str,
               ref: str | None = None) -> list[Highlight]:
    """Highlighted words of the cited word ranges: half the answer's attention on the word (relative to the
    strongest word), half its match with the answer's terms (1) or the question's (0.5); function words never."""
    wanted_answer = {words_text.stem(t) for t in answer_terms} | set(answer_terms)
    wanted_question = {words_text.stem(t) for t in words_text.terms(question)}
    attention = np.zeros(len(document.words))
    if answer_mass is not None and len(answer_mass):
        count = min(len(answer_mass), len(token_word))
        mapped = token_word[:count]
        valid = mapped >= 0
        np.add.at(attention, mapped[valid], np.asarray(answer_mass[:count], dtype=np.float64)[valid])
    indices = [i for first, end in word_ranges for i in range(first, end)]
    if not indices:
        return []
    strongest = max(float(attention[indices].max()), 1e-12)
    weights = {}
    for index in indices:
        word = document.words[index]
        if not words_text.is_content_word(word.text):
            continue
        keys = words_text.term_keys(word.text)
        match = 1.0 if keys & wanted_answer else 0.5 if keys & wanted_question else 0.0
        weights[index] = 0.5 * attention[index] / strongest + 0.5 * match
    top = max(weights.values(), default=0.0)
    return [Highlight(document.words[i].page + 1, word_box(document.words[i]), round(float(w / top), 3), ref)
            for i, w in weights.items() if top > 0 and w >= HIGHLIGHT_MIN * top]
