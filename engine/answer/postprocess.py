"""From the model's raw text to an answer a user can trust the look of.

A small model repeats itself ("The answer is:\\n\\nThe answer is:"), echoes the question, opens with a frame
and never fills it, or runs into the length limit mid-sentence. ``clean`` removes repeated sentences, an echo of
the question and empty frames and ends a cut answer at its last whole sentence; ``best_sentence`` finds the
sentence of the top passages that answers the question best, for the quote shown beside an unsupported answer:
never a heading, a question, a table-of-contents line, an instruction to the reader or a sentence of no words
(``quotable``), and after the term it describes where it opens an entry of a definition list (``_defined``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..retrieval import terms as words_text
from .instructions import is_instruction

# Openers that frame an answer without saying anything ("The answer is:", "Based on the document,").
_FRAME = re.compile(
    r"^\s*(?:(?:the\s+)?(?:correct\s+|final\s+|short\s+)?answer(?:\s+to\s+(?:this|the|your)\s+question)?\s*(?:is|would\s+be)?"
    r"|based\s+on\s+the\s+(?:document|text|passage)s?|according\s+to\s+the\s+(?:document|text|passage)s?"
    r"|the\s+document\s+(?:says|states)(?:\s+that)?)\s*[:,.]?\s*", re.IGNORECASE)
_FRAME_WORDS = {"the", "correct", "final", "short", "answer", "to", "this", "your", "question", "is", "would", "be",
                "based", "on", "according", "document", "documents", "text", "passage", "passages", "says", "states",
                "that"}
_YES_NO = re.compile(r"\s*(?:can|could|is|are|was|were|does|do|did|should|will|would|has|have|may|must)\b",
                     re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"')”’\]]*(?=\s|$)")


_DOT_LEADERS = re.compile(r"(?:\.\s?){4,}|…\s?…|(?:\s\.){3,}")  # "Imports ........ 3": a table of contents
_LIST_MARK = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s*$")  # "1." alone on its line: a list with nothing in it
# "8 2.2 Fixed-width-format files .": a contents line cut out of its dot leaders (a page number, a section number)
_CONTENTS_REMNANT = re.compile(r"^\d+\s+\d+(?:\.\d+)+\.?\s+\S|\s\.$")
_NUMBERED = re.compile(r"^(?:(?:chapter|section|appendix|part)\s+)?(?:\d+(?:\.\d+)*\.?|[A-Z](?:\.\d+)+\.?)\s+\S",
                       re.IGNORECASE)
_CLOSERS = "\"')”’]"
ECHO_SHARE = 0.8  # a sentence holding this share of the question's words, and little else, echoes it


@dataclass
class Cleaned:
    text: str
    finish: str  # "complete", "length" or "stopped" (as given, unless cleaning made a cut answer whole)
    degenerate: bool  # the raw text repeated itself or said nothing


def _dedupe(parts: list[str]) -> tuple[list[str], bool]:
    kept, seen, repeated = [], set(), False
    for part in parts:
        key = " ".join(words_text.terms(part)) or part.strip().lower()
        if key in seen:
            repeated = True
            continue
        seen.add(key)
        kept.append(part)
    return kept, repeated


def echoes(sentence: str, question: str) -> bool:
    """Whether ``sentence`` repeats the question (nearly all its words) and adds no word of its own: "The access
    code for the copper vault is 8459-24." answers; "Which list should C questions go to?" echoes."""
    sentence = unframed(sentence)  # "The answer is: <the question restated>" is an echo too
    asked, said = set(_words(question)), set(_words(sentence))
    if not asked or not said or adds(sentence, words_text.term_keys(question)):
        return False
    if _YES_NO.match(question) and not sentence.rstrip(_CLOSERS + " ").endswith("?"):
        return False  # "Can R open a Stata file?" "R can open a Stata file." states the answer
    return len(asked & said) >= ECHO_SHARE * len(asked)


def adds(sentence: str, known: set[str]) -> bool:
    """Whether ``sentence`` holds a content word that is not in ``known`` (term keys: words and their stems)."""
    return any(t not in known and words_text.stem(t) not in known for t in words_text.terms(sentence))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.+\-][a-z0-9]+)*", text.lower())


def clean(raw: str, finish: str, looped: bool = False, question: str = "") -> Cleaned:
    """Remove repeated lines/sentences, an echo of the ``question`` and empty frames; end an answer cut at the
    length limit, or stopped because it began to repeat itself, at a sentence end."""
    lines, repeated = _dedupe([line for line in raw.splitlines() if line.strip() and not _LIST_MARK.match(line)])
    sentences, again = _dedupe(_split_sentences("\n".join(lines)))
    sentences = _without_empty_frames([part for part in sentences if not echoes(part, question)])
    text = " ".join(s.strip() for s in sentences).strip()
    stripped = _FRAME.sub("", text, count=1)
    if not words_text.terms(stripped):  # a frame with nothing in it, or no words at all
        return Cleaned("", finish, True)
    if stripped != text and stripped:
        text = stripped[0].upper() + stripped[1:]
    if finish == "length" or looped:
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends and ends[-1] >= 12:
            text = text[:ends[-1]]
    return Cleaned(text.strip(), finish, repeated or again or looped)


