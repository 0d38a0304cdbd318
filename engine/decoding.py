"""Next-token adjustments that tie a small model's answer to its context (``generation.decode(adjust=...)``).

- ``ContrastiveDecoding`` (CAD, Shi et al. 2023; AdaCAD, Wang et al. 2024): the logits with the document
  minus a weight times the logits without it, so that what the document adds wins over the model's prior.
  With ``alpha="auto"`` the weight is the Jensen-Shannon divergence of the two next-token distributions
  (AdaCAD): contrast only where the document and the prior disagree.
- ``CopyBias``: a bonus for the token that continues a span of the context the answer is copying (the last
  generated tokens match a run of context tokens), so a multi-token name or number is copied whole.
"""
from __future__ import annotations

import torch

from . import generation


class ContrastiveDecoding:
    """Keeps a second cache of [head + question] (no document) and contrasts each step's logits with it."""

    def __init__(self, model, no_context_ids: list[int], alpha: float | str = "auto") -> None:
        self.model = model
        self.alpha = alpha
        self.cache = generation.new_cache(model.config)
        self.logits = generation.prefill(model, no_context_ids, self.cache, phase="prefill")
        self.fed = 0

    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, produced: list[int]) -> torch.Tensor:
        while self.fed < len(produced):  # feed the answer so far to the no-document model
            step = torch.tensor([[produced[self.fed]]], device=logits.device)
            self.logits = generation.forward_logits(self.model, step, self.cache)
            self.fed += 1
        with_doc, without = logits.float().log_softmax(-1), self.logits.float().log_softmax(-1)
        alpha = jensen_shannon(with_doc, without) if self.alpha == "auto" else float(self.alpha)
        return (1 + alpha) * with_doc - alpha * without


def jensen_shannon(log_p: torch.Tensor, log_q: torch.Tensor) -> float:
    """JSD of two distributions given as log-probabilities, in [0, ln 2]."""
    p, q = log_p.exp(), log_q.exp()
    log_m = torch.log((p + q) / 2 + 1e-30)
    return float(0.5 * (p * (log_p - log_m)).sum() + 0.5 * (q * (log_q - log_m)).sum())


class CopyBias:
    """Adds ``bonus`` (in logits) to the tokens that continue the longest run of context tokens (up to
    ``longest``) that the answer's last tokens repeat."""

    def __init__(self, context_ids: list[int], bonus: float = 3.0, longest: int = 4) -> None:
        self.context = list(context_ids)
        self.bonus, self.longest = bonus, longest

    def __call__(self, logits: torch.Tensor, produced: list[int]) -> torch.Tensor:
        for size in range(min(self.longest, len(produced)), 0, -1):
            tail = produced[-size:]
            following = {self.context[i + size] for i in range(len(self.context) - size)
                         if self.context[i:i + size] == tail}
            if following:
                logits = logits.clone()
                logits[list(following)] += self.bonus / len(following)
                return logits
        return logits
