"""The model's own check of the shortlist: how likely the question is after each of the best passages.

People ask in their own words, so a passage that answers them may share few of them. The language model knows
what a passage is about: asked to write a question about it, the question the user asked is likelier after a
passage that answers it than after one that only shares its words. The score of a passage is the mean
log-probability of the question's tokens after ``PROMPT`` (unsupervised passage re-ranking, Sachan et al. 2022,
"Improving Passage Retrieval with Zero-Shot Question Generation").

It needs no reading of the document: one batched forward pass over ``SHORTLIST`` passages (each cut to
``PASSAGE_CHARS``) and the question, so its cost is bounded per question (about 0.5 s with the bundled model on
a 2-core CPU) and independent of the document's length. Measured in bench/ranking.py ("model check").
"""
from __future__ import annotations

import numpy as np
import torch

from . import passages as passage_ops
from .ranking import Ranking

SHORTLIST = 8  # the ranking's best passages the model reads
WEIGHT = 2.0  # weight of the question's likelihood (z-score) beside the ranking's own (z-score)
PASSAGE_CHARS = 1200  # a passage is about 64 tokens; this bounds an unusually long one
PROMPT = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"


@torch.no_grad()
def question_likelihood(model, tokenizer, passages: list[str], question: str) -> np.ndarray:
    """(len(passages),) mean log-probability of ``question``'s tokens after each passage's prompt, in one batch
    (left-padded, so the question's tokens line up at the end)."""
    target = tokenizer(" " + question.strip(), add_special_tokens=False)["input_ids"]
    prefixes = [tokenizer(PROMPT.format(passage=" ".join(text.split())[:PASSAGE_CHARS]),
                          add_special_tokens=False)["input_ids"] for text in passages]
    if not target or not prefixes:
        return np.zeros(len(passages))
    width = max(len(p) for p in prefixes) + len(target)
    ids = torch.zeros((len(prefixes), width), dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for row, prefix in enumerate(prefixes):
        tokens = prefix + target
        ids[row, width - len(tokens):] = torch.tensor(tokens)
        mask[row, width - len(tokens):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    device = next(model.parameters()).device
    keep = len(target) + 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                   use_cache=False, logits_to_keep=keep).logits
    predicted = logits[:, -keep:-1].float().log_softmax(-1).cpu()  # the positions that predict the question
    wanted = torch.tensor(target).expand(len(prefixes), -1)
    return predicted.gather(-1, wanted[..., None])[..., 0].mean(-1).numpy()


def rerank(ranking: Ranking, question: str, model, tokenizer) -> Ranking:
    """The ranking's best ``SHORTLIST`` passages re-ordered by their own score and the question's likelihood
    after them (z-scores over the shortlist, the likelihood weighed ``WEIGHT``). The shortlist's score values are
    kept, handed out in the new order, so the rest stay below and the evidence list's cut-offs mean what they
    meant before the check."""
    score, rows = ranking.score, ranking.shortlist(SHORTLIST)
    if not rows:
        return ranking
    candidates = ranking.candidates
    likelihood = question_likelihood(model, tokenizer, [candidates.text(r) for r in rows], question)
    part = np.zeros(len(candidates))
    part[rows] = likelihood
    combined = passage_ops.zscore(score[rows]) + WEIGHT * passage_ops.zscore(likelihood)
    checked = score.copy()  # the shortlist re-ordered, keeping its values: what is listed as evidence stays so
    checked[np.array(rows)[np.argsort(-combined, kind="stable")]] = np.sort(score[rows])[::-1]
    return Ranking(candidates, checked, {**ranking.parts, "model": part}, [*ranking.signals, "model"],
                   ranking.weights)
