"""Is an answer supported by the passages it cites?

An answer is supported when the words it adds to the question (its content terms: not function words,
not words of the question itself) are found in the cited passages. "The answer is:" adds nothing and is
not supported; "read.xport" for a passage about read.fwf is not found there and is not supported.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..retrieval.terms import sentences, term_keys, terms
from ..retrieval.terms import stem as _stem

# Words an answer uses to frame itself rather than to say something about the document.
FRAMING = frozenset(
    "answer answers question document text passage according states stated say says said following "
    "function functions called named use used using one provided provides provide".split())
SUPPORT_SHARE = 0.6  # share of an answer's new terms that must be found in the cited passages
QUOTE_COVERAGE = 0.5  # a quote answers when its sentence holds this share of the question's (idf-weighted) terms
RELEVANT = 0.5  # a sentence is about the question when it holds half the question's terms the best one holds
_WORD = re.compile(r"[A-Za-z0-9][\w.\-']*")
_OPENERS = ".!?:;\n\"“(*-•"  # after these a capital letter starts a sentence or an item, not a name


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


def _letters(text: str) -> str:
    """Lower-case letters and digits only: "S-Plus" matches "S-\\nPlus", "read.csv2" matches "read.csv2()"."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def invented(answer: str, passages: list[str]) -> list[str]:
    """The answer's names, numbers and code words that no passage holds: a word with a digit, a dotted or
    underscored identifier, or a capitalised word inside a sentence. A small model that misspells a name
    ("Adelairaut" for "Adelaide") or makes up a number has not found it in the document."""
    hay = _letters(" ".join(passages))
    found = []
    for match in _WORD.finditer(answer):
        word = match.group().rstrip(".-'")
        before = answer[:match.start()].rstrip()
        opens = not before or before[-1] in _OPENERS
        named = (any(c.isdigit() for c in word) or re.search(r"\w[._]\w", word) is not None
                 or (len(word) > 1 and word[0].isupper() and not opens))
        key = _letters(word)
        if named and key and key not in hay and word not in found:
            found.append(word)
    return found


def misspelt(answer: str, passages: list[str]) -> list[tuple[str, str]]:
    """(the answer's word, the passages' word) for each capitalised name of the answer that no passage holds but
    that differs by one or two letters from a longer word that one does ("Adelaidy" for "Adelaide"): a name the
    model garbled while copying it, so its answer is not what the document says."""
    names = [w for w in invented(answer, passages) if w.isalpha() and w[0].isupper() and len(w) >= 5]
    if not names:
        return []
    vocabulary = {w for w in re.findall(r"[A-Za-z]{5,}", " ".join(passages))}
    found = []
    for name in names:
        near = [w for w in vocabulary if abs(len(w) - len(name)) <= 2 and w[0].lower() == name[0].lower()
                and _distance(w.lower(), name.lower()) <= (1 if len(name) < 8 else 2)]
        if near:
            found.append((name, min(near, key=lambda w: (_distance(w.lower(), name.lower()), w))))
    return found


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (short words)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def coverage(keys: set[str], wanted: dict[str, float]) -> float:
    """The weighted share of the question's terms (stem -> weight) that a text's term keys hold."""
    total = sum(wanted.values())
    return sum(w for t, w in wanted.items() if t in keys) / total if total > 0 else 0.0


def check(answer: str, question: str, passages: list[str], weights: dict[str, float] | None = None) -> Verdict:
    """Whether ``answer`` is supported by ``passages`` (ranked, best first): its new terms must be found in a
    sentence that is about the question, i.e. one whose neighbourhood (itself and the sentences either side)
    holds at least RELEVANT of the best such share of the question's terms (``weights``: stem -> weight, e.g.
    idf; equal weights if None). A right name found in an unrelated passage ("read.xport" beside "SAS" for a
    question on fixed-width files) does not count, and a name, number or code word found in no passage at all
    (``invented``) makes the answer unsupported."""
    wanted = new_terms(answer, question)
    asked = weights or {_stem(t): 1.0 for t in terms(question)}
    units = []  # (passage, term keys of the sentence, coverage of its neighbourhood)
    for number, body in enumerate(passages):
        keys = [term_keys(body[a:b]) for a, b in sentences(body)] or [term_keys(body)]
        for index, own in enumerate(keys):
            around = own.union(*keys[max(0, index - 1):index + 2])
            units.append((number, own, coverage(around, asked)))
    best = max((unit[2] for unit in units), default=0.0)
    relevant = [unit for unit in units if unit[2] >= RELEVANT * best] if best > 0 else units
    found = [t for t in wanted if any(t in own or _stem(t) in own for _, own, _ in relevant)]
    made_up = invented(answer, passages)
    missing = [t for t in wanted if t not in found] + [w for w in made_up if w.lower() not in wanted]
    supported = bool(wanted) and len(found) >= SUPPORT_SHARE * len(wanted) and not made_up
    hits: dict[int, int] = {}
    for number, own, _ in relevant:
        count = sum(1 for t in found if t in own or _stem(t) in own)
        hits[number] = max(hits.get(number, 0), count)
    cited = sorted((n for n, count in hits.items() if count), key=lambda n: (-hits[n], n))
    return Verdict(supported, cited or [0], found, missing)
