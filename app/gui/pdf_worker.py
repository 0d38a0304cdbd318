"""The worker that owns the PDF: opens it, renders pages, extracts words, finds text.

Same pattern as ``EngineWorker``: a QObject moved to a ``WorkerThread``; the GUI sends requests by
emitting its ``req_*`` signals (queued into the worker's thread) and hears back through ``sig_*``.
All PyMuPDF work of the reader happens here, one job at a time, under ``PDF_LOCK`` (PyMuPDF is not
thread-safe; the engine worker takes the same lock while it ingests). The worker does one job per
event-loop turn, so requests that arrived meanwhile are seen first: a render request replaces the
pending ones, and scrolling fast drops the renders of pages that went out of view (qpageview's
stale-render rule).

Requests (from the GUI thread):
- ``req_open(path, password)``: open a file (drops every pending job of the previous one).
- ``req_renders(wanted)``: ``[(page, scale), ...]`` most wanted first; replaces the pending renders.
- ``req_thumbnails(wanted)``: the same for the side panel's small images (done after the renders).
- ``req_find(generation, text)``: search the whole document.
- ``req_recognised_words(pages)``: ``{page: [PageWord, ...]}`` of the pages the engine read by OCR (scans have
  no text layer): they become those pages' words, and find searches them there (app/gui/page_text.py); a find
  done before they came is done again (``sig_found`` with its generation), so its count takes them in.

Signals (from the worker's thread, delivered queued to the GUI):
- ``sig_opened(info)``: a ``PdfInfo`` once the file is open.
- ``sig_rendered(page, scale, image)``: a QImage of a 0-based page at ``scale`` pixels per point.
- ``sig_words(page, words)``: the page's words as ``PageWord`` tuples, once per page (again for a page whose
  recognised words arrive after it was drawn).
- ``sig_found(generation, text, hits)``: ``[(page, (x0, y0, x1, y1)), ...]`` for a find request.
- ``sig_failed(message)``: the file could not be opened, or a page could not be rendered.
- ``sig_needs_password(path, wrong)``: the file is encrypted; ``wrong`` when a password was given and failed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from engine.errors import DocFocusError, PdfPasswordError
from engine.ingest.extract import open_pdf

from .page_layout import PageWord
from .page_text import find_in_words

PDF_LOCK = threading.RLock()


@dataclass
class PdfInfo:
    path: str
    title: str
    page_sizes: list[tuple[float, float]]  # (width, height) in points
    outline: list[tuple[int, str, int]] = field(default_factory=list)  # (level, title, 0-based page)


class WorkerThread(QThread):
    """The QThread that hosts one worker QObject (its slots run here); ``shutdown()`` quits and joins."""

    def __init__(self, worker: QObject, name: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.worker = worker
        worker.moveToThread(self)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Quit after the requests already sent (a last history deletion, a page number to save) are done."""
        if self.isRunning():
            QTimer.singleShot(0, self.worker, self.quit)
            if not self.wait(timeout_ms):
                self.quit()
                self.wait(1000)


