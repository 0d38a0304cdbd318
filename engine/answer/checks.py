"""The model's own checks of an answer once it has ended: each one short forward pass, no cache kept.

- ``checker``: the probability the model gives "yes" (against "no") when asked whether a passage states the
  answer: the passage, the question and the answer, about 100-200 tokens.
- ``without_context``: each answer token's log-probability after [chat head + question] with no passages; beside
  the log-probabilities recorded while the answer was generated from the passages (engine/answer/generate.py),
  how much the answer owes to the document (a context contrast, as in context-aware decoding).
"""
from __future__ import annotations

import torch

CHECK_QUESTION = "Does this passage state that the answer to the question is correct? Answer yes or no."
PASSAGE_CHARS = 1200  # the checker reads at most this much of the cited passage


class ModelChecks:
    """The checks for one answer with a ``LoadedModel`` (engine/model/loading.py); ``head_ids`` are the chat head
    the answer's prompt opened with (engine/model/prompt.py ``PromptLayout.head_ids``) and ``q_ids`` the question
    after it, with the assistant head (``question_ids``)."""

    def __init__(self, loaded, head_ids: list[int], q_ids: list[int]) -> None:
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.head_ids, self.q_ids = list(head_ids), list(q_ids)
        self._yes_no = None

    @torch.inference_mode()
    def _logits(self, ids: list[int], keep: int) -> torch.Tensor:
        """(keep, V) float logits of the last ``keep`` positions of ``ids`` read from scratch."""
        device = next(self.model.parameters()).device
        tensor = torch.as_tensor(ids, dtype=torch.long, device=device).view(1, -1)
        return self.model(input_ids=tensor, use_cache=False, logits_to_keep=keep).logits[0].float()

    def without_context(self, answer_ids: list[int]) -> list[float]:
        """Each of ``answer_ids``' log-probability after [chat head + question] and the answer tokens before it,
        with no document at all."""
        if not answer_ids:
            return []
        logits = self._logits(self.head_ids + self.q_ids + list(answer_ids), len(answer_ids) + 1)[:-1]
        chosen = torch.as_tensor(answer_ids, device=logits.device).view(-1, 1)
        return torch.log_softmax(logits, -1).gather(1, chosen).view(-1).tolist()

    def checker(self, passage: str, question: str, answer: str) -> float:
        """P("yes") over "yes" + "no" when the model is asked whether ``passage`` states ``answer`` to
        ``question``."""
        prompt = (f"Passage: {' '.join(passage.split())[:PASSAGE_CHARS]}\n\nQuestion: {question.strip()}\n"
                  f"Answer: {' '.join(answer.split())}\n\n{CHECK_QUESTION}")
        logits = self._logits(self._chat(prompt), 1)[0]
        yes, no = self._answer_tokens()
        both = torch.log_softmax(logits, -1)
        p_yes, p_no = torch.logsumexp(both[yes], 0), torch.logsumexp(both[no], 0)
        return float(torch.sigmoid(p_yes - p_no))

    def _chat(self, prompt: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{prompt}\n\nAnswer:"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _answer_tokens(self) -> tuple[list[int], list[int]]:
        """The first tokens of "yes" and "no" as the model may write them (cased, with or without a space)."""
        if self._yes_no is None:
            first = lambda word: self.tokenizer(word, add_special_tokens=False)["input_ids"][0]  # noqa: E731
            self._yes_no = (sorted({first(w) for w in ("yes", "Yes", " yes", " Yes", "YES")}),
                            sorted({first(w) for w in ("no", "No", " no", " No", "NO")}))
        return self._yes_no
