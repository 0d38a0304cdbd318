"""An opened document (``DocumentHandle``) and the model's reading of it (``DocumentState``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..ingest.extract import IngestedDocument
from ..model.prompt import PromptLayout
from ..retrieval.passages import Passages
from .segments import Reading

# How a document is given to the model: "whole" (it fits the window), "select" (read whole in segments, the
# passages that match each question selected), "truncate" (the part that fits).
METHODS = ("whole", "select", "truncate")


@dataclass
class DocumentHandle:
    """An opened document: ingest result, prompt layout, its passages and how it is read."""

    ingested: IngestedDocument
    layout: PromptLayout
    token_word: np.ndarray  # (L,) word index per document token, -1 for none
    passages: Passages
    used_tokens: int  # document tokens given to the model
    window: int
    method: str = "whole"
    segments: int = 1  # segments read (method "select")
    segment: int = 0  # segment and overlap lengths the document is read with (method "select")
    overlap: int = 0

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
    def state_id(self) -> str:
        """What names its state in memory: the same file opened as a whole-document read and as a truncation
        differs."""
        return f"{self.sha256}:{self.method}"

    def prefix_ids(self) -> list[int]:
        return self.layout.head_ids + self.layout.doc_ids[: self.used_tokens].tolist()

    def notice(self) -> str | None:
        """Plain sentences for the user: how the document was read (OCR, repair), and what happens when it
        does not fit the model's window."""
        return " ".join(filter(None, [self.ingested.notice(), self._window_notice()])) or None

    def _window_notice(self) -> str | None:
        pages = len(self.ingested.pages)
        if self.method == "select":
            return (f"This document ({pages} pages) is longer than the model can read at once. DocFocus reads "
                    f"all of it, part by part, and answers each question from the passages that match it best.")
        if not self.truncated:
            return None
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
