"""Is an answer supported by the passages it cites?

An answer is supported when the words it adds to the question (its content terms: not function words,
not words of the question itself) are found in the cited passages. "The answer is:" adds nothing and is
not supported; "read.xport" for a passage about read.fwf is not found there and is not supported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .text import stem as _stem
from .text import terms

# Words an answer uses to frame itself rather than to say something about the document.
FRAMING = frozenset(
    "answer answers question document text passage according states stated say says said following "
    "function functions called named use used using one provided provides provide".split())
SUPPORT_SHARE = 0.6  # share of an answer's new terms that must be found in the cited passages


@dataclass
class Verdict:
    """``supported``: the answer's new terms are found in the passages; ``cited``: indices of the passages
    that hold them (best first, at least the first passage); ``found``/``missing``: the terms."""

    supported: bool
    cited: list[int] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def new_terms(answer: str, question: str) -> list[str]:
    """The answer's content terms that are not in the question and do not merely frame the answer."""
    asked = {_stem(t) for t in terms(question)}
    seen, result = set(), []
    for term in terms(answer):
        key = _stem(term)
        if key in asked or term in FRAMING or key in seen:
            continue
        seen.add(key)
        result.append(term)
    return result


def check(answer: str, question: str, passages: list[str]) -> Verdict:
    """Whether ``answer`` is supported by ``passages`` (ranked, best first)."""
    wanted = new_terms(answer, question)
    if not passages:
        return Verdict(False, [], [], wanted)
    passage_terms = [{_stem(t) for t in terms(text)} | set(terms(text)) for text in passages]
    everywhere = set().union(*passage_terms)
    found = [t for t in wanted if t in everywhere or _stem(t) in everywhere]
    missing = [t for t in wanted if t not in found]
    supported = bool(wanted) and len(found) >= SUPPORT_SHARE * len(wanted)
    hits = [sum(1 for t in found if t in p or _stem(t) in p) for p in passage_terms]
    cited = sorted((i for i, count in enumerate(hits) if count), key=lambda i: (-hits[i], i))
    return Verdict(supported, cited or [0], found, missing)