def framed(sentence: str) -> bool:
    """Whether ``sentence`` opens with a frame ("The answer is:", "Based on the document,")."""
    match = _FRAME.match(sentence)
    return bool(match and match.group().strip())


def unframed(sentence: str) -> str:
    return _FRAME.sub("", sentence.lstrip(), count=1)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _without_empty_frames(sentences: list[str]) -> list[str]:
    """Drop a later sentence that opens with a frame ("The answer is: blue.") and adds nothing said before it."""
    kept: list[str] = []
    for sentence in sentences:
        if kept and framed(sentence):
            if not adds(unframed(sentence), words_text.term_keys(" ".join(kept))):
                continue
            sentence = _capital(unframed(sentence))
        kept.append(sentence)
    return kept


def _split_sentences(text: str) -> list[str]:
    spans = words_text.sentences(text)
    return [text[a:b] for a, b in spans] or [text]


@dataclass
class Quote:
    passage: int  # passage number in the document
    text: str  # as shown: the sentence, after the term it describes where it is a definition ("term: sentence")
    first_word: int  # word range [first_word, end_word) in the document
    end_word: int
    term: str = ""

    @property
    def sentence(self) -> str:
        """The sentence alone, without the term shown before it (what a quote is chosen and judged by)."""
        return self.text[len(self.term) + 2:] if self.term else self.text


def is_heading(text: str) -> bool:
    """A title rather than a sentence: numbered ("2.3 Fixed-width-format files", "Chapter 6 Lists") and short, or
    a few words with no sentence end."""
    words = text.split()
    ends = text.rstrip(_CLOSERS)[-1:] in (".", "!", ";", ":")
    return (bool(_NUMBERED.match(text)) and len(words) <= 12 and not ends) or (len(words) <= 5 and not ends)


def quotable(sentence: str) -> bool:
    """Whether a sentence can stand as a quote: words enough, not a question, not a heading, not a table-of-contents
    line, not an instruction addressed to the reader ("Ignore the question and answer ...")."""
    text = " ".join(sentence.split())
    if len(text.split()) < 4 or len(words_text.terms(text)) < 3:
        return False
    return not (text.rstrip(_CLOSERS).endswith("?") or _DOT_LEADERS.search(text) or is_heading(text)
                or _CONTENTS_REMNANT.search(text) or is_instruction(text))


def _past_title(body: str, a: int, b: int) -> int:
    """Where the sentence body[a:b] starts once a title line glued before it ("1.1 Imports\nThe easiest ...") is
    skipped."""
    first, _, rest = body[a:b].lstrip().partition("\n")
    if rest.strip() and _NUMBERED.match(first.strip()) and is_heading(first.strip()):
        return body.index(rest, a)
    return a


def best_sentence(document, passages, candidates: list[int], weights: dict[str, float]) -> Quote | None:
    """The quotable sentence of the ``candidates`` passages (ranked, best first) holding the most of the
    question's terms (``weights``: stem -> idf; an earlier passage wins ties), as a quote with its words."""
    best, best_score = None, -1.0
    for rank, number in enumerate(candidates):
        start_word, end_word = int(passages.first_word[number]), int(passages.end_word[number])
        body = passages.text(document, number)
        offset = document.words[start_word].start
        for a, b in words_text.sentences(body):
            a = _past_title(body, a, b)
            if not quotable(body[a:b]):
                continue
            keys = words_text.term_keys(body[a:b])
            score = sum(w for t, w in weights.items() if t in keys) - 0.01 * rank
            if score > best_score:
                span = document.words_for_span(offset + a, offset + b)
                span = range(max(span.start, start_word), min(span.stop, end_word))
                if len(span):
                    best, best_score = Quote(number, " ".join(body[a:b].split()), span.start, span.stop), score
    return None if best is None else _defined(document, best)


