"""Words as the relevance pipeline sees them: content terms, function words, stems, sentences.

One definition for the passage ranking (a question's words in a passage), the support verdict (an answer's
words in its citations) and the highlights (which words can carry evidence).
"""
from __future__ import annotations

import re

# Function words soak up attention everywhere (attention sinks) and match every passage, so they seed no
# passage, get no highlight and count for no match.
STOPWORDS = frozenset(
    "a an the of to in on at by for and or but nor is are was were be been being it its this that these those "
    "with as from has have had do does did not no so if then than there their they them he she his her we our "
    "you your i me my which who whom what when where how why can could would should will shall may might must "
    "into about over under between any all each other such some also only very more most".split())
_TERM = re.compile(r"\w[\w.\-+/]*\w|\w", re.UNICODE)
_JOINS = re.compile(r"[-./+_]")  # what joins the parts of a compound ("fixed-width", "read.csv", "seq_len")
_PUNCTUATION = ".,;:!?()[]{}\"'`“”‘’-"
# a sentence ends after . ! or ? (not after a name's initial, "David M. Smith", or "e.g." / "i.e."), at a blank
# line, or before a list item
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<![\s(][A-Z]\.)(?<!e\.g\.)(?<!i\.e\.)[\"'”’)]*\s+|\n\s*\n|\n(?=\s*[-•*]\s)")


def terms(text: str) -> list[str]:
    """Lower-cased content terms of ``text`` ("read.fwf", "5831-22", "ripley"), in order."""
    found = []
    for raw in _TERM.findall(text or ""):
        word = raw.lower().strip(".-")
        if word and word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            found.append(word)
    return found


def stem(word: str) -> str:
    """A crude plural/verb stem so that "reads" matches "read", "files" "file" and "ferries" "ferry"."""
    if not word.isalpha() or len(word) < 4:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def parts(term: str) -> list[str]:
    """The content parts of a compound term: "fixed-width-format" -> fixed, width, format; "read.csv" -> read,
    csv; a plain word has none. A person writes "fixed width format", the manual "fixed-width-format"."""
    pieces = [piece for piece in _JOINS.split(term) if len(piece) > 1 and piece not in STOPWORDS]
    return pieces if len(pieces) > 1 else []


def term_keys(text: str) -> set[str]:
    """The terms of ``text``, the parts of its compounds, and their stems: what one text's words are matched
    against another's by."""
    found = terms(text)
    found += [piece for term in found for piece in parts(term)]
    return set(found) | {stem(t) for t in found}


def is_content_word(text: str) -> bool:
    """False for function words and bare punctuation, which carry no evidence on their own."""
    core = text.strip(_PUNCTUATION).lower()
    return bool(core) and core not in STOPWORDS


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of ``text`` (also cut at blank lines and list items)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start:match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans
