"""Ingest: pages, words with boxes, reading-order text with char offsets, from any format PyMuPDF opens.

The document text is built from the words so that every word knows its character span in the text; a
tokenizer's offsets then map tokens back to words (and so to boxes on the page) with a binary search.
Words come from the text layer, or, on a page that has none but holds a scan, from OCR (engine/ingest/ocr.py): OCR
words have boxes in the same page coordinates, so evidence, highlights, find and copy work the same.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pymupdf

from ..errors import CancelledError, DocFocusError, NoTextLayerError, PdfError
from . import formats
from .formats import open_document as open_pdf  # noqa: F401 - the viewer opens documents with it
from .report import IngestReport, OcrSummary

log = logging.getLogger("docfocus")

# Separators between words: same line, new line, new block, new page.
_SEP_WORD, _SEP_LINE, _SEP_BLOCK, _SEP_PAGE = " ", "\n", "\n\n", "\n\n"
OCR_STAGE = "Recognising scanned pages"  # the progress stage of OCR (done and total count pages)
PROTECTED_NOTICE = ("This document is encrypted, so DocFocus keeps nothing of it on disk: no text, no stored "
                    "reading, no chat history. It is read again, with its password, each time it is opened.")
PROTECTED_CLEANED = ("A copy of this encrypted document's text and reading that an older DocFocus kept unencrypted "
                     "was deleted. Its earlier chat history is kept; 'docfocus history FILE --clear' deletes it.")
MIN_TEXT_WORDS = 3  # a page with fewer text-layer words than this is a scan candidate (a stamped page number)
MIN_IMAGE_SHARE = 0.25  # ... if images cover at least this share of it
_OCR_BLOCKS = 1_000_000  # OCR block numbers start here on a page that also has text-layer words

Progress = Callable[[str, int, int], None]


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
    """What ingest produced for one document; ``words`` are in text order; ``report`` says how it was read
    (format, OCR, repair)."""

    sha256: str
    path: str
    title: str
    pages: list[Page]
    words: list[Word]
    text: str
    report: IngestReport = field(default_factory=IngestReport)
    protected: bool = False  # opened with a password: nothing derived from it is written to disk
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

    def page_words(self, number: int) -> list[Word]:
        """The words of 0-based page ``number`` in text order (OCR words on a scanned page: a viewer's find,
        select and copy use these where the page itself has no text layer)."""
        page = self.pages[number]
        return [self.words[i] for i in self.words_for_span(page.text_start, page.text_end)]

    def notice(self) -> str | None:
        """Plain sentences about how the document was read (OCR, repair, a password), or None for a plain read."""
        return " ".join([*self.report.notices(), *([PROTECTED_NOTICE] if self.protected else [])]) or None


class OcrStore(Protocol):
    """Where recognised pages are kept, so a document is never recognised twice (engine/library/documents.py)."""

    def get_ocr(self, sha256: str, page: int, languages: str) -> list | None: ...

    def put_ocr(self, sha256: str, page: int, languages: str, engine: str, words: list) -> None: ...


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_pdf(path: str | Path, password: str | None = None, *, ocr_language: str = "auto",
               ocr_store: OcrStore | None = None, progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None, pdf_lock=None) -> IngestedDocument:
    """Read a document (PDF or another format PyMuPDF opens) into pages, words with boxes and text with char
    offsets; pages without a text layer that hold a scan are recognised (OCR) and reported with ``progress``
    (stage ``OCR_STAGE``); ``should_stop`` cancels between pages and text lines (done pages are kept).

    ``pdf_lock`` (a lock a viewer thread shares, since PyMuPDF is not thread-safe) is held whenever PyMuPDF
    runs, but not while the OCR models do, so the viewer keeps drawing pages during a long recognition."""
    path = Path(path)
    lock = pdf_lock or contextlib.nullcontext()
    with lock:
        document = open_pdf(path, password)
        protected = formats.needs_password(document)
    sha256 = file_sha256(path)
    ocr_store = None if protected else ocr_store  # no page of an encrypted document is kept, recognised or not
    try:
        with lock:
            report = IngestReport(format=formats.NAMES.get(formats.file_type(path), "document"))
            damage = formats.start_damage(document, path)
            page_words, scans = _text_layer(document, damage)
        if scans:
            job = _OcrJob(ocr_language, ocr_store, progress, should_stop, lock)
            report.ocr = _recognise(document, sha256, scans, page_words, job)
        with lock:
            sizes = [(page.rect.width, page.rect.height) for page in document]
            title = (document.metadata or {}).get("title") or path.stem
    except DocFocusError:
        raise
    except Exception as error:
        raise PdfError(f"{path.name} is damaged and cannot be read ({error}).") from error
    finally:
        with lock:
            document.close()
    empty = [n for n, words in enumerate(page_words) if not words]
    report.damage, report.pages = formats.damage_notice(path.name, damage, len(sizes), empty), len(sizes)
    pages, words, text = _assemble(page_words, sizes)
    if not words:
        raise _no_text(path, report, len(pages))
    return IngestedDocument(sha256, str(path.resolve()), title, pages, words, text, report, protected)


def _text_layer(document: pymupdf.Document, damage: formats.Damage) -> tuple[list[list[tuple]], list[int]]:
    """Each page's text-layer words and the pages that need OCR (no text, mostly image). A page whose
    content MuPDF cannot read whole is noted in ``damage``."""
    page_words, scans = [], []
    for number in range(document.page_count):
        try:
            page = document[number]
            words = _page_words(page)
            if formats.page_warnings() and damage.repaired:
                damage.broken_pages.append(number)
        except Exception as error:  # one unreadable page costs that page, not the document
            log.warning("page %d could not be read: %s", number + 1, error)
            damage.repaired, words, page = True, [], None
            damage.broken_pages.append(number)
        page_words.append(words)
        if page is not None and len(words) < MIN_TEXT_WORDS and _image_share(page) >= MIN_IMAGE_SHARE:
            scans.append(number)
    return page_words, scans


def _page_words(page: pymupdf.Page) -> list[tuple]:
    """Words in block/line order, dropping empty and invisible ones: (x0, y0, x1, y1, text, block, line)."""
    raw = page.get_text("words")
    return [w[:7] for w in raw if w[4].strip()]


def _image_share(page: pymupdf.Page) -> float:
    """Share of the page covered by images (overlaps counted once per image; at most 1)."""
    area = abs(page.rect)
    if not area:
        return 0.0
    covered = sum(abs(pymupdf.Rect(info["bbox"]) & page.rect) for info in page.get_image_info())
    return min(1.0, covered / area)


def _recognise(document, sha256, scans, page_words, job: "_OcrJob") -> OcrSummary:
    """OCR the ``scans`` pages into ``page_words``; a failing page is recorded in the summary and the others go
    on; cancelling raises CancelledError with the finished pages stored."""
    from . import ocr

    summary = OcrSummary(languages=job.language, engine=ocr.ENGINE_ID)
    job.report(0, len(scans))
    for done, number in enumerate(scans, start=1):
        if job.should_stop and job.should_stop():
            raise CancelledError("recognising the scanned pages")
        try:
            words = job.page_words(document, sha256, number)
        except (CancelledError, KeyboardInterrupt):
            raise
        except Exception as error:  # a page that fails is reported; the rest are kept
            log.warning("OCR failed on page %d: %s", number + 1, error)
            reason = error.user_message().replace("\n", " ") if isinstance(error, ocr.OcrUnavailableError) else \
                f"{type(error).__name__}: {error}"[:200]
            summary.failed[number] = reason
        else:
            summary.add_page(number, words)
            page_words[number] = _merge(page_words[number], words)
        job.report(done, len(scans))
    return summary


@dataclass
class _OcrJob:
    """How to recognise pages: language, where results are kept, progress and cancel, the viewer's lock. The
    recogniser is made on the first page that is not in the store (models load only when needed)."""

    language: str
    store: OcrStore | None
    progress: Progress | None
    should_stop: Callable[[], bool] | None
    lock: object
    _recognizer: object = None
    _unavailable: Exception | None = None

    def report(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(OCR_STAGE, done, total)

    def page_words(self, document: pymupdf.Document, sha256: str, number: int) -> list:
        """A page's OCR words: the store's copy, else recognised now (and stored)."""
        from . import ocr

        words = self.store.get_ocr(sha256, number, self.language) if self.store else None
        if words is not None:
            return words
        if self._unavailable is not None:  # no models: every scanned page fails the same way, without retrying
            raise self._unavailable
        try:
            self._recognizer = self._recognizer or ocr.Recognizer(self.language)
        except ocr.OcrUnavailableError as error:
            self._unavailable = error
            raise
        with self.lock:
            scan = ocr.render(document[number])
        words = self._recognizer.read(scan, self.should_stop)
        if self.store:
            self.store.put_ocr(sha256, number, self.language, ocr.ENGINE_ID, words)
        return words


def _merge(text_words: list[tuple], ocr_words: list) -> list[tuple]:
    """A page's text-layer words plus the OCR words that no text-layer word already covers."""
    kept = [tuple(w[:4]) for w in text_words]
    merged = list(text_words)
    for word in ocr_words:
        box = pymupdf.Rect(word.x0, word.y0, word.x1, word.y1)
        if any(abs(box & pymupdf.Rect(k)) > 0.5 * abs(box) for k in kept):
            continue
        offset = _OCR_BLOCKS if text_words else 0
        merged.append((word.x0, word.y0, word.x1, word.y1, word.text, word.block + offset, word.line + offset))
    return merged


