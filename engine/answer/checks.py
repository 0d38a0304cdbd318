"""The model's own check of an answer once it has ended: one short forward pass, no cache kept.

``without_context``: each answer token's log-probability after [chat head + question] with no passages; beside
the log-probabilities recorded while the answer was generated from the passages (engine/answer/generate.py), how
much the answer owes to the document (a context contrast, as in context-aware decoding). The model asked as a
checker ("Does this passage state ...? yes/no") was measured too and added nothing (bench/verdict_fit.py).
"""
from __future__ import annotations

import torch

class ModelChecks:
    """The checks for one answer with a ``LoadedModel`` (engine/model/loading.py); ``head_ids`` are the chat head
    the answer's prompt opened with (engine/model/prompt.py ``PromptLayout.head_ids``) and ``q_ids`` the question
    after it, with the assistant head (``question_ids``)."""

    def __init__(self, loaded, head_ids: list[int], q_ids: list[int]) -> None:
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.head_ids, self.q_ids = list(head_ids), list(q_ids)

    @torch.inference_mode()
    def logits(self, ids: list[int], keep: int) -> torch.Tensor:
        """(keep, V) float logits of the last ``keep`` positions of ``ids`` read from scratch."""
        device = next(self.model.parameters()).device
        tensor = torch.as_tensor(ids, dtype=torch.long, device=device).view(1, -1)
        return self.model(input_ids=tensor, use_cache=False, logits_to_keep=keep).logits[0].float()

    def without_context(self, answer_ids: list[int]) -> list[float]:
        """Each of ``answer_ids``' log-probability after [chat head + question] and the answer tokens before it,
        with no document at all."""
        if not answer_ids:
            return []
        logits = self.logits(self.head_ids + self.q_ids + list(answer_ids), len(answer_ids) + 1)[:-1]
        chosen = torch.as_tensor(answer_ids, device=logits.device).view(-1, 1)
        return torch.log_softmax(logits, -1).gather(1, chosen).view(-1).tolist()
