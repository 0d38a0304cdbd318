"""The model's focus over a shortlist: let the question's own attention choose among the best-matching passages.

The word match recalls a shortlist (``AnswerSettings.shortlist_tokens`` of the best passages); they are read
(only their segments) and placed after the chat head as an answer's context would be, and the question is read
once after them. The attention its tokens give each passage (summed over heads and layers, over the passage's
tokens, divided by the square root of its length) is the model's own view of where the answer is; its z-score
over the shortlist, weighted by ``attention_weight``, is added to the word match's, and the answer's context
is then chosen from the shortlist by that sum. Passages outside the shortlist keep their order below it.
"""
from __future__ import annotations

import numpy as np

from ..model import generation
from ..retrieval import passages as passage_ops
from ..retrieval.ranking import Ranking
from . import context as placing


def refocus(model, ranking: Ranking, readings, q_ids: list[int], shortlist_tokens: int, weight: float,
            progress=None, should_stop=None) -> tuple[Ranking, dict]:
    """The ranking with the question's attention over the shortlist weighed in, and what reading it took."""
    candidates = ranking.candidates
    shortlist = passage_ops.select(candidates.as_passages(), ranking.score, shortlist_tokens, follow=0)
    context = placing.assemble(model, candidates, shortlist[::-1], readings, progress, should_stop)
    generation.prefill(model, q_ids, context.cache, run=context.run, phase="question", should_stop=should_stop)
    mass = context.run.question_mass.numpy()  # (items,) in placement order
    attention = np.zeros(len(candidates))
    offset = 0
    for row in shortlist[::-1]:
        count = len(candidates.token_range(row))
        attention[row] = mass[offset:offset + count].sum() / np.sqrt(max(1, count))
        offset += count
    rows = np.array(shortlist)
    score = np.full(len(candidates), -np.inf)
    score[np.isfinite(ranking.score)] = ranking.score[np.isfinite(ranking.score)] - 1e6  # below the shortlist
    score[rows] = passage_ops.zscore(ranking.score[rows]) + weight * passage_ops.zscore(attention[rows])
    focused = Ranking(candidates, score, {**ranking.parts, "attention": attention}, [*ranking.signals, "attention"],
                      ranking.weights)
    return focused, {"shortlist": len(shortlist), **{f"focus_{key}": value for key, value in context.stats.items()}}
