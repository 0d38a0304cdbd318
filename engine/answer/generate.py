"""Generating an answer: the question's prefill over a prepared cache, then greedy decoding, streamed as it goes.

What the user sees while it streams is filtered (engine/answer/postprocess.py ``StreamFilter``): never a repeated
sentence or an empty frame, even for a moment.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..attention import compaction
from ..errors import QuestionError
from ..model import generation
from ..model.prompt import stop_texts
from . import postprocess

QUESTION_STEP = 64  # tokens of a long question read per step (its progress)


@dataclass
class Generated:
    """The model's raw text, why it ended, and its timings (first token counted from when the question was asked,
    reading included); ``ids`` are the generated tokens and ``logprobs`` each one's log-probability given the
    context it was generated from (what the verdict's context contrast compares with no context)."""

    text: str
    finish: str  # "complete", "length" or "stopped"
    looped: bool
    tokens: int
    timings: dict = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


def generate(loaded, stop_ids: set[int], cache, q_ids: list[int], run, limit: int, on_text=None, should_stop=None,
             started: float | None = None, progress=None, question: str = "") -> Generated:
    """Question prefill (progress stage "Reading the question") + greedy decode of at most ``limit`` tokens into
    ``cache``, with ``run`` (an AttentionRun or None) on every pass; pieces of text go to ``on_text`` as they are
    decided (never an echo of ``question``)."""
    if limit < 1:
        raise QuestionError(f"The question is too long ({len(q_ids)} tokens) for the space left in the model's "
                            "window.", "Ask a shorter question.")
    started = started if started is not None else time.perf_counter()
    model = loaded.model
    stream = generation.TextStream(loaded.tokenizer, stop_texts(loaded.tokenizer))
    shown = postprocess.StreamFilter(question)
    finish = generation.Finish()
    first_token_s = decode_started = None
    logprobs: list[float] = []

    def record(logits, produced):  # greedy: the chosen token's log-probability is the largest one
        logprobs.append(float(torch.log_softmax(logits.float(), -1).max()))
        return logits

    report = (lambda done, total: progress("Reading the question", done, total)) if progress else None
    if report:
        report(0, len(q_ids))
    # A long question over passages is read in steps, so its progress moves (the same attention: each step sees
    # all before it); a short one, and any other run (DGA selects from the last step), in one pass.
    steps = len(q_ids) > 2 * QUESTION_STEP and isinstance(run, compaction.PassageRun)
    logits = generation.prefill(model, q_ids, cache, run=run, phase="question", should_stop=should_stop,
                                progress=report, chunk_size=QUESTION_STEP if steps else generation.PREFILL_CHUNK)
    for token in generation.decode(model, cache, logits, limit, stop_ids, run=run, should_stop=should_stop,
                                   adjust=record, finish=finish):
        if first_token_s is None:
            first_token_s = time.perf_counter() - started
            decode_started = time.perf_counter()
        piece = shown.feed(stream.push(token))
        if piece and on_text:
            on_text(piece)
        if stream.stopped:  # a base model's answer ended (engine/model/prompt.py stop_texts)
            finish.reason = "complete"
            break
    if finish.reason != "stopped" and should_stop and should_stop():
        finish.reason = "stopped"  # asked to stop as the answer ended (or before it began)
    rest = shown.feed(stream.flush()) + shown.flush()
    if rest and on_text and finish.reason != "stopped":
        on_text(rest)
    now = time.perf_counter()
    decode_s = now - decode_started if decode_started else 0.0
    timings = {"first_token_s": round(first_token_s if first_token_s is not None else now - started, 3),
               "decode_tokens_per_s": round((len(stream.ids) - 1) / decode_s, 2)
               if len(stream.ids) > 1 and decode_s > 0 else None,
               "generated_tokens": len(stream.ids)}
    return Generated(stream.text.strip(), finish.reason, finish.looped, len(stream.ids), timings, list(stream.ids),
                     logprobs[:len(stream.ids)])
