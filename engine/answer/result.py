"""What an answer is: the text, the passages it rests on, its support verdict and its highlights.

One story: the evidence list, the citations, the highlights and the answer's context all come from
one ranking of passages (engine/answer/evidence.py), so they never disagree with each other.

Pages are 1-based everywhere in this module (as a user counts them); boxes are
``[x0, y0, x1, y1]`` in PDF points on that page.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# Why generation ended: the model finished ("complete"), the answer hit the length limit ("length", the
# text then ends at the last whole sentence), or the user stopped it ("stopped").
FINISHES = ("complete", "length", "stopped")


@dataclass
class Evidence:
    """A passage ranked relevant to the question, best first in ``Answer.evidence``.

    ``text`` is the passage's full text; ``score`` its relevance relative to the best passage (best = 1.0);
    ``boxes`` the boxes of its words; ``words`` the [first, last) word indices in the document.
    ``document`` names the document it comes from ({"sha256", "path", "title"}), for answers across a library.
    """

    page: int
    text: str
    score: float
    boxes: list[list[float]] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    document: dict | None = None


@dataclass
class Citation:
    """A page (and passage) the answer rests on; ``evidence`` is the passage's index in ``Answer.evidence``."""

    page: int
    text: str
    evidence: int = 0
    boxes: list[list[float]] = field(default_factory=list)
    document: dict | None = None


@dataclass
class Highlight:
    """One highlighted word: 1-based page, box in PDF points, weight in (0, 1] (1 = what mattered most)."""

    page: int
    box: list[float]
    weight: float
    document: str | None = None  # sha256, for answers across a library


@dataclass
class Quote:
    """The document's own sentence shown beside an answer that is not supported: ``answers`` when it holds most of
    the question's terms (what the document says to the question), else it is the closest passage found."""

    page: int
    text: str
    answers: bool
    boxes: list[list[float]] = field(default_factory=list)
    document: dict | None = None


@dataclass
class Verdict:
    """Whether the answer rests on the passages it read (engine/answer/verdict.py): ``score`` in [0, 1] from the
    ``signals`` (name -> value), supported when at least ``threshold``; ``reason`` says why not, in plain words
    ("" when supported)."""

    supported: bool
    score: float
    threshold: float
    signals: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass
class Answer:
    """An answer and everything that tells its story.

    ``answer`` is the model's answer as the user saw it stream, cleaned (``generated`` keeps the raw text); it is
    never replaced. ``supported`` and ``verdict`` say whether it rests on the passages it read; when it does not,
    ``quote`` is the document's own sentence shown beside it (what the document says, or the closest passage).
    ``citations`` are the passages the answer rests on, best first, one per page (the first is where the view
    scrolls; for an unsupported answer, the quote's passage); ``highlights`` the words the answer relied on.
    ``attention`` says what the answer read and how (``context``, ``attention``, ``ranking``: the signals that
    chose the passages); ``notices`` are plain sentences for the user (how the document was read, a stored
    reading set aside, ...).
    """

    question: str
    answer: str
    document: dict
    model: dict
    attention: dict
    timings: dict
    evidence: list[Evidence]
    cache_hit: bool
    stopped: bool = False
    notices: list[str] = field(default_factory=list)  # for the user, each said once: how the document was read, ...
    token_scores: np.ndarray | None = None  # (L,) relevance per document token (kept for history and tools)
    citations: list[Citation] = field(default_factory=list)
    supported: bool = True
    highlights: list[Highlight] = field(default_factory=list)
    finish: str = "complete"
    generated: str = ""  # the model's own text, before clean-up
    verdict: Verdict | None = None
    quote: Quote | None = None

    @property
    def notice(self) -> str | None:
        """The notices as one paragraph (None when there are none), for whoever shows them together."""
        return " ".join(self.notices) or None

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("token_scores")
        return data
