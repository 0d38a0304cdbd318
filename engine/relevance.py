"""From per-token relevance to evidence passages on the page.

Token scores (the attention mass of the tokens DGA kept, or of all tokens in
dense mode) are mapped to words through the ingest map; the best words are
merged into passages of neighbouring words on one page, and the passages are
ranked by the relevance they hold.
"""
from __future__ import annotations

import numpy as np

from .ingest import IngestedDocument

KEEP_FRACTION = 0.03  # share of document tokens whose words seed passages
MIN_KEPT = 12
MAX_GAP_WORDS = 3  # kept words this close together join one passage
CONTEXT_WORDS = 4  # words of context either side of a passage in its text
# Function words soak up attention everywhere (attention sinks), so they seed no passage and get no highlight.
STOPWORDS = frozenset(
    "a an the of to in on at by for and or but nor is are was were be been being it its this that these those "
    "with as from has have had do does did not no so if then than there their they them he she his her we our "
    "you your i me my which who whom what when where how".split())


def is_content_word(text: str) -> bool:
    """False for function words and bare punctuation, which carry no evidence on their own."""
    core = text.strip(".,;:!?()[]{}\"'`“”‘’-").lower()
    return bool(core) and core not in STOPWORDS


TREND_WINDOW = 1025  # tokens: the moving average removed from the scores


def detrend(token_scores: np.ndarray, window: int = TREND_WINDOW) -> np.ndarray:
    """Scores minus their moving average (clipped at 0). Attention mass drifts with position (recent text
    and the document's start get more of it whatever the question); what stands out locally is evidence."""
    scores = np.asarray(token_scores, dtype=np.float64)
    if len(scores) <= 2 or window <= 1:
        return scores
    half = min(window // 2, len(scores) - 1)
    padded = np.concatenate([[0.0], np.cumsum(scores)])
    index = np.arange(len(scores))
    low, high = np.maximum(index - half, 0), np.minimum(index + half + 1, len(scores))
    trend = (padded[high] - padded[low]) / (high - low)
    return np.clip(scores - trend, 0.0, None)


def word_scores(document: IngestedDocument, token_word: np.ndarray, token_scores: np.ndarray) -> np.ndarray:
    """(W,) relevance per word: the sum of its tokens' scores (0 for function words)."""
    scores = np.zeros(len(document.words), dtype=np.float64)
    mapped = token_word[: len(token_scores)]
    valid = mapped >= 0
    np.add.at(scores, mapped[valid], token_scores[: len(mapped)][valid])
    content = np.fromiter((is_content_word(w.text) for w in document.words), dtype=bool, count=len(document.words))
    return np.where(content, scores, 0.0)


def kept_words(scores: np.ndarray, total_tokens: int) -> np.ndarray:
    """Indices of the most relevant words, in document order."""
    count = min(int(np.count_nonzero(scores)), max(MIN_KEPT, int(KEEP_FRACTION * total_tokens)))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.argsort(-scores, kind="stable")[:count])


def passages(document: IngestedDocument, token_word: np.ndarray, token_scores: np.ndarray,
             limit: int = 8) -> list[dict]:
    """Top passages, best first: {page (1-based), text, score, boxes [[x0, y0, x1, y1], ...]}."""
    scores = word_scores(document, token_word, token_scores)
    kept = kept_words(scores, len(token_scores))
    runs: list[list[int]] = []
    for index in kept.tolist():
        last = runs[-1][-1] if runs else None
        if last is not None and index - last <= MAX_GAP_WORDS + 1 and \
                document.words[index].page == document.words[last].page:
            runs[-1].append(index)
        else:
            runs.append([index])
    total = scores.sum() or 1.0
    found = []
    for run in runs:
        first, last = run[0], run[-1]
        span = range(first, last + 1)
        page = document.words[first].page
        context = [i for i in range(max(0, first - CONTEXT_WORDS), min(len(document.words), last + CONTEXT_WORDS + 1))
                   if document.words[i].page == page]
        found.append({
            "page": page + 1,
            "text": " ".join(document.words[i].text for i in context),
            "score": round(float(scores[first:last + 1].sum() / total), 4),
            "boxes": [[round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1)]
                      for w in (document.words[i] for i in span)],
            "words": [first, last + 1],
        })
    found.sort(key=lambda item: -item["score"])
    return found[:limit]


# Highlights: at most this share of the document's words, never words under this share of the best score.
HIGHLIGHT_WORD_FRACTION = 0.12
HIGHLIGHT_MIN_RELATIVE = 0.15


def highlights(document: IngestedDocument, token_word: np.ndarray, token_scores: np.ndarray | None) -> list:
    """The best-scoring content words as ``engine.answer.Highlight``s (1-based page), weight relative to the
    best word; a word scores the maximum of its tokens' scores."""
    from .answer import Highlight

    if token_scores is None or not len(document.words):
        return []
    scores = np.zeros(len(document.words), dtype=np.float64)
    count = min(len(token_scores), len(token_word))
    mapped, values = token_word[:count], np.asarray(token_scores[:count], dtype=np.float64)
    keep = (mapped >= 0) & np.isfinite(values)
    np.maximum.at(scores, mapped[keep], values[keep])
    best = float(scores.max()) if len(scores) else 0.0
    if best <= 0:
        return []
    limit = max(1, int(np.ceil(HIGHLIGHT_WORD_FRACTION * len(scores))))
    result = []
    for index in np.argsort(-scores, kind="stable")[:limit].tolist():
        relative = float(scores[index]) / best
        if relative < HIGHLIGHT_MIN_RELATIVE:
            break
        word = document.words[index]
        if is_content_word(word.text):
            result.append(Highlight(word.page + 1, [round(word.x0, 1), round(word.y0, 1), round(word.x1, 1),
                                                    round(word.y1, 1)], round(relative, 3)))
    return result