class PdfWorker(QObject):
    sig_opened = Signal(object)
    sig_rendered = Signal(int, float, QImage)
    sig_words = Signal(int, object)
    sig_found = Signal(int, str, object)
    sig_failed = Signal(str)
    sig_needs_password = Signal(str, bool)

    req_open = Signal(str, object)
    req_renders = Signal(object)
    req_thumbnails = Signal(object)
    req_find = Signal(int, str)
    req_recognised_words = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._open: tuple[str, str | None] | None = None
        self._renders: list[tuple[int, float]] = []  # most wanted first
        self._thumbnails: list[tuple[int, float]] = []
        self._find: tuple[int, str] | None = None
        self._last_find: tuple[int, str] | None = None  # done again when recognised words arrive
        self._document: pymupdf.Document | None = None
        self._words_sent: set[int] = set()
        self._recognised: dict[int, list[PageWord]] = {}  # OCR words of scanned pages, from the engine
        self._scheduled = False
        self.req_open.connect(self._on_open)
        self.req_renders.connect(self._on_renders)
        self.req_thumbnails.connect(self._on_thumbnails)
        self.req_find.connect(self._on_find)
        self.req_recognised_words.connect(self._on_recognised_words)

    # --- requests (worker thread, queued from the GUI) ------------------------------------
    @Slot(str, object)
    def _on_open(self, path: str, password) -> None:
        self._open = (path, password)
        self._renders, self._thumbnails, self._find, self._last_find = [], [], None, None
        self._recognised, self._words_sent = {}, set()  # now: the new document's OCR words may come before it opens
        self._schedule()

    @Slot(object)
    def _on_renders(self, wanted) -> None:
        self._renders = list(wanted)
        self._schedule()

    @Slot(object)
    def _on_thumbnails(self, wanted) -> None:
        self._thumbnails = list(wanted)
        self._schedule()

    @Slot(int, str)
    def _on_find(self, generation: int, text: str) -> None:
        self._find = (generation, text)
        self._schedule()

    @Slot(object)
    def _on_recognised_words(self, pages) -> None:
        self._recognised = dict(pages)
        for page in sorted(self._words_sent & set(self._recognised)):  # the others go with their first render
            self.sig_words.emit(page, self._recognised[page])
        if self._last_find is not None and self._find is None:
            self._find = self._last_find
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self._work_one)

    def _work_one(self) -> None:
        """One job, then back to the event loop (where newer requests may replace the pending ones)."""
        self._scheduled = False
        job = self._next_job()
        if job is None:
            return
        try:
            job()
        except Exception as error:  # noqa: BLE001 - a broken page must not kill the reader
            self.sig_failed.emit(f"Cannot show the document: {error}")
        if self._open or self._find or self._renders or self._thumbnails:
            self._schedule()

    def _next_job(self):
        if self._open:
            (path, password), self._open = self._open, None
            return lambda: self._do_open(path, password)
        if self._find:
            (generation, text), self._find = self._find, None
            return lambda: self._do_find(generation, text)
        if self._renders:
            page, scale = self._renders.pop(0)
        elif self._thumbnails:
            page, scale = self._thumbnails.pop(0)
        else:
            return None
        return lambda: self._do_render(page, scale)

    def close_document(self) -> None:
        """Close the file (call once the thread has stopped, or from the worker's thread)."""
        with PDF_LOCK:
            if self._document is not None:
                self._document.close()
                self._document = None

    # --- jobs -----------------------------------------------------------------------------
    def _do_open(self, path: str, password: str | None = None) -> None:
        with PDF_LOCK:
            self.close_document()
            try:
                document = open_pdf(path, password)  # says what is wrong: missing, not a PDF, damaged, no pages
            except PdfPasswordError:
                self.sig_needs_password.emit(path, bool(password))
                return
            except DocFocusError as error:
                self.sig_failed.emit(error.user_message())
                return
            self._document = document
            sizes = [(page.rect.width, page.rect.height) for page in document]
            outline = [(level, title, max(0, number - 1)) for level, title, number, *_ in document.get_toc()]
            title = (document.metadata or {}).get("title") or Path(path).stem
        self.sig_opened.emit(PdfInfo(path, title, sizes, outline))

    def _do_render(self, page_number: int, scale: float) -> None:
        with PDF_LOCK:
            if self._document is None or not 0 <= page_number < len(self._document):
                return
            page = self._document[page_number]
            pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
            image = QImage(pixmap.samples, pixmap.width, pixmap.height, pixmap.stride,
                           QImage.Format.Format_RGB888).copy()
            words = None
            if page_number not in self._words_sent:
                self._words_sent.add(page_number)
                words = self._recognised.get(page_number)
                if words is None:
                    words = [PageWord(*w[:7]) for w in page.get_text("words") if w[4].strip()]
        self.sig_rendered.emit(page_number, scale, image)
        if words is not None:
            self.sig_words.emit(page_number, words)

    def _do_find(self, generation: int, text: str) -> None:
        self._last_find = (generation, text)
        hits = []
        with PDF_LOCK:
            if self._document is not None and text.strip():
                for page in self._document:
                    if page.number in self._recognised:  # a scan: search_for finds nothing without a text layer
                        boxes = find_in_words(self._recognised[page.number], text)
                    else:
                        boxes = [(r.x0, r.y0, r.x1, r.y1) for r in page.search_for(text)]
                    hits.extend((page.number, box) for box in boxes)
        self.sig_found.emit(generation, text, hits)
