"""How a document was read: its format, what OCR recognised (and how sure it is), and repair damage.

Stored with the document in the library (as JSON), so a document read from the library says the same.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

LOW_CONFIDENCE = 0.8  # a recognised word below this mean character confidence counts as unsure


@dataclass
class OcrSummary:
    """Pages recognised (0-based), their word count, mean word confidence (0-1), unsure words, failed pages
    with the reason, and the language setting and engine they were recognised with."""

    languages: str = "auto"
    engine: str = ""
    pages: list[int] = field(default_factory=list)
    words: int = 0
    confidence: float = 0.0
    unsure_words: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    def add_page(self, number: int, words: list) -> None:
        total = self.confidence * self.words + sum(w.confidence for w in words)
        self.pages.append(number)
        self.words += len(words)
        self.confidence = total / self.words if self.words else 0.0
        self.unsure_words += sum(w.confidence < LOW_CONFIDENCE for w in words)

    def notice(self, page_count: int | None = None) -> str:
        parts = []
        if self.pages:
            whole = page_count is not None and len(self.pages) == page_count
            where = ("its page" if page_count == 1 else f"all {page_count} pages") if whole else page_list(self.pages)
            unsure = self.unsure_words
            parts.append(f"{'This document is a scan: ' if whole else ''}DocFocus recognised the text of "
                         f"{where} (OCR): {self.words:,} words, {self.confidence:.1%} average confidence"
                         + (f"; {unsure:,} word{'s' if unsure != 1 else ''} below {LOW_CONFIDENCE:.0%} may be "
                            "misread." if unsure else "."))
        if self.failed:
            pages = sorted(self.failed)
            reason = self.failed[pages[0]]
            parts.append(f"The text of scanned {page_list(pages)} could not be recognised ({reason}); "
                         f"answers cannot use {'it' if len(pages) == 1 else 'them'}.")
        return " ".join(parts)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["failed"] = {str(k): v for k, v in self.failed.items()}
        data["confidence"] = round(self.confidence, 4)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "OcrSummary":
        data = dict(data)
        data["failed"] = {int(k): v for k, v in (data.get("failed") or {}).items()}
        return cls(**data)


@dataclass
class IngestReport:
    """Format name ("PDF", "EPUB", ...), the OCR summary (None when no page needed OCR), the repair notice
    (None for a healthy file) and the page count."""

    format: str = "PDF"
    ocr: OcrSummary | None = None
    damage: str | None = None
    pages: int | None = None

    def notices(self) -> list[str]:
        return [text for text in (self.damage, self.ocr.notice(self.pages) if self.ocr else None) if text]

    def to_dict(self) -> dict:
        return {"format": self.format, "ocr": self.ocr.to_dict() if self.ocr else None, "damage": self.damage,
                "pages": self.pages}

    @classmethod
    def from_dict(cls, data: dict) -> "IngestReport":
        ocr = data.get("ocr")
        return cls(data.get("format", "PDF"), OcrSummary.from_dict(ocr) if ocr else None, data.get("damage"),
                   data.get("pages"))


def page_list(pages: list[int]) -> str:
    """0-based page numbers as 'page 3' or 'pages 2, 5-7'."""
    spans: list[list[int]] = []
    for page in sorted(pages):
        if spans and page == spans[-1][1] + 1:
            spans[-1][1] = page
        else:
            spans.append([page, page])
    text = ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in spans)
    return ("page " if len(pages) == 1 else "pages ") + text