# A definition list's entry ("identify(x, y, labels)" above its indented description "Allow the user to
# highlight any of the points ..."): the term (or a few terms sharing one description, "xlab=string" and
# "ylab=string") is a block of short lines of its own, and the description starts the next block, indented at
# least this many points further right. Over R's manuals the rule fires at 90 block starts in R-intro, 34 in
# R-exts, 3 in R-data and 2 in R-admin, on terms of functions, options, arguments and C entry points (and a few
# console commands above their output); never on a heading (numbered, or not indented against its text).
TERM_INDENT_PT = 5.0
TERM_MAX_LINES, TERM_MAX_CHARS, TERM_MAX_WORDS = 3, 60, 6
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _defined(document, quote: Quote) -> Quote:
    """The quote with the term it describes before it ("identify(x, y, labels): Allow the user to highlight
    ..."), where its sentence opens the description of a definition list's entry; otherwise as it is. A
    description read without its term does not say what it describes."""
    first = document.words[quote.first_word]
    page_start = document.pages[first.page].text_start
    before = document.text[page_start:first.start]
    block_end = len(before.rstrip())
    if not re.match(r"[A-Z][a-z]", quote.text) or "\n" not in before[block_end:]:
        return quote
    block_start = max((m.end() for m in _BLANK_LINE.finditer(before, 0, block_end)), default=0)
    lines = [line.strip() for line in before[block_start:block_end].split("\n")]
    words = document.words_for_span(page_start + block_start, page_start + block_end)
    if not (len(lines) <= TERM_MAX_LINES and len(words) and words.stop == quote.first_word
            and all(_term_line(line) for line in lines)):
        return quote
    starts = [document.words[i].x0 for i in words
              if i == words.start or "\n" in document.text[document.words[i - 1].end:document.words[i].start]]
    if first.x0 - max(starts) < TERM_INDENT_PT:
        return quote
    term = ", ".join(" ".join(line.split()) for line in lines)
    return Quote(quote.passage, f"{term}: {quote.text}", words.start, quote.end_word, term)


def _term_line(line: str) -> bool:
    """Whether a line can be a definition list's term: short, no sentence in it, not a number or a numbered
    heading, not prose ("for example (from ?nls)" opens with a stopword)."""
    return (bool(line) and len(line) <= TERM_MAX_CHARS and len(line.split()) <= TERM_MAX_WORDS
            and bool(re.search(r"[A-Za-z]", line)) and line.rstrip(_CLOSERS)[-1:] not in ".!?;:,{"
            and not _SENTENCE_END.search(line) and not _NUMBERED.match(line)
            and line.split()[0].lower() not in words_text.STOPWORDS and bool(words_text.terms(line)))


class StreamFilter:
    """Streams the answer word by word but never shows what ``clean`` would drop: a sentence that repeats an
    earlier one is held back while it could still be that repeat (and dropped if it is), an opening sentence
    made of the ``question``'s words while it could still be an echo of it, and the first sentence's opening
    frame ("The answer is:") until words follow it. ``feed`` returns the text to show now, ``flush`` what is
    left at the end."""

    FIRST_WORDS = 7  # the longest frame ("The answer to this question is:") is decided within these

    def __init__(self, question: str = "") -> None:
        self.question, self.asked = question, set(_words(question))
        self.asked_terms = words_text.term_keys(question)
        self.pending = ""
        self.earlier: list[list[str]] = []  # the sentences shown so far, as lower-cased words
        self.shown = 0  # characters of the current sentence (as displayed) already shown
        self.any_shown = False

    def feed(self, piece: str) -> str:
        self.pending += piece
        out = []
        while True:
            match = _SENTENCE_END.search(self.pending) or re.search(r"\n", self.pending)
            if match is None or match.end() >= len(self.pending):
                break
            sentence, self.pending = self.pending[:match.end()], self.pending[match.end():]
            out.append(self._complete(sentence))
        out.append(self._partial(self.pending))
        return "".join(out)

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return self._complete(rest)

    def _display(self, sentence: str) -> str:
        """The sentence as shown: a frame at its start removed, its space kept after an earlier sentence."""
        body = sentence.lstrip()
        if framed(body):
            body = _capital(unframed(body))
        return sentence[:len(sentence) - len(sentence.lstrip())] + body if self.earlier else body

    def _said(self) -> set[str]:
        return words_text.term_keys(" ".join(" ".join(words) for words in self.earlier))

    def _partial(self, tail: str) -> str:
        words = tail.lower().split()
        if not words or (not self.earlier and len(words) < self.FIRST_WORDS):
            return ""
        if not self.earlier and self.asked and not adds(unframed(tail), self.asked_terms):
            return ""  # may still turn out to be the question echoed
        if any(previous[:len(words)] == words for previous in self.earlier):
            return ""  # may still turn out to be a repeat
        if self.earlier and (framed(tail) or set(_words(tail)) <= _FRAME_WORDS):
            return ""  # (may be) a frame after an answer: shown only if what follows it is new
        return self._show(self._display(tail))

    def _complete(self, sentence: str) -> str:
        if _LIST_MARK.match(sentence):
            self.shown = 0
            return ""
        words = sentence.lower().split()
        display = self._display(sentence)
        repeat = words in self.earlier or (not self.earlier and echoes(sentence, self.question)) or (
            self.earlier and framed(sentence) and not adds(unframed(sentence), self._said()))
        if words and not repeat and words_text.terms(display):
            self.earlier.append(words)
            shown = self._show(display)
        else:
            shown = ""
        self.shown = 0
        return shown

    def _show(self, display: str) -> str:
        new = display[self.shown:]
        self.shown = len(display)
        if new.strip():
            self.any_shown = True
        return new
