"""PDF ingestion: pages, words with boxes, reading-order text with char offsets.

The document text is built from PyMuPDF's words so that every word knows its
character span in the text; a tokenizer's offsets then map tokens back to
words (and so to boxes on the page) with a binary search.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymupdf

from .errors import NoTextLayerError, PdfError, PdfPasswordError

# Separators between words: same line, new line, new block, new page.
_SEP_WORD, _SEP_LINE, _SEP_BLOCK, _SEP_PAGE = " ", "\n", "\n\n", "\n\n"


@dataclass(frozen=True)
class Word:
    """One word on a page: 0-based page, box in PDF points, char span in the text."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Page:
    """A page's size in PDF points and its char span in the document text."""

    number: int
    width: float
    height: float
    text_start: int
    text_end: int


@dataclass
class IngestedDocument:
    """What ingest produced for one PDF; ``words`` are in text order."""

    sha256: str
    path: str
    title: str
    pages: list[Page]
    words: list[Word]
    text: str
    _word_starts: np.ndarray | None = field(default=None, repr=False, compare=False)
    _word_ends: np.ndarray | None = field(default=None, repr=False, compare=False)

    def page_of_char(self, offset: int) -> int:
        """0-based page holding char ``offset`` (the last page for offsets past the end)."""
        starts = [page.text_start for page in self.pages]
        return max(0, int(np.searchsorted(starts, offset, side="right")) - 1)

    def words_for_span(self, start: int, end: int) -> range:
        """Indices of the words that overlap the char span [start, end)."""
        if self._word_starts is None:
            self._word_starts = np.array([w.start for w in self.words], dtype=np.int64)
            self._word_ends = np.array([w.end for w in self.words], dtype=np.int64)
        first = int(np.searchsorted(self._word_ends, start, side="right"))
        last = int(np.searchsorted(self._word_starts, end, side="left"))
        return range(first, max(first, last))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_pdf(path: str | Path, password: str | None = None) -> pymupdf.Document:
    """Open a PDF or raise a PdfError that says what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise PdfError(f"File not found: {path}")
    if path.is_dir():
        raise PdfError(f"{path} is a folder, not a PDF file.")
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if b"%PDF" not in head:
        raise PdfError(f"{path.name} is not a PDF file (it does not start with %PDF).")
    try:
        document = pymupdf.open(path, filetype="pdf")
    except Exception as error:  # PyMuPDF raises several types for broken files
        raise PdfError(f"{path.name} is damaged and cannot be read ({error}).") from error
    if document.needs_pass:
        if not password:
            raise PdfPasswordError(f"{path.name} is encrypted.", "Give its password with --password.")
        if not document.authenticate(password):
            raise PdfPasswordError(f"Wrong password for {path.name}.")
    if document.page_count == 0:
        raise PdfError(f"{path.name} has no pages.")
    return document


def ingest_pdf(path: str | Path, password: str | None = None) -> IngestedDocument:
    """Read a PDF into pages, words with boxes and text with char offsets."""
    pdf = open_pdf(path, password)
    pieces: list[str] = []
    words: list[Word] = []
    pages: list[Page] = []
    length = 0
    try:
        for page in pdf:
            if pages:
                pieces.append(_SEP_PAGE)
                length += len(_SEP_PAGE)
            page_start = length
            previous: tuple[int, int] | None = None
            for x0, y0, x1, y1, text, block, line, _ in _page_words(page):
                if previous is not None:
                    sep = _SEP_WORD if previous == (block, line) else _SEP_LINE if previous[0] == block else _SEP_BLOCK
                    pieces.append(sep)
                    length += len(sep)
                words.append(Word(page.number, x0, y0, x1, y1, text, length, length + len(text)))
                pieces.append(text)
                length += len(text)
                previous = (block, line)
            rect = page.rect
            pages.append(Page(page.number, rect.width, rect.height, page_start, length))
        title = (pdf.metadata or {}).get("title") or Path(path).stem
    except Exception as error:
        raise PdfError(f"{Path(path).name} is damaged and cannot be read ({error}).") from error
    finally:
        pdf.close()
    if not words:
        raise NoTextLayerError(
            f"{Path(path).name} has no text layer ({len(pages)} pages, no extractable text).",
            "It looks like a scan; run OCR on it first (for example with ocrmypdf).",
        )
    return IngestedDocument(file_sha256(path), str(Path(path).resolve()), title, pages, words, "".join(pieces))


def _page_words(page: pymupdf.Page) -> list[tuple]:
    """Words in block/line order, dropping empty and invisible ones."""
    raw = page.get_text("words")
    return [w[:8] for w in raw if w[4].strip()]
