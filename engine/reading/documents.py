"""An opened document (``DocumentHandle``) and the model's reading of it (``DocumentState``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..ingest.extract import IngestedDocument
from ..model.prompt import PromptLayout
from ..retrieval.passages import Passages
from .segments import Reading, Segmenting


@dataclass
class DocumentHandle:
    """An opened document: ingest result, prompt layout, passages, and how the model may read it.

    ``segmenting`` is how its segments are cut (None when the model's positions cannot be moved: the document is
    then read whole, up to what fits); ``bounds`` are its segments; ``budget`` the document tokens that fit the
    window with room for a question and an answer; ``used_tokens`` what may be read (fewer than the whole when
    the document is truncated).
    """

    ingested: IngestedDocument
    layout: PromptLayout
    token_word: np.ndarray  # (L,) word index per document token, -1 for none
    passages: Passages
    used_tokens: int
    window: int
    budget: int
    segmenting: Segmenting | None = None
    bounds: list[tuple[int, int]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return self.ingested.sha256

    @property
    def total_tokens(self) -> int:
        return len(self.layout.doc_ids)

    @property
    def truncated(self) -> bool:
        return self.used_tokens < self.total_tokens

    @property
    def pages_used(self) -> int:
        """1-based number of the last page (partly) given to the model."""
        if not self.truncated:
            return len(self.ingested.pages)
        last_char = int(self.layout.doc_offsets[self.used_tokens - 1, 1])
        return self.ingested.page_of_char(last_char) + 1

    @property
    def fits(self) -> bool:
        """Whether the whole document fits the model's window (with room for a question and an answer)."""
        return self.total_tokens <= self.budget

    @property
    def method(self) -> str:
        """How the document is read: "select" (the segments each question needs), "whole" (at once: the model's
        positions cannot be moved and it fits) or "truncate" (the part that fits)."""
        if self.truncated:
            return "truncate"
        return "select" if self.segmenting is not None else "whole"

    @property
    def segments(self) -> int:
        return len(self.bounds)

    def state_id(self, kind: str) -> str:
        """What names one of its readings in memory: ``kind`` "segments" or "whole" (of ``used_tokens``)."""
        return f"{self.sha256}:{kind}:{self.used_tokens}"

    def prefix_ids(self) -> list[int]:
        return self.layout.head_ids + self.layout.doc_ids[: self.used_tokens].tolist()

    def notice(self) -> str | None:
        """Plain sentences for the user: how the document was read (OCR, repair), and what happens when it
        does not fit the model's window."""
        return " ".join(filter(None, [self.ingested.notice(), self._window_notice()])) or None

    def _window_notice(self) -> str | None:
        pages = len(self.ingested.pages)
        if not self.truncated:
            return None if self.fits else (
                f"This document ({pages} pages) is longer than the model can read at once. DocFocus reads the "
                f"parts each question needs and answers from the passages that match it best.")
        return (f"This document ({pages} pages) is longer than the model can read at once; answers use pages "
                f"1-{self.pages_used} only.")

    def info(self) -> dict:
        return {"sha256": self.sha256, "pages": len(self.ingested.pages), "tokens": self.total_tokens,
                "tokens_used": self.used_tokens, "pages_used": self.pages_used, "title": self.ingested.title,
                "path": self.ingested.path, "window": self.window, "method": self.method,
                "segments": self.segments,
                **{key: value for key, value in self.ingested.report.to_dict().items() if key != "pages"}}

    def ref(self) -> dict:
        """What names the document in evidence and citations."""
        return {"sha256": self.sha256, "path": self.ingested.path, "title": self.ingested.title}


@dataclass
class DocumentState:
    """The model's reading of a document prefix: the dense cache of [head + document] when it fits the window
    (cropped back after every answer), and the ``Reading`` (per-layer keys/values and positions) in every case
    (a view into the cache when there is one)."""

    sha256: str
    cache: object | None
    reading: Reading
    prefix_len: int
    last_logits: torch.Tensor
    source: str = "prefill"  # how the latest read() got it: "prefill", "disk" (state cache) or "memory"
    restore_s: float = 0.0  # seconds spent restoring it from the state cache
    store_s: float = 0.0  # seconds spent saving it to the state cache
    cache_notice: str | None = None  # a cache problem to tell the user once (with the next answer)