def _assemble(page_words: list[list[tuple]], sizes: list[tuple[float, float]]):
    """Pages, words and the document text with every word's char span."""
    pieces: list[str] = []
    words: list[Word] = []
    pages: list[Page] = []
    length = 0
    for number, (entries, (width, height)) in enumerate(zip(page_words, sizes)):
        if pages:
            pieces.append(_SEP_PAGE)
            length += len(_SEP_PAGE)
        page_start = length
        previous: tuple[int, int] | None = None
        for x0, y0, x1, y1, text, block, line in entries:
            if previous is not None:
                sep = _SEP_WORD if previous == (block, line) else _SEP_LINE if previous[0] == block else _SEP_BLOCK
                pieces.append(sep)
                length += len(sep)
            words.append(Word(number, x0, y0, x1, y1, text, length, length + len(text)))
            pieces.append(text)
            length += len(text)
            previous = (block, line)
        pages.append(Page(number, width, height, page_start, length))
    return pages, words, "".join(pieces)


def _no_text(path: Path, report: IngestReport, pages: int) -> PdfError:
    """The error for a document without a single word: why, and what the user can do."""
    ocr = report.ocr
    if ocr and ocr.failed and not ocr.pages:
        reason = next(iter(ocr.failed.values()))
        return NoTextLayerError(f"{path.name} has no text layer, and its scanned pages could not be "
                                f"recognised: {reason}")
    if ocr:
        return NoTextLayerError(f"{path.name} has no text layer, and no text was found on its "
                                f"{len(ocr.pages)} scanned page{'s' if len(ocr.pages) != 1 else ''} (OCR).",
                                "The scan may be blank, too faint or too small to read.")
    if report.format != "PDF":
        return PdfError(f"{path.name} has no text ({report.format}, {pages} page{'s' if pages != 1 else ''}).")
    return NoTextLayerError(f"{path.name} has no text layer ({pages} pages, no extractable text).",
                            "Its pages hold neither text nor a page-sized scan to recognise.")
