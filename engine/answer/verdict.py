"""Is the answer supported by the passages it read? One verdict from several signals, calibrated on benchmark sets.

The signals (engine/answer/checks.py runs the model's; bench/verdict_fit.py measures each alone and combined):

- ``words``: the share of the answer's key words (the terms it adds to the question, and its names, numbers and
  code) found in context sentences about the question (engine/answer/support.py);
- ``agreement``: the share of the answer's terms found in the document's best sentence for the question, the one
  an extractive answer would quote;
- ``anchor``: how well the sentence the answer comes from answers the question: the largest share of the
  question's (idf-weighted) terms around a sentence that holds one of the answer's terms. A name copied from a
  passage about something else is found there, but not next to what was asked;
- ``invented``: 1 when the answer holds a name, number or code word no passage holds;
- ``top``: the share of the answer's new terms that the best passage holds;
- ``contrast``: the answer's mean log-probability per token with the passages minus without them (a model pass).

Measured alone and combined (bench/verdict_fit.py), ``anchor`` alone separated right from wrong best on the current
pipeline, so it alone decides (``WEIGHTS``); the others are reported with every verdict.

Instructions written in the document are not evidence (engine/answer/instructions.py): they are left out of
what the words are checked against, and an answer that follows one is not supported whatever its score.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..retrieval.terms import sentences, term_keys
from ..retrieval.terms import stem as _stem
from . import instructions, postprocess, support
from .result import Verdict

SIGNALS = ("words", "agreement", "anchor", "invented", "top")  # what every verdict reports (no model pass)
MODEL_SIGNALS = ("contrast",)  # measured by the benchmark (bench/verdict_fit.py); computed here only when weighed


@dataclass
class Claim:
    """What the verdict judges: the cleaned answer to ``question``, the ``passages`` it read (best first), the
    question's term weights (stem -> idf) and the generated tokens with their log-probabilities."""

    question: str
    answer: str
    passages: list[str]
    weights: dict[str, float] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    @cached_property
    def statements(self) -> list[str]:
        """The passages without the instructions written in them: what the answer is checked against."""
        return [instructions.without_instructions(p) for p in self.passages]


def word_check(claim: Claim) -> support.Verdict:
    """support.check against the passages without their instructions."""
    return support.check(claim.answer, claim.question,
                         claim.statements, claim.weights)


def words_share(check: support.Verdict) -> float:
    """The share of the answer's key words found (invented names and numbers count as not found)."""
    total = len(check.found) + len(check.missing)
    return len(check.found) / total if total else 0.0


def best_sentence(question: str, passages: list[str], weights: dict[str, float]) -> str:
    """The quotable sentence of the passages holding the most of the question's weighted terms (an earlier
    passage wins ties), or ""."""
    wanted = weights or {_stem(t): 1.0 for t in term_keys(question)}
    best, best_value = "", 0.0
    for rank, body in enumerate(passages):
        for a, b in sentences(body):
            if postprocess.quotable(body[a:b]):
                value = support.coverage(term_keys(body[a:b]), wanted) - 0.001 * rank
                if value > best_value:
                    best, best_value = " ".join(body[a:b].split()), value
    return best


def agreement(claim: Claim) -> float:
    """The share of the answer's new terms that the best extractive sentence holds."""
    said = support.new_terms(claim.answer, claim.question)
    if not said:
        return 0.0
    keys = term_keys(best_sentence(claim.question, claim.passages, claim.weights))
    return sum(1 for t in said if t in keys or _stem(t) in keys) / len(said)


def anchor(claim: Claim) -> float:
    """The best question coverage (weighted) of a sentence and its neighbours that hold one of the answer's new
    terms, over the passages without their instructions."""
    said = support.new_terms(claim.answer, claim.question)
    wanted = claim.weights or {_stem(t): 1.0 for t in term_keys(claim.question)}
    best = 0.0
    for body in claim.statements:
        keys = [term_keys(body[a:b]) for a, b in sentences(body)] or [term_keys(body)]
        for index, own in enumerate(keys):
            if any(t in own or _stem(t) in own for t in said):
                best = max(best, support.coverage(own.union(*keys[max(0, index - 1):index + 2]), wanted))
    return best


def invented(claim: Claim) -> float:
    """1 when the answer holds a name, number or code word that no passage holds (a misspelt or made-up one)."""
    return float(bool(support.invented(claim.answer, claim.statements)))


def top(claim: Claim) -> float:
    """The share of the answer's new terms that the best passage (the ranking's first) holds."""
    said = support.new_terms(claim.answer, claim.question)
    if not said or not claim.passages:
        return 0.0
    keys = term_keys(claim.statements[0])
    return sum(1 for t in said if t in keys or _stem(t) in keys) / len(said)


