"""The thread that owns the PDF: opens it, renders pages, extracts words, finds text.

All PyMuPDF work of the reader happens here, one job at a time, under
``PDF_LOCK`` (PyMuPDF is not thread-safe; the engine worker takes the same lock
while it ingests). Render requests replace the pending ones, so scrolling fast
drops the renders of pages that went out of view (qpageview's stale-render rule).

Signals (all emitted from this thread, delivered queued to the GUI):
- ``sig_opened(info)``: a ``PdfInfo`` once the file is open.
- ``sig_rendered(page, scale, image)``: a QImage of a 0-based page at ``scale`` pixels per point.
- ``sig_words(page, words)``: the page's words as ``PageWord`` tuples, once per page.
- ``sig_found(generation, text, hits)``: ``[(page, (x0, y0, x1, y1)), ...]`` for a find request.
- ``sig_failed(message)``: the file could not be opened.
- ``sig_needs_password(path, wrong)``: the file is encrypted; ``wrong`` when a password was given and failed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pymupdf
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from engine.errors import DocFocusError, PdfPasswordError
from engine.ingest import open_pdf

PDF_LOCK = threading.RLock()


class PageWord(NamedTuple):
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    block: int
    line: int


@dataclass
class PdfInfo:
    path: str
    title: str
    page_sizes: list[tuple[float, float]]  # (width, height) in points
    outline: list[tuple[int, str, int]] = field(default_factory=list)  # (level, title, 0-based page)
    has_text: bool = True


class PdfWorker(QThread):
    sig_opened = Signal(object)
    sig_rendered = Signal(int, float, QImage)
    sig_words = Signal(int, object)
    sig_found = Signal(int, str, object)
    sig_failed = Signal(str)
    sig_needs_password = Signal(str, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._wake = threading.Condition()
        self._open_path: str | None = None
        self._password: str | None = None
        self._renders: list[tuple[int, float]] = []  # most wanted first
        self._thumbnails: list[tuple[int, float]] = []
        self._find: tuple[int, str] | None = None
        self._quit = False
        self._document: pymupdf.Document | None = None
        self._words_sent: set[int] = set()

    # --- called from the GUI thread -------------------------------------------------------
    def open(self, path: str, password: str | None = None) -> None:
        with self._wake:
            self._open_path, self._password = path, password
            self._renders, self._thumbnails, self._find = [], [], None
            self._wake.notify()

    def request_renders(self, wanted: list[tuple[int, float]]) -> None:
        """Replace the pending page renders with ``wanted`` (most wanted first)."""
        with self._wake:
            self._renders = list(wanted)
            self._wake.notify()

    def request_thumbnails(self, wanted: list[tuple[int, float]]) -> None:
        with self._wake:
            self._thumbnails = list(wanted)
            self._wake.notify()

    def find(self, generation: int, text: str) -> None:
        with self._wake:
            self._find = (generation, text)
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._quit = True
            self._wake.notify()
        self.wait(5000)

    # --- the thread -----------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._wake:
                while not (self._quit or self._open_path or self._find or self._renders or self._thumbnails):
                    self._wake.wait()
                if self._quit:
                    break
                job = self._next_job()
            try:
                job()
            except Exception as error:  # a broken page must not kill the reader
                self.sig_failed.emit(f"PDF error: {error}")
        with PDF_LOCK:
            if self._document is not None:
                self._document.close()

    def _next_job(self):
        if self._open_path:
            path, password, self._open_path = self._open_path, self._password, None
            return lambda: self._do_open(path, password)
        if self._find:
            generation, text = self._find
            self._find = None
            return lambda: self._do_find(generation, text)
        if self._renders:
            page, scale = self._renders.pop(0)
        else:
            page, scale = self._thumbnails.pop(0)
        return lambda: self._do_render(page, scale)

    def _do_open(self, path: str, password: str | None = None) -> None:
        with PDF_LOCK:
            if self._document is not None:
                self._document.close()
                self._document = None
            self._words_sent.clear()
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
            has_text = any(document[i].get_text("text").strip() for i in range(min(len(document), 8)))
            title = (document.metadata or {}).get("title") or _stem(path)
        self.sig_opened.emit(PdfInfo(path, title, sizes, outline, has_text))

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
                words = [PageWord(*w[:7]) for w in page.get_text("words") if w[4].strip()]
        self.sig_rendered.emit(page_number, scale, image)
        if words is not None:
            self.sig_words.emit(page_number, words)

    def _do_find(self, generation: int, text: str) -> None:
        hits = []
        with PDF_LOCK:
            if self._document is None or not text.strip():
                self.sig_found.emit(generation, text, hits)
                return
            for page in self._document:
                for rect in page.search_for(text):
                    hits.append((page.number, (rect.x0, rect.y0, rect.x1, rect.y1)))
        self.sig_found.emit(generation, text, hits)


def _stem(path: str) -> str:
    return Path(path).stem