def contrast(with_passages: list[float], without: list[float]) -> float:
    """Mean gain in log-probability per answer token that the passages give."""
    count = min(len(with_passages), len(without))
    return float(np.mean(np.subtract(with_passages[:count], without[:count]))) if count else 0.0


def signals(claim: Claim, checks=None, check: support.Verdict | None = None) -> dict[str, float]:
    """Every signal of ``claim`` (``SIGNALS``) and, given ``checks`` (a ModelChecks), the model's
    (``MODEL_SIGNALS``: a forward pass over the answer without the passages)."""
    check = check or word_check(claim)
    found = {"words": words_share(check), "agreement": agreement(claim), "anchor": anchor(claim),
             "invented": invented(claim), "top": top(claim)}
    if checks is not None and claim.answer:
        found["contrast"] = contrast(claim.logprobs, checks.without_context(claim.ids))
    return {name: round(float(value), 4) for name, value in found.items()}


def features(found: list[dict[str, float]], names: tuple[str, ...] = SIGNALS) -> np.ndarray:
    """(N, len(names)) the signals as the combination sees them: the contrast clipped to [-4, 8] nats."""
    def one(name: str, value: float) -> float:
        return min(max(value, -4.0), 8.0) if name == "contrast" else value
    return np.array([[one(n, f.get(n, 0.0)) for n in names] for f in found], dtype=float).reshape(len(found),
                                                                                                   len(names))


# The combination, fitted by bench/verdict_fit.py on the development sets (docs/benchmarks.md, "The verdict"),
# 2026-12-07 on the pipeline with the model's check of the shortlist: 79 answers of 7 sets. Over the development
# sets' 18 wrong answers, anchor alone marks 0.78 unsupported and keeps 0.92 of the right ones supported (0.78 /
# 0.86 with each set's threshold chosen without it); no combination of the others did better (anchor + agreement
# 0.72 / 0.92; the earlier anchor + words + agreement + contrast 0.72 / 0.92, and its weights as fitted before,
# 0.78 / 0.81). One signal also spares the answer the model's pass that the contrast needed.
WEIGHTS = {"anchor": 4.868}
BIAS = -2.604
THRESHOLD = 0.615  # at the right answer with anchor 0.632, the lowest of the 92% kept


def score(found: dict[str, float]) -> float:
    """P(supported) from the signals (the logistic combination)."""
    names = tuple(WEIGHTS)
    x = features([found], names)[0]
    return 1 / (1 + math.exp(-(float(np.dot(x, [WEIGHTS[n] for n in names])) + BIAS)))


def judge(claim: Claim, checks=None) -> tuple[Verdict, support.Verdict]:
    """The verdict on ``claim`` and the word check it rests on (its ``cited`` passages). Without ``checks`` (an
    answer the user stopped) the words alone decide."""
    check = word_check(claim)
    weighed = checks if any(name in WEIGHTS for name in MODEL_SIGNALS) else None
    found = signals(claim, weighed, check)
    if not claim.answer:
        return Verdict(False, 0.0, THRESHOLD, found, "The model gave no answer."), check
    if checks is None:
        return Verdict(check.supported, found["words"], support.SUPPORT_SHARE, found,
                       "" if check.supported else _reason(claim, found)), check
    value = score(found)
    refused = refusal(claim)
    if refused:
        return Verdict(False, round(value, 4), THRESHOLD, found, refused), check
    supported = value >= THRESHOLD
    return Verdict(supported, round(value, 4), THRESHOLD, found, "" if supported else _reason(claim, found)), check


def refusal(claim: Claim) -> str:
    """Why ``claim`` is not supported whatever its score ("" when nothing rules it out): it follows an instruction
    written in the document, or it garbles a name it copied."""
    if instructions.follows(support.new_terms(claim.answer, claim.question), claim.passages):
        return "The answer repeats an instruction written in the document, not something the document states."
    garbled = support.misspelt(claim.answer, claim.statements)
    if garbled:
        said, meant = garbled[0]
        return f"It misspells {meant} as {said}: the passages it read say otherwise."
    return ""


def _reason(claim: Claim, found: dict[str, float]) -> str:
    """Why an answer is not supported, in plain words: the names, numbers or code it has that the passages lack,
    or how little of it they hold."""
    made_up = support.invented(claim.answer, claim.statements)[:3]
    if made_up:
        return f"The passages it read do not contain {', '.join(made_up)}."
    if found.get("words", 0.0) < support.SUPPORT_SHARE:
        return "Most of its words are not in the passages it read."
    if found.get("anchor", 1.0) < 0.5:
        return "The sentences its words come from are not about what was asked."
    return "The passages it read do not state it."
